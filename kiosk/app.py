"""The kiosk's screen: a Textual app that a six-year-old, a student librarian and the
librarian can each use without help.

Threads: device readers post :class:`DeviceInput`; one desk worker runs the
:class:`SessionController` (every journal write, every report) and posts each outcome as
the message of its kind (:func:`messages.desk_message`), handled here with ``@on``; a sync
worker reads the sync daemon's status. The screen's thread only routes messages and draws,
so it keeps answering while a write or a sync is slow.

``build_app`` is the one factory for ``bookcorner kiosk``, ``bookcorner demo`` and tests.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from textual import events, on, work
from textual.app import App
from textual.keys import _character_to_key
from textual.reactive import reactive
from textual.worker import WorkerFailed, get_current_worker

from bookcorner import config, i18n
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.timetable import Timetable
from bookcorner.devices import CardTap, DeviceStatus, Scan
from bookcorner.i18n import _
from bookcorner.kiosk import messages as m
from bookcorner.kiosk import session as s
from bookcorner.kiosk.messages import DeskIdle, DeviceInput, SyncRequested, SyncStatusRead, WedgeTick
from bookcorner.kiosk.pin import PinGuard, looks_like_pin
from bookcorner.kiosk.screens.idle import IdleScreen
from bookcorner.kiosk.sounds import Sounds
from bookcorner.kiosk.speech import Speaker
from bookcorner.kiosk.widgets.banner import Banner
from bookcorner.sync.notify import Watchdog
from bookcorner.sync.status import SyncStatus, read_status, request_sync

if TYPE_CHECKING:
    from bookcorner.devices.wedge import KeyboardWedge
    from bookcorner.kiosk.screens.librarian import LibrarianScreen
    from bookcorner.kiosk.widgets.demo import DemoPanel, Hint

log = logging.getLogger(__name__)

_STOP = object()
#: how often the sync daemon's status is read (faster for a while after "sync now")
SYNC_POLL_S, SYNC_POLL_FAST_S, FAST_POLL_FOR_S = 2.0, 0.5, 120.0
#: how often a new reference snapshot is looked for (between visits)
REFRESH_S = 30.0
RETRY_OPEN_S = 30.0
DESK_CLOSE_TIMEOUT_S = 10.0
#: how long the desk waits after the start, with nothing to do, before its background work
#: (the children's borrowing history, for suggestions): the first screen is drawn first
START_QUIET_S = 2.0



def _screen_for(kind: s.VisitKind) -> type:
    """The screen of a visit. Screens other than the idle one load when first needed (or
    just after start-up): the kiosk is ready for a tap sooner."""
    if kind is s.VisitKind.BORROWER:
        from bookcorner.kiosk.screens.visit import VisitScreen

        return VisitScreen
    if kind is s.VisitKind.HELPER:
        from bookcorner.kiosk.screens.helper import HelperScreen

        return HelperScreen
    from bookcorner.kiosk.screens.librarian import LibrarianScreen

    return LibrarianScreen


def _dialogs():
    from bookcorner.kiosk.screens import dialogs

    return dialogs


def _is_librarian_screen(screen: object) -> TypeGuard[LibrarianScreen]:
    return type(screen).__name__ == "LibrarianScreen"


class KioskApp(App, inherit_bindings=False):
    """The kiosk. No quit key and no command palette: only the librarian's mode stops it."""

    CSS_PATH = "kiosk.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = []
    TITLE = "bookcorner"

    #: the sync daemon's status and the journal's last sequence number (None: not read yet)
    sync_state: reactive[tuple[SyncStatus, int] | None] = reactive(None)
    #: devices that need attention, in words
    device_alerts: reactive[tuple[str, ...]] = reactive(())
    #: bumped when the language changes, so that screens word themselves again
    language_generation: reactive[int] = reactive(0)

    def __init__(
        self,
        settings: config.KioskConfig,
        data_dir: Path,
        *,
        clock: Any,
        open_desk: Callable[[], Any],
        devices: Any | None = None,
        demo_hints: tuple[Hint, ...] = (),
        monotonic: Callable[[], float] = time.monotonic,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.data_dir = data_dir
        self.clock = clock
        self.monotonic = monotonic
        self.demo_hints = demo_hints
        self.corner_name = settings.kiosk.name
        self.on_ready = on_ready
        self.devices = devices
        self.controller = s.SessionController(
            open_desk=open_desk,
            pins=PinGuard(settings.librarian.pin_hash, data_dir / "state" / "librarian-pin.json",
                          settings.librarian.max_tries, timedelta(seconds=settings.librarian.lockout_s)),
            exports=data_dir / "exports",
            bilingual=settings.screen.bilingual,
        )
        self.sounds = Sounds(settings.screen, self.bell, lambda delay, call: self.set_timer(delay, call))
        self.speech = Speaker(settings.screen, Path(settings.screen.speech_clips or data_dir / "speech"))
        self.device_statuses: dict[str, DeviceStatus] = {}
        #: scan-to-banner times in seconds (newest last), and to the next frame drawn
        self.feedback_latency: deque[float] = deque(maxlen=2000)
        self.painted_latency: deque[float] = deque(maxlen=2000)
        #: the unhandled error that stopped the app, if one did
        self.crash: BaseException | None = None
        self.desk_ready = False
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._desk_closed = threading.Event()
        self._pending = 0
        self._answer_started: float | None = None
        self._first_frame = False
        self._told_ready = False
        self._fast_poll_until = 0.0
        self._next_poll = 0.0
        self._wedge: KeyboardWedge | None = None

    # -- start and stop ------------------------------------------------------------------------

    def get_default_screen(self) -> IdleScreen:
        return IdleScreen()

    def on_mount(self) -> None:
        self.theme = self.settings.screen.theme
        self._desk_worker = self.run_desk()
        if self.devices is not None:
            if self.settings.devices.wedge.enabled:
                self._wedge = self.devices.wedge()
                self.set_interval(self.settings.devices.max_key_gap, self._expire_wedge, name="wedge")
            self.devices.start()
        self.set_interval(SYNC_POLL_FAST_S, self._poll_tick, name="sync-poll")
        self.set_interval(REFRESH_S, self._refresh_tick, name="refresh")
        # systemd's watchdog (WatchdogSec= in bookcorner-kiosk.service): pinged from the screen's own
        # event loop, so a frozen kiosk (stopped, deadlocked, its loop stuck) stops pinging and is
        # restarted (found by the lab, issue 16: a SIGSTOPped kiosk stayed frozen on the children)
        # (the command held the watchdog off while the program started: its interval is back now)
        watchdog = Watchdog()
        if watchdog.every_s is not None:
            self.set_interval(watchdog.every_s / 2, watchdog.ping, name="watchdog")
            watchdog.resume()
        self._poll_tick()
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        self._first_frame = True
        self._maybe_ready()

    def _maybe_ready(self) -> None:
        if self._first_frame and self.desk_ready and not self._told_ready and self.controller.desk is not None:
            self._told_ready = True
            log.info("kiosk ready: journal at %s", self.controller.desk.journal.last_seq)
            if self.on_ready is not None:
                self.on_ready()
            self.set_timer(1.0, self._load_screens)

    def _load_screens(self) -> None:
        """Load the other screens while nobody is at the kiosk yet (a first tap answers sooner)."""
        for kind in s.VisitKind:
            _screen_for(kind)
        _dialogs()

    async def on_unmount(self) -> None:
        if self.devices is not None:
            self.devices.stop(timeout=1.0)
        self._commands.put(_STOP)
        self.speech.close()
        # the desk closes on its own thread (releasing the journal's lock) before we go
        await asyncio.to_thread(self._desk_closed.wait, DESK_CLOSE_TIMEOUT_S)

    def _spoken_languages(self) -> tuple[str, ...]:
        main = i18n.current_language()
        if not self.settings.screen.bilingual:
            return (main,)
        return (main, *(language for language in i18n.LANGUAGES if language != main))

    def _handle_exception(self, error: Exception) -> None:
        """An unhandled error: to the log file (never stderr, where the screen is drawn);
        the runner then shows a friendly screen and exits non-zero, so systemd restarts us."""
        if self.crash is None:
            self.crash = error
            cause = error.error if isinstance(error, WorkerFailed) else error  # where it really happened
            log.critical("unhandled error, the kiosk stops", exc_info=cause)
        super()._handle_exception(error)
        self._exit_renderables.clear()  # the traceback is in the log, not on the children's screen

    # -- the desk worker -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="desk", name="desk", exit_on_error=True)
    def run_desk(self) -> None:
        worker = get_current_worker()
        controller = self.controller
        try:
            for outcome in controller.start():
                self.post_message(m.desk_message(outcome))
            # background work (controller.idle) waits for the first quiet moment after the
            # start, then goes on a step at a time whenever no command is waiting
            idle_after: float | None = START_QUIET_S
            while not worker.is_cancelled:
                try:
                    command = self._commands.get(timeout=idle_after)
                except queue.Empty:
                    idle_after = 0.0 if controller.idle() else None
                    continue
                if command is _STOP:
                    break
                started = getattr(command, "time", None)
                for outcome in controller.handle(command):
                    self.post_message(m.desk_message(outcome, started))
                self.post_message(DeskIdle())
        finally:
            try:
                controller.close()
            finally:
                self._desk_closed.set()

    def submit(self, command: s.Command) -> None:
        """Hand a command to the desk worker (answers come back as the messages of
        bookcorner.kiosk.messages, one kind per outcome)."""
        self._pending += 1
        self._commands.put(command)

    @property
    def desk_busy(self) -> bool:
        """Commands handed to the desk that it has not finished (tests wait for 0)."""
        return self._pending > 0

    def on_desk_idle(self, message: DeskIdle) -> None:
        self._pending -= 1

    @property
    def reference(self) -> Reference | None:
        desk = self.controller.desk
        return desk.reference if desk is not None else None

    @property
    def timetable(self) -> Timetable | None:
        reference = self.reference
        return reference.timetable if reference is not None else None

    def weekly_picks(self, class_name: str) -> tuple[str, ...]:
        """"This week's picks" for a class: titles from its lists on the shelf now."""
        from bookcorner.circulation.suggestions import weekly_picks
        from bookcorner.kiosk.reading import shelf_of

        desk = self.controller.desk
        if desk is None:
            return ()
        reference = desk.reference
        picks = weekly_picks(reference, desk.state, class_name, self.clock.now(), shelf_of(reference))
        return tuple(item.title for item in picks)

    # -- devices and keys ------------------------------------------------------------------------

    def device_sink(self, event: Any) -> None:
        """Where the device layer delivers (from its reader threads, or the wedge)."""
        self.post_message(DeviceInput(event))

    def on_device_input(self, message: DeviceInput) -> None:
        event = message.event
        if isinstance(event, DeviceStatus):
            self.device_statuses[event.source] = event
            self.device_alerts = tuple(self._in_each_language(status) for status in self.device_statuses.values()
                                       if status.state in ("disconnected", "error"))
            log.info("device %s: %s %s", event.source, event.state, event.text("en"))
            return
        if isinstance(event, (Scan, CardTap)):
            self.submit(event)

    def _in_each_language(self, status: DeviceStatus) -> str:
        """A device's trouble in each language of the screen (a bilingual screen says everything
        twice: the librarian who reads only the other language must see the scanner is gone too)."""
        from bookcorner.kiosk.widgets import languages

        worded = dict.fromkeys(status.text(language) for language in languages(self.settings.screen.bilingual))
        return " / ".join(worded)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)) and not event.is_forwarded:
            touch = getattr(self.screen, "touch", None)
            if touch is not None:
                touch()
        if isinstance(event, events.Key) and not event.is_forwarded and self._wedge is not None:
            if event.key == "enter":
                if self._typing_a_pin(self._wedge.classifier.pending):
                    await self._replay(self._wedge.release(enter=True, now=event.time))
                else:
                    await self._replay(self._wedge.enter(event.time))
                return
            if event.is_printable and event.character is not None and len(event.character) == 1:
                await self._replay(self._wedge.key(event.character, event.time))
                return
            # another key (Tab, Esc, arrows): what the wedge holds was typed before it
            await self._replay(self._wedge.expire(event.time + 2 * self.settings.devices.max_key_gap))
        await super().on_event(event)

    def _typing_a_pin(self, keys: str) -> bool:
        """In the PIN dialog, keys held by the wedge that make a PIN are the librarian's, however
        fast they came (pasted, typed by a password manager): they go to the PIN field, not the
        scan path. A card the school knows, typed by a keyboard-style reader, is still a tap."""
        if not isinstance(self.screen, _dialogs().PinScreen):
            return False
        return looks_like_pin(keys) and not self._known_card(keys)

    def _known_card(self, typed: str) -> bool:
        import re

        from bookcorner.devices.cardid import typed_card_id

        wedge, reference = self.settings.devices.wedge, self.reference
        if reference is None or not wedge.card_pattern or not re.search(wedge.card_pattern, typed):
            return False
        return typed_card_id(typed, wedge.card_format, self.settings.devices.card_id_format) in reference.cards

    def _expire_wedge(self) -> None:
        if self._wedge is not None and self._wedge.holding:
            self.post_message(WedgeTick())

    async def on_wedge_tick(self, message: WedgeTick) -> None:
        if self._wedge is not None:
            await self._replay(self._wedge.expire(message.time))

    async def _replay(self, fragments: list) -> None:
        """A person's keys, handed back by the wedge: on to the screen, in order."""
        for fragment in fragments:
            for character in fragment.text:
                await super().on_event(events.Key(_character_to_key(character), character))
            if fragment.enter:
                await super().on_event(events.Key("enter", "\r"))

    def on_demo_panel_entered(self, message: DemoPanel.Entered) -> None:
        """The demo's typed line: a card (10 digits, as keyboard readers type) or a scan."""
        import re

        code = message.code
        if self.devices is None:
            return
        pattern = self.settings.devices.wedge.card_pattern
        if pattern and re.search(pattern, code):
            self.devices.simulate_tap(code)
        else:
            self.devices.simulate_scan(code)

    def device_report(self) -> str:
        from bookcorner.kiosk.crash import log_path

        lines = []
        for source, status in sorted(self.device_statuses.items()):
            lines.append(f"{source}: {status.state} — {status.text()}")
        if self.devices is not None:
            for source, counters in sorted(self.devices.diagnostics().items()):
                lines.append(f"{source}: " + ", ".join(f"{k} {v}" for k, v in counters.items()))
        if self._wedge is not None:
            lines.append(_("Keyboard wedge: on (keys typed faster than {ms} ms apart are scans)").format(
                ms=self.settings.devices.max_key_gap_ms))
        if not lines:
            lines.append(_("No scanner or card reader configured: scans and cards come as keystrokes."))
        lines.append(_("Log file: {path}").format(path=log_path(self.data_dir)))
        return "\n".join(lines)

    # -- what the desk answered ---------------------------------------------------------------

    def _answered(self, message: m.DeskOutcome) -> None:
        """Every answer from the desk: the scan or tap it answers, for the banner's latency."""
        self._answer_started = message.started

    @on(m.Answered)
    async def show_answer(self, message: m.Answered) -> None:
        self._answered(message)
        outcome = message.outcome
        await self._close_reports()
        answer = getattr(self.screen, "answer", None)
        if answer is not None:
            answer(outcome.feedback, outcome.view)
        self.sounds.play(outcome.feedback.sound)
        self.speech.answer(outcome.feedback, outcome.view)
        if outcome.feedback.recorded:
            self._journal_moved()

    @on(m.VisitOpened)
    async def open_visit(self, message: m.VisitOpened) -> None:
        self._answered(message)
        outcome = message.outcome
        await self._to_idle()
        await self.push_screen(_screen_for(outcome.view.kind)(outcome.view, outcome.feedback))
        if outcome.feedback is not None:
            self.sounds.play(outcome.feedback.sound)
            self.speech.answer(outcome.feedback, outcome.view)
        elif outcome.view.kind is s.VisitKind.BORROWER:
            self.speech.welcome(outcome.view, self._spoken_languages())

    @on(m.VisitChanged)
    def change_visit(self, message: m.VisitChanged) -> None:
        self._answered(message)
        show = getattr(self.screen, "show_view", None)
        if show is not None:
            show(message.outcome.view)

    @on(m.VisitClosed)
    async def close_visit(self, message: m.VisitClosed) -> None:
        self._answered(message)
        await self._to_idle()

    @on(m.PinWanted)
    async def ask_for_pin(self, message: m.PinWanted) -> None:
        self._answered(message)
        await self._to_idle()
        await self.push_screen(_dialogs().PinScreen(message.outcome.name, message.outcome.locked_until))

    @on(m.PinRefused)
    def refuse_pin(self, message: m.PinRefused) -> None:
        self._answered(message)
        if isinstance(self.screen, _dialogs().PinScreen):
            self.screen.refused(message.outcome.tries_left, message.outcome.locked_until)
            self.sounds.play("refusal")

    @on(m.CardToEnrol)
    def offer_enrolment(self, message: m.CardToEnrol) -> None:
        self._answered(message)
        if _is_librarian_screen(self.screen):
            self.screen.enrol(message.outcome.card_id)

    @on(m.BookToRegister)
    def offer_registration(self, message: m.BookToRegister) -> None:
        self._answered(message)
        if _is_librarian_screen(self.screen):
            self.screen.register(message.outcome.code, message.outcome.isbn13)

    @on(m.ChaseListReady)
    async def show_chase_list(self, message: m.ChaseListReady) -> None:
        self._answered(message)
        outcome = message.outcome
        if isinstance(self.screen, _dialogs().ChaseListScreen) and outcome.exported:
            self.screen.exported(outcome.exported)
        else:
            await self._close_reports()
            await self.push_screen(_dialogs().ChaseListScreen(outcome.class_name, outcome.lines))

    @on(m.WorkRecordReady)
    async def show_work_record(self, message: m.WorkRecordReady) -> None:
        self._answered(message)
        await self._close_reports()
        await self.push_screen(_dialogs().WorkRecordScreen(message.outcome.name, message.outcome.days))

    @on(m.UnsentReady)
    def show_unsent(self, message: m.UnsentReady) -> None:
        self._answered(message)
        if _is_librarian_screen(self.screen):
            self.screen.show_unsent(message.outcome.total, message.outcome.lines)

    @on(m.StocktakeShown)
    async def show_stocktake(self, message: m.StocktakeShown) -> None:
        """The stock-take screen, over the librarian's (opened at the first answer)."""
        from bookcorner.kiosk.screens.stocktake import StocktakeScreen

        self._answered(message)
        outcome = message.outcome
        await self._close_reports()
        if not isinstance(self.screen, StocktakeScreen):
            await self.push_screen(StocktakeScreen(outcome.view))
        screen = self.screen
        if isinstance(screen, StocktakeScreen):
            screen.show_view(outcome.view)
            if outcome.feedback is not None:
                screen.answer(outcome.feedback, None)
                self.sounds.play(outcome.feedback.sound)
                if outcome.feedback.recorded:
                    self._journal_moved()

    @on(m.TroubleReading)
    def trouble_reading(self, message: m.TroubleReading) -> None:
        self._answered(message)
        self.notify(message.outcome.message, severity="error", timeout=10)

    @on(m.DeskReady)
    async def desk_opened(self, message: m.DeskReady) -> None:
        self._answered(message)
        self.desk_ready = True
        self._next_poll = 0.0
        self._poll_tick()
        if isinstance(self.screen, _dialogs().ProblemScreen):
            await self.pop_screen()
        for screen in self.screen_stack:
            if isinstance(screen, IdleScreen):
                screen.show_slot()  # the timetable is known now
        self._maybe_ready()

    @on(m.StartFailed)
    async def desk_failed(self, message: m.StartFailed) -> None:
        self._answered(message)
        if not isinstance(self.screen, _dialogs().ProblemScreen):
            await self.push_screen(_dialogs().ProblemScreen(message.outcome.message))
        self.set_timer(RETRY_OPEN_S, lambda: self.submit(s.OpenDesk()))

    def banner_updated(self, banner: Banner) -> None:
        """A banner shows a new answer: how long since the scan or tap that caused it."""
        started = self._answer_started
        if started is None:
            return
        self._answer_started = None
        now = time.monotonic()
        self.feedback_latency.append(now - started)
        self.call_after_refresh(lambda: self.painted_latency.append(time.monotonic() - started))

    async def _to_idle(self) -> None:
        while len(self.screen_stack) > 1:
            await self.pop_screen()

    async def _close_reports(self) -> None:
        dialogs = _dialogs()
        while isinstance(self.screen, (dialogs.ChaseListScreen, dialogs.WorkRecordScreen)):
            await self.pop_screen()

    # -- what the screens ask for ---------------------------------------------------------------

    def end_visit(self, reason: str) -> None:
        self.submit(s.EndVisit(reason))

    def time_out(self) -> None:
        self.submit(s.EndVisit("timeout"))

    def switch_scan_mode(self, mode: s.ScanMode) -> None:
        self.submit(s.SwitchMode(mode))

    def enter_pin(self, pin: str) -> None:
        self.submit(s.EnterPin(pin))

    async def set_language(self, language: str) -> None:
        i18n.use_language(language)
        self.language_generation += 1
        relabel = getattr(self.screen, "relabel", None)
        if relabel is not None:
            await relabel()

    def restart(self) -> None:
        from bookcorner.kiosk.crash import EXIT_RESTART

        log.info("restart asked for in the librarian's mode")
        self.exit(return_code=EXIT_RESTART)

    def shut_down(self) -> None:
        command = self.settings.librarian.shutdown_command
        log.info("shut down asked for in the librarian's mode: %s", command)
        if command:
            try:
                subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            except OSError as error:
                log.error("could not shut down with %s: %s", command, error)
                self.notify(_("Could not shut down: {error}").format(error=error), severity="error")
                return
        self.exit(return_code=0)

    # -- sync --------------------------------------------------------------------------------------

    def sync_now(self) -> None:
        self._fast_poll_until = self.monotonic() + FAST_POLL_FOR_S
        self.request_sync_worker()

    @work(thread=True, group="sync-request", name="sync-request")
    def request_sync_worker(self) -> None:
        try:
            request_sync(self.data_dir)
            self.post_message(SyncRequested())
        except OSError as error:
            log.error("could not ask for a sync: %s", error)
            self.post_message(SyncRequested(str(error)))

    def on_sync_requested(self, message: SyncRequested) -> None:
        if message.error:
            self.notify(_("Could not ask for a sync: {error}").format(error=message.error), severity="error")
        self._next_poll = 0.0

    def _poll_tick(self) -> None:
        now = self.monotonic()
        if now < self._next_poll:
            return
        fast = now < self._fast_poll_until
        self._next_poll = now + (SYNC_POLL_FAST_S if fast else SYNC_POLL_S) - 0.01
        self.poll_sync()

    @work(thread=True, exclusive=True, group="sync-poll", name="sync-poll")
    def poll_sync(self) -> None:
        status = read_status(self.data_dir)
        desk = self.controller.desk
        last_seq = desk.journal.last_seq if desk is not None else 0
        self.post_message(SyncStatusRead(status, last_seq))

    def on_sync_status_read(self, message: SyncStatusRead) -> None:
        self.sync_state = (message.status, message.last_seq)

    def _journal_moved(self) -> None:
        """Events were recorded: the badge's "waiting" count grows at once."""
        desk = self.controller.desk
        if self.sync_state is not None and desk is not None:
            self.sync_state = (self.sync_state[0], desk.journal.last_seq)

    def _refresh_tick(self) -> None:
        if len(self.screen_stack) == 1 and self.desk_ready:
            self.submit(s.Refresh())


