"""``bookcorner syncd`` (the sync daemon) and ``bookcorner export-batch`` (USB sneakernet).

Exit codes: 0 done (``--once``: every event acknowledged), 1 not everything
acknowledged (the reason is printed and is in the kiosk's sync status), 2 a usage or
configuration mistake, 3 another sync daemon runs here, or the data cannot be used.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bookcorner.cli import fail as _fail
from bookcorner.cli import load_settings as _settings
from bookcorner.i18n import _

EXIT_DONE, EXIT_PENDING, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    syncd = subparsers.add_parser("syncd", help=_("the sync daemon: ship events to the central server, pull reference "
                                                  "data"))
    syncd.add_argument("--data-dir", metavar="DIR", help=_("the kiosk's data directory (default: from the config)"))
    syncd.add_argument("--once", action="store_true",
                       help=_("one full round, then exit: 0 only when every event is acknowledged"))
    syncd.add_argument("--server", metavar="URL", help=_("the central server (default: [sync] server_url)"))
    syncd.add_argument("--credential", metavar="FILE", help=_("the kiosk's credential file (default: from the config)"))
    syncd.add_argument("--verbose", "-v", action="store_true", help=_("log every batch"))
    syncd.set_defaults(handler=_syncd)

    export = subparsers.add_parser("export-batch", help=_("write the unacknowledged events to a signed file "
                                                          "(a USB stick) for the central server"))
    export.add_argument("--to", required=True, metavar="PATH", help=_("a folder (on the USB stick) or a file name"))
    export.add_argument("--data-dir", metavar="DIR", help=_("the kiosk's data directory (default: from the config)"))
    export.add_argument("--since", type=int, metavar="SEQ",
                        help=_("export the events after this number (default: after the last one the server "
                               "acknowledged)"))
    export.add_argument("--credential", metavar="FILE", help=_("the kiosk's credential file (default: from the config)"))
    export.set_defaults(handler=_export)



def _clock(settings):
    from zoneinfo import ZoneInfo

    from bookcorner.journal.clock import SystemClock

    return SystemClock(ZoneInfo(settings.kiosk.timezone))


def _syncd(args: argparse.Namespace) -> int:
    import signal
    import threading
    from dataclasses import replace

    from bookcorner.sync.daemon import DaemonBusy, DaemonSettings, SyncDaemon

    settings = _settings(args)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    daemon_settings = DaemonSettings.from_config(settings)
    if args.server:
        daemon_settings = replace(daemon_settings, server_url=args.server)
    if args.credential:
        daemon_settings = replace(daemon_settings, credential_file=Path(args.credential))
    root = Path(args.data_dir) if args.data_dir else settings.data_dir
    try:
        daemon = SyncDaemon(root, settings.kiosk.id, daemon_settings, _clock(settings))
        daemon.lock()
    except DaemonBusy as busy:
        _fail(str(busy), EXIT_STORE)
    except OSError as error:
        _fail(_("cannot use {path}: {error}").format(path=root, error=error.strerror), EXIT_STORE)
    try:
        if args.once:
            result = daemon.run_round()
            if not result.ok:
                print(f"bookcorner syncd: {result.error.message if result.error else '?'}", file=sys.stderr)
                return EXIT_PENDING
            if result.pending:
                print(_("bookcorner syncd: {count} event(s) recorded during the round are not acknowledged yet").format(
                    count=result.pending), file=sys.stderr)
                return EXIT_PENDING
            print(_("every event is acknowledged (up to number {seq})").format(seq=result.acked_seq))
            from bookcorner.sync.journal_notice import unseen

            notice = unseen(root)
            if notice is not None:
                print(notice.describe())
                print(_("What to do: {fix}").format(fix=notice.fix))
            return EXIT_DONE
        stop = threading.Event()
        # set from another thread: the handler runs in the main thread, which may be holding the
        # event's own lock inside stop.wait() at that moment (setting it here could deadlock)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_args: threading.Thread(target=stop.set, daemon=True).start())
        logging.getLogger("sync").info("sync daemon for kiosk %s on %s, server %s", settings.kiosk.id, root,
                                       daemon_settings.server_url or "(none)")
        daemon.run(stop)
        return EXIT_DONE
    finally:
        daemon.close()


def _export(args: argparse.Namespace) -> int:
    from bookcorner.journal.storage import StoreError
    from bookcorner.sync.batches import UnreadableEvents
    from bookcorner.sync.client import SyncError
    from bookcorner.sync.daemon import read_credential
    from bookcorner.sync.export import export_batch

    settings = _settings(args)
    root = Path(args.data_dir) if args.data_dir else settings.data_dir
    credential = Path(args.credential) if args.credential else settings.credential_file
    try:
        token = read_credential(credential)
    except SyncError as error:
        _fail(error.message, EXIT_USAGE)
    target = Path(args.to)
    if not target.parent.is_dir():
        _fail(_("{path}: no such folder (is the USB stick mounted?)").format(path=target.parent), EXIT_USAGE)
    try:
        done = export_batch(root, settings.kiosk.id, token, target, _clock(settings).read(), since=args.since)
    except UnreadableEvents as unreadable:
        _fail(str(unreadable), EXIT_STORE)
    except (StoreError, OSError) as error:
        _fail(_("cannot export: {error}").format(error=error), EXIT_STORE)
    if done is None:
        print(_("nothing to export: the server has acknowledged every event"))
        return EXIT_DONE
    print(_("wrote {count} event(s), numbers {start} to {end}, to {path}").format(
        count=done.events, start=done.from_seq, end=done.to_seq, path=done.path))
    return EXIT_DONE
