"""``bookcorner circ ...`` and ``bookcorner demo``: circulation from a terminal.

The same desk, rules and journal as the kiosk screen, for librarians at a terminal, for
scripts and for black-box tests. Exit codes: 0 done, 1 refused (the reason is printed),
2 a usage or configuration mistake, 3 the data could not be read or written.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bookcorner.cli import fail as _fail
from bookcorner.cli import load_settings as _settings
from bookcorner.i18n import _

EXIT_DONE, EXIT_REFUSED, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3
DEMO_DATA = "demo-data"


def register(subparsers: argparse._SubParsersAction) -> None:
    circ = subparsers.add_parser("circ", help=_("check books out and in, and look up loans, from the command line"))
    circ_commands = circ.add_subparsers(dest="circ_command", metavar="ACTION")
    circ_commands.required = True

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data-dir", metavar="DIR", help=_("the kiosk's data directory (default: from the config)"))
        parser.add_argument("--at", metavar="TIME", help=_("act as if it were this local time, e.g. 2026-11-23T12:05"))
        parser.add_argument("--json", action="store_true", help=_("print the result as JSON"))

    checkout = circ_commands.add_parser("checkout", help=_("check a book out to the card's holder (renews a book they already have)"))
    checkout.add_argument("card")
    checkout.add_argument("barcode")
    common(checkout)
    checkout.set_defaults(handler=_checkout)

    # "return": the command's name before the library words (checkout, checkin), still accepted
    checkin = circ_commands.add_parser("checkin", aliases=["return"], help=_("check a book in (take it back)"))
    checkin.add_argument("barcode")
    checkin.add_argument("--card", help=_("the borrower's card, if a shared barcode needs it"))
    checkin.add_argument("--oldest", action="store_true",
                         help=_("if several copies with this barcode are out, close the oldest loan"))
    common(checkin)
    checkin.set_defaults(handler=_checkin)

    status = circ_commands.add_parser("status", help=_("a card holder's loans, or the kiosk's overview"))
    status.add_argument("card", nargs="?")
    common(status)
    status.set_defaults(handler=_status)

    for name, help_text in (
        ("damaged", _("send a book to the repair register")),
        ("lost", _("record a book as lost")),
        ("found", _("put a lost or repaired book back in circulation")),
    ):
        report = circ_commands.add_parser(name, help=help_text)
        report.add_argument("barcode")
        report.add_argument("--card", required=True, help=_("the card of the librarian or student librarian reporting it"))
        report.add_argument("--note", default="")
        common(report)
        report.set_defaults(handler=_report, report=name)

    demo = subparsers.add_parser("demo", help=_("run the kiosk on the demo school"))
    demo.add_argument("--data-dir", default=DEMO_DATA, metavar="DIR",
                      help=_("where the demo school's data lives (default: ./demo-data)"))
    demo.add_argument("--reset", action="store_true", help=_("start again from a fresh demo school"))
    demo.add_argument("--load-only", action="store_true", help=_("load the demo school and stop"))
    demo.add_argument("--tour", action="store_true",
                      help=_("print a scripted visit instead of opening the screen (automatic without a terminal)"))
    demo.add_argument("--sound", action="store_true", help=_("ring the terminal bell for answers"))
    demo.add_argument("--speech", action="store_true",
                      help=_("say the banners aloud (eSpeak NG through aplay; the clips made in DIR/speech first)"))
    demo.add_argument("--lang", choices=["en", "zh_CN"], help=_("the screen's language"))
    demo.set_defaults(handler=_demo)

    kiosk = subparsers.add_parser("kiosk", help=_("run the kiosk's screen on the configured data directory"))
    kiosk.add_argument("--data-dir", metavar="DIR", help=_("the kiosk's data directory (default: from the config)"))
    kiosk.add_argument("--lang", choices=["en", "zh_CN"], help=_("the screen's language (default: from the config)"))
    # for benchmarks: write a line to this file descriptor once the screen can take a scan
    kiosk.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    kiosk.add_argument("--exit-when-ready", action="store_true", help=argparse.SUPPRESS)
    kiosk.set_defaults(handler=_kiosk)

    librarian = subparsers.add_parser("librarian", help=_("the librarian's settings"))
    librarian_commands = librarian.add_subparsers(dest="librarian_command", metavar="ACTION")
    librarian_commands.required = True
    set_pin = librarian_commands.add_parser(
        "set-pin", help=_("set the PIN that opens the librarian's mode (stored hashed in the config file)"))
    set_pin.add_argument("--stdin", action="store_true", help=_("read the PIN from standard input (for scripts)"))
    set_pin.set_defaults(handler=_set_pin)

    speech = subparsers.add_parser("speech", help=_("the kiosk's spoken banners (clips made ahead of time)"))
    speech_commands = speech.add_subparsers(dest="speech_command", metavar="ACTION")
    speech_commands.required = True
    build = speech_commands.add_parser(
        "build", help=_("say every banner in Chinese and English with eSpeak NG, into WAV clips and a manifest"))
    build.add_argument("--to", metavar="DIR",
                       help=_("where the clips go (default: the config's speech_clips, else DATA_DIR/speech)"))
    build.set_defaults(handler=_speech_build)
    check = speech_commands.add_parser(
        "check", help=_("check that every banner has a clip in both languages, each a WAV file with sound"))
    check.add_argument("dir", nargs="?", metavar="DIR",
                       help=_("the clips (default: the config's speech_clips, else DATA_DIR/speech)"))
    check.set_defaults(handler=_speech_check)


# -- plumbing shared by the commands -----------------------------------------------------------




def open_desk(args: argparse.Namespace, data_dir: str | None = None, *, read_only: bool = False):
    """The desk for this command, with the clock it asked for. ``read_only``: the journal
    is only read (no lock taken), so the command works while the kiosk runs."""
    from zoneinfo import ZoneInfo

    from bookcorner import config
    from bookcorner.journal.clock import FixedClock, SystemClock
    from bookcorner.journal.storage import StoreError
    from bookcorner.kiosk.desk import CirculationDesk

    settings = _settings(args)
    zone = ZoneInfo(settings.kiosk.timezone)
    clock: Any = SystemClock(zone)
    if getattr(args, "at", None):
        try:
            moment = datetime.fromisoformat(args.at)
        except ValueError:
            _fail(_("--at: not a date and time: {value}").format(value=args.at), EXIT_USAGE)
        # a boot of its own: a push from this real boot must not re-time these made-up times
        # through the monotonic clock (the server holds them between what it knows, flagged)
        # in the school's zone (a time given with an offset is that instant there)
        clock = FixedClock(moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone),
                           boot_id=f"circ-at-{uuid.uuid4().hex[:12]}", synced=False)
    root = Path(data_dir or getattr(args, "data_dir", None) or settings.data_dir)
    try:
        return CirculationDesk(root, settings.kiosk.id, clock, segment_events=settings.journal.segment_events,
                               policy=config.policy_of(settings), calendar=config.calendar_of(settings),
                               read_only=read_only)
    except StoreError as error:
        _fail(str(error), EXIT_STORE)


def _emit(args: argparse.Namespace, desk, recorded) -> int:
    from bookcorner.kiosk.wording import Tone, explain

    message = explain(recorded.decision, desk.reference)
    result = recorded.decision.result
    if args.json:
        body: dict[str, Any] = {
            "ok": recorded.ok,
            "message": message.as_line(),
            "events": [e.seq for e in recorded.events],
        }
        if recorded.ok:
            body.update(action=str(result.action), item_id=result.item_id, patron_id=result.patron_id,
                        due=result.due.isoformat() if result.due else None,
                        warnings=[str(w) for w in result.warnings])
        else:
            body.update(reason=str(result.reason), details=dict(result.details))
        print(json.dumps(body, ensure_ascii=False))
    elif recorded.ok or message.tone is Tone.WARNING and not recorded.events:
        print(message.as_line())
    else:
        print(f"{message.as_line()} [{result.reason}]", file=sys.stderr)
    return EXIT_DONE if recorded.ok else EXIT_REFUSED


def _guarded(action):
    """Run an action on the desk; a failed write is reported, never half-done."""
    from bookcorner.journal.storage import StoreError

    try:
        return action()
    except StoreError as error:
        _fail(str(error), EXIT_STORE)


def _identify(desk, card: str):
    from bookcorner.circulation.codes import Source

    return _guarded(lambda: desk.identify(card, Source.KEYBOARD))


# -- the commands ----------------------------------------------------------------------------


def _checkout(args: argparse.Namespace) -> int:
    from bookcorner.circulation.rules import Identified

    with open_desk(args) as desk:
        who = _identify(desk, args.card)
        if not isinstance(who, Identified):
            return _emit(args, desk, who)
        return _emit(args, desk, _guarded(lambda: desk.checkout(who, args.barcode)))


def _checkin(args: argparse.Namespace) -> int:
    from bookcorner.circulation.rules import Ambiguity, Identified

    with open_desk(args) as desk:
        who = None
        if args.card:
            who = _identify(desk, args.card)
            if not isinstance(who, Identified):
                return _emit(args, desk, who)
        ambiguity = Ambiguity.OLDEST if args.oldest else Ambiguity.REFUSE
        return _emit(args, desk, _guarded(lambda: desk.checkin(args.barcode, who, ambiguity)))


def _report(args: argparse.Namespace) -> int:
    from bookcorner.circulation.rules import Identified

    with open_desk(args) as desk:
        who = _identify(desk, args.card)
        if not isinstance(who, Identified):
            return _emit(args, desk, who)
        act = {"damaged": desk.report_damaged, "lost": desk.report_lost, "found": desk.report_found}[args.report]
        return _emit(args, desk, _guarded(lambda: act(who, args.barcode, args.note)))


def _status(args: argparse.Namespace) -> int:
    from bookcorner.circulation import rules
    from bookcorner.circulation.codes import Source
    from bookcorner.kiosk.desk import Recorded
    from bookcorner.kiosk.wording import book_title, format_date

    with open_desk(args, read_only=True) as desk:
        today = desk.now().date()
        if args.card:
            # looking a card up is not a tap at the kiosk: a refusal is said, not recorded
            who = rules.identify(desk.reference, desk.classify(args.card, Source.KEYBOARD))
            if not isinstance(who, rules.Identified):
                return _emit(args, desk, Recorded(who))
            view = desk.patron_view(who.patron)
            loans = [
                {"item_id": loan.item_id, "title": desk.reference.items[loan.item_id].title,
                 "due": loan.due.isoformat(), "overdue": loan.is_overdue(today)}
                for loan in view.loans
            ]
            if args.json:
                print(json.dumps({"patron_id": who.patron.patron_id, "name": who.patron.name,
                                  "class": who.patron.class_name, "loans": loans,
                                  "may_checkout": view.allowance.may_checkout}, ensure_ascii=False))
                return EXIT_DONE
            print(_("{name} ({klass}): {loan_count} book(s) on loan, may check out {more} more").format(
                name=who.patron.name, klass=who.patron.class_name or "-", loan_count=len(loans),
                more=view.allowance.may_checkout))
            for loan, shown in zip(view.loans, loans, strict=True):
                line = _("{title}  due {due}").format(title=book_title(shown["title"]), due=format_date(loan.due))
                print("  " + line + ("  " + _("OVERDUE") if shown["overdue"] else ""))
            return EXIT_DONE
        open_loans = list(desk.state.loans.values())
        overdue = [loan for loan in open_loans if loan.is_overdue(today)]
        summary = {"kiosk_id": desk.kiosk_id, "school": desk.school, "reference_version": desk.reference_version,
                   "open_loans": len(open_loans), "overdue": len(overdue), "last_seq": desk.journal.last_seq,
                   "items": len(desk.reference.items), "patrons": len(desk.reference.patrons)}
        if args.json:
            print(json.dumps(summary, ensure_ascii=False))
        else:
            print(_("kiosk {kiosk}: {loans} open loan(s), {overdue} overdue; {events} event(s) recorded; "
                    "{items} books, {patrons} people").format(kiosk=desk.kiosk_id, loans=len(open_loans),
                    overdue=len(overdue), events=desk.journal.last_seq, items=len(desk.reference.items),
                    patrons=len(desk.reference.patrons)))
        return EXIT_DONE


def _demo(args: argparse.Namespace) -> int:
    from bookcorner.kiosk.demo import run_demo

    _settings(args)
    return run_demo(args)


#: how long the kiosk may take to start before systemd's watchdog may restart it (its own
#: interval, WatchdogSec=, counts once the screen's loop pings)
STARTUP_WATCHDOG_S = 600


def _kiosk(args: argparse.Namespace) -> int:
    import os

    from bookcorner.sync.notify import Watchdog

    # first, before the slow imports and the journal's opening: the lab (issue 16) saw kiosks
    # restarted by the 60 s watchdog in the middle of a start slowed by a loaded machine after a
    # power cut, each start as slow as the last
    Watchdog().hold_off(STARTUP_WATCHDOG_S)
    from bookcorner.kiosk.app import build_app
    from bookcorner.kiosk.crash import setup_logging
    from bookcorner.kiosk.run import run

    settings = _settings(args)
    data_dir = Path(os.path.expanduser(args.data_dir)) if args.data_dir else settings.data_dir
    setup_logging(data_dir)
    def ready() -> None:  # for benchmarks: the screen is drawn and would answer a scan
        if args.ready_fd is not None:
            os.write(args.ready_fd, b"ready\n")
        if args.exit_when_ready:
            app.exit()

    benchmarked = args.ready_fd is not None or args.exit_when_ready
    app = build_app(settings, data_dir=data_dir, on_ready=ready if benchmarked else None, language=args.lang)
    status = run(app)
    if args.ready_fd is not None:  # for the benchmark: this process's peak memory
        os.write(args.ready_fd, f"peak_rss_kb {_peak_rss_kb()}\n".encode())
    return status


def _peak_rss_kb() -> int:
    """The resident set's high-water mark since this program started (not its parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _clips_dir(args: argparse.Namespace, given: str | None) -> Path:
    settings = _settings(args)
    return Path(given or settings.screen.speech_clips or Path(settings.data_dir) / "speech")