class DemoKioskApp(KioskApp, inherit_bindings=True):
    """The demo on a developer's terminal: the same kiosk, plus keys to leave it and to
    hide the demo panel."""

    BINDINGS = [
        ("ctrl+q", "quit", "Quit"),
        ("ctrl+c", "quit", "Quit"),
        ("f1", "toggle_demo_panel", "Demo panel"),
    ]

    def action_toggle_demo_panel(self) -> None:
        from bookcorner.kiosk.widgets.demo import DemoPanel

        for panel in self.screen.query(DemoPanel):
            panel.toggle_class("-hidden")


def build_app(
    settings: config.KioskConfig,
    *,
    data_dir: Path | None = None,
    clock: Any | None = None,
    demo_hints: tuple[Hint, ...] = (),
    devices: Any | None = "default",
    monotonic: Callable[[], float] = time.monotonic,
    on_ready: Callable[[], None] | None = None,
    language: str | None = None,
    quit_keys: bool = False,
) -> KioskApp:
    """The kiosk for this configuration: its data directory, the school's clock, the
    configured devices (``devices=None``: none at all, e.g. for benchmarks)."""
    from zoneinfo import ZoneInfo

    from bookcorner.journal.clock import SystemClock
    from bookcorner.kiosk.desk import CirculationDesk

    root = Path(data_dir) if data_dir is not None else settings.data_dir
    clock = clock or SystemClock(ZoneInfo(settings.kiosk.timezone))
    i18n.use_language(language or settings.kiosk.language)

    def open_desk() -> CirculationDesk:
        return CirculationDesk(root, settings.kiosk.id, clock, segment_events=settings.journal.segment_events,
                               policy=config.policy_of(settings), calendar=config.calendar_of(settings))

    app = (DemoKioskApp if quit_keys else KioskApp)(settings, root, clock=clock, open_desk=open_desk, demo_hints=demo_hints,
                   monotonic=monotonic, on_ready=on_ready)
    if devices == "default":
        from bookcorner.devices import Devices

        app.devices = Devices(settings.devices, sink=app.device_sink)
    else:
        app.devices = devices
    return app
