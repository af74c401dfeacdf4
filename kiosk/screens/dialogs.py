"""Dialogs over a screen: the librarian's PIN, the chase list, the work record, and the
notice shown when the kiosk cannot start."""

from __future__ import annotations

from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Static

from bookcorner.i18n import N_, _
from bookcorner.kiosk.reports import ChaseLine, WorkDay
from bookcorner.kiosk.screens.base import Body, KioskModal, KioskScreen
from bookcorner.kiosk.session import Feedback, LoadChaseList, VisitView
from bookcorner.kiosk.widgets import pair
from bookcorner.kiosk.widgets.countdown import Countdown
from bookcorner.kiosk.widgets.keypad import PinPad
from bookcorner.kiosk.wording import book_title, format_date


class PinScreen(KioskModal):
    """The librarian's card was tapped: the PIN opens the librarian's mode."""

    BINDINGS = [Binding("escape", "cancel", show=False)]

    def __init__(self, name: str, locked_until: datetime | None = None) -> None:
        super().__init__()
        self.librarian = name
        self.locked_until = locked_until

    def compose(self) -> ComposeResult:
        with Horizontal(id="pin-dialog", classes="dialog"):
            with Vertical(id="pin-side"):
                yield Static(_("{name}: enter your PIN").format(name=self.librarian), id="pin-title")
                yield Static("", id="pin-message")
                yield Countdown(self.kiosk.settings.screen.bilingual)
                yield Button(_("Cancel"), id="cancel")
            yield PinPad()

    def answer(self, feedback: Feedback, view: VisitView | None) -> None:
        self.touch()
        words = feedback.words[0]
        self.query_one("#pin-message", Static).update(f"{words.headline}\n{words.detail}".strip())

    def on_mount(self) -> None:
        self.timeout_s = 45
        super().on_mount()
        if self.locked_until is not None:
            self.refused(0, self.locked_until)

    def refused(self, tries_left: int, locked_until: datetime | None) -> None:
        self.touch()
        message = self.query_one("#pin-message", Static)
        if locked_until is not None:
            message.update(_("Too many wrong PINs: locked until {time}.").format(time=f"{locked_until:%H:%M}"))
        else:
            message.update(_("Wrong PIN. {left} more tries before the lock-out.").format(left=tries_left))
        message.add_class("-refused")
        self.query_one(PinPad).clear()

    def on_pin_pad_entered(self, event: PinPad.Entered) -> None:
        self.query_one("#pin-message", Static).update(_("Checking…"))
        self.kiosk.enter_pin(event.pin)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.kiosk.end_visit("cancel")


class ChaseListScreen(KioskModal):
    """A class's books still out, overdue ones first, to export for the class teacher."""

    BINDINGS = [Binding("escape", "close", show=False)]

    def __init__(self, class_name: str, lines: tuple[ChaseLine, ...]) -> None:
        super().__init__()
        self.class_name = class_name
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical(id="chase-dialog", classes="dialog wide"):
            overdue = sum(line.overdue for line in self.lines)
            yield Static(_("Class {klass}: {count} book(s) out, {overdue} overdue").format(
                klass=self.class_name, count=len(self.lines), overdue=overdue), classes="dialog-title")
            table: DataTable[str] = DataTable(zebra_stripes=True, cursor_type="row")
            table.add_columns(_("Name"), _("Book"), _("Due"), _("Late"))
            for line in self.lines:
                late = _("{days} school day(s)").format(days=line.days_late) if line.overdue else ""
                table.add_row(line.name, book_title(line.title), format_date(line.due), late)
            yield table
            yield Static("", id="exported")
            with Horizontal(classes="dialog-actions"):
                yield Button(_("Export for the teacher"), id="export", variant="primary")
                yield Button(_("Close"), id="close")

    def exported(self, paths: tuple) -> None:
        self.query_one("#exported", Static).update(
            _("Saved: {files}").format(files=", ".join(str(path) for path in paths)))

    @on(Button.Pressed, "#export")
    def _export(self) -> None:
        self.kiosk.submit(LoadChaseList(export=True))

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss()


class WorkRecordScreen(KioskModal):
    """A student librarian's work record (form G): what they did, day by day."""

    BINDINGS = [Binding("escape", "close", show=False)]

    def __init__(self, name: str, days: tuple[WorkDay, ...]) -> None:
        super().__init__()
        self.librarian = name
        self.days = days

    def compose(self) -> ComposeResult:
        with Vertical(id="work-dialog", classes="dialog wide"):
            total = sum(day.total for day in self.days)
            yield Static(_("Work record of {name}: {total} book(s) handled in {days} day(s)").format(
                name=self.librarian, total=total, days=len(self.days)), classes="dialog-title")
            table: DataTable[str] = DataTable(zebra_stripes=True, cursor_type="row")
            table.add_columns(_("Day"), _("Returns"), _("To repair"), _("Found / repaired"), _("Total"))
            for day in self.days:
                table.add_row(format_date(day.day), str(day.returns), str(day.damaged), str(day.found), str(day.total))
            yield table
            with Horizontal(classes="dialog-actions"):
                yield Button(_("Close"), id="close")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss()


class ProblemScreen(KioskScreen):
    """The kiosk cannot work (the journal or the reference data cannot be read): what the
    librarian should do. It tries again by itself."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose_body(self) -> ComposeResult:
        bilingual = self.kiosk.settings.screen.bilingual
        with Body(id="problem-area"):
            with Vertical(id="problem", classes="dialog"):
                yield Static("\n".join(pair(N_("The book corner is not working right now"), bilingual)),
                             classes="dialog-title")
                yield Static("\n".join(pair(
                    N_("Please tell the librarian. Borrowing and returning wait until this is fixed."), bilingual)))
                yield Static(self.message, id="problem-detail")  # for the librarian, in the screen's language
                yield Static("\n".join(pair(N_("The kiosk tries again by itself every 30 seconds."), bilingual)))
