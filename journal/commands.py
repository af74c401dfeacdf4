"""``bookcorner journal check|repair``: the technician's view of a kiosk's journal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bookcorner.i18n import _


def register(subparsers: argparse._SubParsersAction) -> None:
    journal = subparsers.add_parser("journal", help=_("check or repair the kiosk's event journal"))
    actions = journal.add_subparsers(dest="journal_command", metavar="ACTION")
    actions.required = True
    check = actions.add_parser("check", help=_("verify every segment: checksums, sequence numbers"))
    check.add_argument("--data-dir", metavar="DIR")
    check.set_defaults(handler=_check)
    repair = actions.add_parser(
        "repair", help=_("keep a damaged segment aside and carry on from the last good state")
    )
    repair.add_argument("--data-dir", metavar="DIR")
    repair.add_argument("--known-seq", type=int, default=0,
                        help=_("highest event number the server is known to have (never reused)"))
    repair.set_defaults(handler=_repair)
    migrate = actions.add_parser(
        "migrate", help=_("bring segments written by an older bookcorner to this version's schema (stop the kiosk "
                          "first; the installer does it when upgrading)"))
    migrate.add_argument("--data-dir", metavar="DIR")
    migrate.set_defaults(handler=_migrate)
    seen = actions.add_parser(
        "seen", help=_("say that you have seen what happened to the journal (a restore, a repair): doctor and the "
                       "librarian's screen stop showing it"))
    seen.add_argument("--data-dir", metavar="DIR")
    seen.set_defaults(handler=_seen)


def _data_dir(args: argparse.Namespace) -> tuple[Path, str, int]:
    from bookcorner import config

    try:
        settings = config.load(args.config)
    except config.ConfigError as error:
        print(f"bookcorner: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    root = Path(args.data_dir) if args.data_dir else settings.data_dir
    return root / "journal", settings.kiosk.id, settings.journal.segment_events


def _check(args: argparse.Namespace) -> int:
    from bookcorner.journal.journal import JournalReader

    directory, _kiosk, _segment = _data_dir(args)
    if not directory.is_dir():
        print(_("no journal in {path}").format(path=directory), file=sys.stderr)
        return 3
    reader = JournalReader(directory)
    damage = reader.check()
    segments = reader.segments()
    for found in damage:
        print(found.describe())
    if damage:
        print(_("{count} problem(s) in {path}; run `bookcorner journal repair`").format(
            count=len(damage), path=directory), file=sys.stderr)
        return 1
    print(_("journal OK: {segments} segment(s), events up to number {seq}").format(
        segments=len(segments), seq=reader.last_seq()))
    return 0


def _repair(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from bookcorner import config
    from bookcorner.journal.clock import SystemClock
    from bookcorner.journal.journal import Journal
    from bookcorner.journal.storage import StoreError

    directory, kiosk_id, segment_events = _data_dir(args)
    settings = config.load(args.config)
    try:
        journal = Journal(directory, kiosk_id, SystemClock(ZoneInfo(settings.kiosk.timezone)),
                          segment_events=segment_events, repair=True, known_seq=args.known_seq)
    except StoreError as error:
        print(f"bookcorner: {error}", file=sys.stderr)
        return 3
    with journal:
        for found in journal.damage:
            print(found.describe())
        print(_("journal ready: next event number {seq}").format(seq=journal.last_seq + 1))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """Exit 0: migrated, or nothing to migrate; 3: the journal cannot be migrated (busy,
    damaged, or from a schema this version has no migration for)."""
    from zoneinfo import ZoneInfo

    from bookcorner import config
    from bookcorner.journal import schema
    from bookcorner.journal.clock import SystemClock
    from bookcorner.journal.journal import Journal, outdated_segments
    from bookcorner.journal.storage import StoreError

    directory, kiosk_id, segment_events = _data_dir(args)
    outdated = outdated_segments(directory) if directory.is_dir() else []
    if not outdated:
        print(_("the journal is at schema {schema}: nothing to migrate").format(schema=schema.SCHEMA))
        return 0
    settings = config.load(args.config)
    try:
        # opening the journal for writing migrates it, each segment whole or not at all
        with Journal(directory, kiosk_id, SystemClock(ZoneInfo(settings.kiosk.timezone)),
                     segment_events=segment_events):
            pass
    except (StoreError, LookupError) as error:
        print(f"bookcorner: {error}", file=sys.stderr)
        return 3
    print(_("migrated {count} segment(s) from journal schema {old} to {new}").format(
        count=len(outdated), old=min(version for _path, version in outdated), new=schema.SCHEMA))
    return 0


def _seen(args: argparse.Namespace) -> int:
    """Works while the kiosk runs: it writes only the librarian's marks (state/seen.db)."""
    from bookcorner.sync.journal_notice import mark_seen, unseen

    directory, _kiosk, _segment = _data_dir(args)
    notice = unseen(directory.parent)
    if notice is None:
        print(_("nothing to see: the journal has not gone back in time since you last looked"))
        return 0
    print(notice.describe())
    mark_seen(directory.parent, notice)
    print(_("marked as seen"))
    return 0