def _speech_build(args: argparse.Namespace) -> int:
    import subprocess

    from bookcorner.kiosk import speech

    to = _clips_dir(args, args.to)
    synthesiser = _settings(args).screen.speech_synthesiser
    try:
        manifest = speech.build(to, synthesiser)
    except (OSError, subprocess.SubprocessError) as error:
        _fail(_("could not make the clips with {program}: {error}").format(program=synthesiser[0], error=error),
              EXIT_STORE)
    count = sum(len(languages) for languages in manifest["clips"].values())
    print(_("{count} clips in {dir}").format(count=count, dir=to))
    return EXIT_DONE


def _speech_check(args: argparse.Namespace) -> int:
    from bookcorner.kiosk import speech

    clips = _clips_dir(args, args.dir)
    problems = speech.check(clips)
    for problem in problems:
        print(problem)
    if problems:
        return EXIT_REFUSED
    print(_("Every banner has its clips in {dir}").format(dir=clips))
    return EXIT_DONE


def _set_pin(args: argparse.Namespace) -> int:
    import getpass
    import os

    from bookcorner import config
    from bookcorner.kiosk.pin import BadPin, check_pin_format, hash_pin
    from bookcorner.kiosk.pinfile import write_pin_hash

    if args.stdin:
        pin = sys.stdin.readline().strip()
    else:
        pin = getpass.getpass(_("New librarian PIN (4 to 12 digits): "))
        if getpass.getpass(_("The same PIN again: ")) != pin:
            _fail(_("the two PINs differ; nothing changed"), EXIT_USAGE)
    try:
        check_pin_format(pin)
    except BadPin:
        _fail(_("a PIN is 4 to 12 digits; nothing changed"), EXIT_USAGE)
    hashed = hash_pin(pin)
    path = args.config or os.environ.get(config.ENV_CONFIG)
    if not path:
        print(_("No configuration file given (--config FILE): put this line in its [librarian] section:"))
        print(f'pin_hash = "{hashed}"')
        return EXIT_DONE
    try:
        write_pin_hash(Path(path), hashed)
    except (OSError, config.ConfigError) as error:
        _fail(str(error), EXIT_STORE)
    print(_("The librarian's PIN is set in {path}. Restart the kiosk to use it.").format(path=path))
    return EXIT_DONE
