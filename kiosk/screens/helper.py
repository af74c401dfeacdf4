"""The student librarian's duty: the class's slot with its counters, fast bulk returns,
damaged and found books, the chase list and their own work record (form G)."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from i18n import _
from kiosk.screens.base import Body, KioskScreen
from kiosk.session import Feedback, LoadChaseList, LoadWorkRecord, OpenOwnLoans, ScanMode, VisitView
from kiosk.widgets.banner import Banner
from kiosk.widgets.countdown import Countdown
from kiosk.wording import Tone

_MODES = (
    (ScanMode.RETURN, "mode-return"),
    (ScanMode.DAMAGED, "mode-damaged"),
    (ScanMode.FOUND, "mode-found"),
)


#: the rows its roomy layout needs, with room to list a few answers
ROOMY_FROM = 26


def slot_line(view: VisitView) -> str:
    slot = view.slot
    if slot is None:
        return _("No class to look after right now.")
    if slot.until is None:
        head = _("Free borrowing; your class {klass} today").format(klass=slot.class_name)
    else:
        head = _("Class {klass}'s slot until {end}").format(klass=slot.class_name, end=f"{slot.until:%H:%M}")
    return _("{head}: {loans} lent, {returns} returned").format(head=head, loans=slot.loans, returns=slot.returns)


class HelperScreen(KioskScreen):
    """A student librarian on duty. Scans take books back (the default), or send them to
    repair, or put them back in circulation, as the mode buttons say."""

    BINDINGS = [
        Binding("escape", "done", show=False),
        Binding("f2", "mode('return')", show=False),
        Binding("f3", "mode('damaged')", show=False),
        Binding("f4", "mode('found')", show=False),
    ]

    #: how many of this visit's scans stay listed
    LOG_LINES = 6

    def __init__(self, view: VisitView, feedback: Feedback | None = None) -> None:
        super().__init__()
        self.view = view
        self.first_feedback = feedback
        self.log_lines: deque[tuple[Tone, str]] = deque(maxlen=self.LOG_LINES)

    def compose_body(self) -> ComposeResult:
        with Body(id="helper", roomy_from=ROOMY_FROM):
            yield Static(_("Student librarian {name} (class {klass})").format(
                name=self.view.greeting, klass=self.view.class_name or "-"), id="helper-title")
            yield Static("", id="slot-counters")
            with Horizontal(id="modes"):
                yield Button(_("Returns (F2)"), id="mode-return")
                yield Button(_("Damaged (F3)"), id="mode-damaged")
                yield Button(_("Found / repaired (F4)"), id="mode-found")
            yield Static("", id="mode-hint")
            yield Static("", id="scan-log")
            with Vertical(classes="answer"):  # at the bottom, always whole, whatever is above
                yield Banner(id="helper-banner")
                yield Countdown()
                with Horizontal(id="actions"):
                    yield Button(_("Chase list"), id="chase")
                    yield Button(_("My work record"), id="work")
                    yield Button(_("My own books"), id="own")
                    yield Button(_("Done"), id="done", variant="primary")

    def on_mount(self) -> None:
        self.timeout_s = self.kiosk.settings.screen.session_timeout_s * 2
        super().on_mount()
        self.show_view(self.view)
        if self.first_feedback is not None:
            self.answer(self.first_feedback, self.view)

    def after_relabel(self) -> None:
        self.show_view(self.view)
        self._show_log()

    def show_view(self, view: VisitView) -> None:
        self.view = view
        self.query_one("#slot-counters", Static).update(slot_line(view))
        for mode, button_id in _MODES:
            self.query_one(f"#{button_id}", Button).variant = "success" if mode is view.mode else "default"
        hint = {
            ScanMode.RETURN: _("Scan each book handed back. {done} done in this visit."),
            ScanMode.DAMAGED: _("Scan a damaged book: it goes to the repair register. {done} done in this visit."),
            ScanMode.FOUND: _("Scan a book that was lost or is back from repair. {done} done in this visit."),
        }.get(view.mode, "")
        self.query_one("#mode-hint", Static).update(hint.format(done=view.handled))

    def answer(self, feedback: Feedback, view: VisitView | None) -> None:
        if view is not None:
            self.show_view(view)
        super().answer(feedback, view)
        main = feedback.words[0]
        self.log_lines.appendleft((feedback.tone, f"{main.headline} — {main.detail}" if main.detail else main.headline))
        self._show_log()

    def _show_log(self) -> None:
        text = Text()
        styles = {Tone.SUCCESS: "green", Tone.REFUSAL: "red", Tone.WARNING: "yellow", Tone.ERROR: "bold red"}
        marks = {Tone.SUCCESS: "✔", Tone.REFUSAL: "✘", Tone.WARNING: "!", Tone.ERROR: "✘"}
        for index, (tone, line) in enumerate(self.log_lines):
            if index:
                text.append("\n")
            text.append(f"{marks[tone]} {line}", style=styles[tone])
        self.query_one("#scan-log", Static).update(text)

    def action_mode(self, mode: str) -> None:
        self.kiosk.switch_scan_mode(ScanMode(mode))

    @on(Button.Pressed, "#modes Button")
    def _mode_button(self, event: Button.Pressed) -> None:
        self.action_mode(str(event.button.id).removeprefix("mode-"))

    @on(Button.Pressed, "#chase")
    def _chase(self) -> None:
        self.kiosk.submit(LoadChaseList())

    @on(Button.Pressed, "#work")
    def _work(self) -> None:
        self.kiosk.submit(LoadWorkRecord())

    @on(Button.Pressed, "#own")
    def _own(self) -> None:
        self.kiosk.submit(OpenOwnLoans())

    @on(Button.Pressed, "#done")
    def action_done(self) -> None:
        self.kiosk.end_visit("done")
