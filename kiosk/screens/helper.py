"""The student librarian's duty: the class's slot with its counters, fast bulk returns,
damaged and found books, the chase list, their own work record (form G) and a stock-take
of the shelf."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from bookcorner.i18n import N_, _
from bookcorner.kiosk.screens.base import Body, KioskScreen
from bookcorner.kiosk.session import (
    Feedback,
    LoadChaseList,
    LoadWorkRecord,
    OpenOwnLoans,
    ScanMode,
    StartStocktake,
    VisitView,
)
from bookcorner.kiosk.widgets import in_each_language, pair
from bookcorner.kiosk.widgets.banner import Banner
from bookcorner.kiosk.widgets.countdown import Countdown
from bookcorner.kiosk.wording import Tone

_MODES = (
    (ScanMode.CHECKIN, "mode-return"),
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
        Binding("f5", "stocktake", show=False),
    ]

    #: how many of this visit's scans stay listed
    LOG_LINES = 6

    def __init__(self, view: VisitView, feedback: Feedback | None = None) -> None:
        super().__init__()
        self.view = view
        self.first_feedback = feedback
        self.log_lines: deque[tuple[Tone, tuple[str, ...]]] = deque(maxlen=self.LOG_LINES)

    def compose_body(self) -> ComposeResult:
        bilingual = self.bilingual
        view = self.view
        with Body(id="helper", roomy_from=ROOMY_FROM):
            yield Static(" · ".join(in_each_language(bilingual, lambda: _(
                "Student librarian {name} (class {klass})").format(name=view.greeting, klass=view.class_name or "-"))),
                id="helper-title")
            yield Static("", id="slot-counters")
            with Horizontal(id="modes"):  # each label in both languages, one under the other
                yield Button(self._label(N_("Returns (F2)")), id="mode-return")
                yield Button(self._label(N_("Damaged (F3)")), id="mode-damaged")
                yield Button(self._label(N_("Found / repaired (F4)")), id="mode-found")
                yield Button(self._label(N_("Stock-take (F5)")), id="helper-stocktake")
            yield Static("", id="mode-hint")
            yield Static("", id="scan-log")
            with Vertical(classes="answer"):  # at the bottom, always whole, whatever is above
                yield Banner(id="helper-banner")
                yield Countdown(bilingual)
                with Horizontal(id="actions"):
                    yield Button(self._label(N_("Chase list")), id="chase")
                    yield Button(self._label(N_("My work record")), id="work")
                    yield Button(self._label(N_("My own books")), id="own")
                    yield Button(self._label(N_("Done")), id="done", variant="primary")

    @property
    def bilingual(self) -> bool:
        return self.kiosk.settings.screen.bilingual

    def _label(self, msgid: str) -> str:
        return "\n".join(pair(msgid, self.bilingual))

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
        self.query_one("#slot-counters", Static).update("\n".join(in_each_language(self.bilingual,
                                                                                 lambda: slot_line(view))))
        for mode, button_id in _MODES:
            self.query_one(f"#{button_id}", Button).variant = "success" if mode is view.mode else "default"
        hint = {
            ScanMode.CHECKIN: N_("Scan each book handed back. {done} done in this visit."),
            ScanMode.DAMAGED: N_("Scan a damaged book: it goes to the repair register. {done} done in this visit."),
            ScanMode.FOUND: N_("Scan a book that was lost or is back from repair. {done} done in this visit."),
        }.get(view.mode)
        lines = in_each_language(self.bilingual, lambda: _(hint).format(done=view.handled)) if hint else []
        self.query_one("#mode-hint", Static).update("\n".join(lines))

    def answer(self, feedback: Feedback, view: VisitView | None) -> None:
        if view is not None:
            self.show_view(view)
        super().answer(feedback, view)
        self.log_lines.appendleft((feedback.tone, tuple(
            f"{words.headline} — {words.detail}" if words.detail else words.headline for words in feedback.words)))
        self._show_log()

    def _show_log(self) -> None:
        """This visit's answers, newest first: the screen's language, the other one under it."""
        text = Text()
        styles = {Tone.SUCCESS: "green", Tone.REFUSAL: "red", Tone.WARNING: "yellow", Tone.ERROR: "bold red"}
        marks = {Tone.SUCCESS: "✔", Tone.REFUSAL: "✘", Tone.WARNING: "!", Tone.ERROR: "✘"}
        for index, (tone, lines) in enumerate(self.log_lines):
            if index:
                text.append("\n")
            text.append(f"{marks[tone]} {lines[0]}", style=styles[tone])
            for other in lines[1:]:
                text.append(f"\n  {other}", style=f"dim {styles[tone]}")
        self.query_one("#scan-log", Static).update(text)

    def action_mode(self, mode: str) -> None:
        self.kiosk.switch_scan_mode(ScanMode(mode))

    @on(Button.Pressed, "#modes Button")
    def _mode_button(self, event: Button.Pressed) -> None:
        if str(event.button.id).startswith("mode-"):  # the stock-take's button is no scan mode
            self.action_mode(str(event.button.id).removeprefix("mode-"))

    @on(Button.Pressed, "#chase")
    def _chase(self) -> None:
        self.kiosk.submit(LoadChaseList())

    @on(Button.Pressed, "#work")
    def _work(self) -> None:
        self.kiosk.submit(LoadWorkRecord())

    @on(Button.Pressed, "#helper-stocktake")
    def action_stocktake(self) -> None:
        self.kiosk.submit(StartStocktake())

    @on(Button.Pressed, "#own")
    def _own(self) -> None:
        self.kiosk.submit(OpenOwnLoans())

    @on(Button.Pressed, "#done")
    def action_done(self) -> None:
        self.kiosk.end_visit("done")
