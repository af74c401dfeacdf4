"""The demo: the kiosk on the demo school, for a newcomer on a fresh machine.

Loads the demo school into a data directory (once; ``--reset`` starts again), prints the
cards and books worth trying, and walks through a child's visit at the circulation desk:
the same desk, rules and journal the kiosk screen uses.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from bookcorner import config
from bookcorner.circulation.codes import Source
from bookcorner.circulation.rules import Identified
from bookcorner.i18n import _
from bookcorner.journal.clock import SystemClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import CirculationDesk, DataPaths
from bookcorner.kiosk.wording import explain

#: left in a demo data directory, so that --reset never deletes anything else
MARKER = "BOOKCORNER-DEMO"
#: the librarian's PIN in the demo (a real kiosk's is set with `bookcorner librarian set-pin`)
DEMO_PIN = "1234"


def load_demo_school(root: Path, today: date) -> str:
    """Write the demo school's reference snapshot; returns the school's name."""
    from bookcorner.demo.school import build_demo_school

    school = build_demo_school(today)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("demo data for bookcorner; `bookcorner demo --reset` deletes this folder\n")
    ReferenceStore(DataPaths(root).reference).save(school.reference(), f"demo-{today.isoformat()}", school.name)
    return school.name


def run_demo(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    root = Path(args.data_dir)
    if args.reset and root.exists():
        if not (root / MARKER).exists():
            print(_("bookcorner: {path} is not a demo data directory; not deleting it").format(path=root),
                  file=sys.stderr)
            return 2
        shutil.rmtree(root)
    clock = SystemClock(ZoneInfo(settings.kiosk.timezone))
    fresh = not ReferenceStore(DataPaths(root).reference).exists()
    if fresh:
        name = load_demo_school(root, clock.now().date())
        print(_("Loaded the demo school {name} into {path}.").format(name=name, path=root))
    from bookcorner.demo.school import build_demo_school

    hints = build_demo_school(clock.now().date()).hints
    print()
    print(_("Cards to tap and books to scan:"))
    for hint in hints:
        print(f"  {hint.code:<16} {_(hint.what)}{'  (' + hint.detail + ')' if hint.detail else ''}")
    print("  " + _("{pin:<16} the librarian's PIN in the demo").format(pin=DEMO_PIN))
    if args.load_only:
        return 0
    if not args.tour and sys.stdin.isatty() and sys.stdout.isatty():
        return _screen(args, settings, root, clock, hints)
    with contextlib.ExitStack() as stack:
        # The first time, the tour is recorded in the demo school just loaded (its loans are
        # there to try `circ` on). Later it tells the same story on a demo school of its own,
        # leaving the newcomer's as they left it (perhaps open in a kiosk).
        where = root
        if not fresh:
            where = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bookcorner-tour-")))
            load_demo_school(where, clock.now().date())
        desk = stack.enter_context(CirculationDesk(
            where, settings.kiosk.id, clock, segment_events=settings.journal.segment_events,
            policy=config.policy_of(settings), calendar=config.calendar_of(settings)))
        print()
        print(_("A child's visit at the book corner:"))
        _tour(desk, hints)
    print()
    print(_("Try it yourself, for example:"))
    card, book = hints[0].code, hints[6].code
    print(f"  .venv/bin/bookcorner circ checkout {card} {book} --data-dir {root}")
    print(f"  .venv/bin/bookcorner circ status {card} --data-dir {root}")
    print(f"  .venv/bin/bookcorner circ checkin {book} --data-dir {root}")
    return 0


def _screen(args: argparse.Namespace, settings: config.KioskConfig, root: Path, clock, hints) -> int:
    """The kiosk's screen on the demo school: keys typed as fast as a scanner (a paste,
    a real keyboard-style scanner) are scans and card taps; the demo line takes typed codes."""
    import msgspec

    from bookcorner.kiosk.app import build_app
    from bookcorner.kiosk.crash import setup_logging
    from bookcorner.kiosk.pin import hash_pin
    from bookcorner.kiosk.run import run

    screen = msgspec.structs.replace(settings.screen, sound="bell" if args.sound else "off")
    if args.speech:
        from bookcorner.kiosk import speech

        clips = root / "speech"
        try:
            if speech.check(clips):
                print(_("Making the spoken banners' clips in {dir}…").format(dir=clips))
                speech.build(clips, screen.speech_synthesiser)
            screen = msgspec.structs.replace(screen, speech="on", speech_clips=str(clips))
        except (OSError, subprocess.SubprocessError) as error:
            print(_("The banners stay silent: {error}").format(error=error))
    librarian = settings.librarian if settings.librarian.pin_hash else msgspec.structs.replace(
        settings.librarian, pin_hash=hash_pin(DEMO_PIN), shutdown_command=[])
    settings = msgspec.structs.replace(settings, screen=screen, librarian=librarian)
    setup_logging(root)
    print()
    print(_("Starting the kiosk screen (Ctrl+Q leaves the demo)…"))
    app = build_app(settings, data_dir=root, clock=clock, demo_hints=panel_hints(hints), language=args.lang,
                    quit_keys=True)
    return run(app)


def panel_hints(hints) -> tuple:
    """The codes the demo's screen lists along its bottom (F1 hides them)."""
    from bookcorner.i18n import N_
    from bookcorner.kiosk.widgets.demo import Hint

    shown = tuple(Hint(h.code, h.what, h.detail) for h in (hints[0], hints[1], hints[3], hints[6], hints[7],
                                                         hints[9], hints[10]))
    return shown + (Hint(DEMO_PIN, N_("librarian's PIN")),)


def _tour(desk: CirculationDesk, hints) -> None:
    student, _helper, _teacher, _librarian, suspended, lost = (h.code for h in hints[:6])
    labelled, shared, old, dictionary, unknown = (h.code for h in hints[6:11])

    def show(label: str, recorded) -> None:
        message = explain(recorded.decision, desk.reference)
        mark = "✔" if recorded.ok else "✘"
        print(f"  {mark} {label:<28} {message.as_line()}")

    child = desk.identify(student, Source.CARD_READER)
    if not isinstance(child, Identified):
        show(_("tap the student card"), child)
        return
    print("  " + _("{name} ({klass}) taps a card.").format(name=child.patron.name, klass=child.patron.class_name))
    show(_("scan a labelled book"), desk.checkout(child, labelled))
    show(_("scan it again"), desk.checkout(child, labelled))
    show(_("scan a dictionary"), desk.checkout(child, dictionary))
    show(_("scan a shared ISBN"), desk.checkout(child, shared))
    show(_("scan a third book"), desk.checkout(child, old))
    show(_("scan an unknown book"), desk.checkout(child, unknown))
    show(_("return at the home screen"), desk.checkin(labelled))
    paused = desk.identify(suspended, Source.CARD_READER)
    if isinstance(paused, Identified):
        show(_("a suspended student borrows"), desk.checkout(paused, labelled))
    show(_("tap a card reported lost"), desk.identify(lost, Source.CARD_READER))
