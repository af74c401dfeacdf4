"""The stock-take (清点) at the kiosk: the librarian scans every book on the shelf; a big
running count, the last book and a word for each scan (a book of another corner, one on
loan, one the catalogue does not know are flagged at once); then the result, and the books
found on the shelf while on loan checked in in one step.

Every scan is in the journal before it is counted on screen; a stock-take left (paused,
the librarian's mode timed out, the kiosk restarted) is offered again in the librarian's
mode, with its scans so far."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Digits, Static

from bookcorner.i18n import N_, _
from bookcorner.kiosk.screens.base import Body, KioskScreen
from bookcorner.kiosk.session import CheckInFound, FinishStocktake, LeaveStocktake
from bookcorner.kiosk.stocktaking import StocktakeLine, StocktakeReport, StocktakeView
from bookcorner.kiosk.widgets import in_each_language, pair
from bookcorner.kiosk.widgets.banner import Banner
from bookcorner.kiosk.widgets.countdown import Countdown


def shelf_words(shelf: tuple[str, ...] | None) -> str:
    if not shelf:
        return _("every book of the catalogue")
    return _("the shelf of class {classes}").format(classes=", ".join(shelf))


def count_line(view: StocktakeView) -> str:
    return _("{found} of {expected} books of this shelf found · {scans} scanned · {flagged} to look at").format(
        found=view.found, expected=view.expected, scans=view.scans, flagged=view.flagged)


def report_text(report: StocktakeReport) -> Text:
    """The result, in the screen's language: counts first, then the lists to act on."""
    text = Text()
    text.append(_("Present: {present} of {expected}. Missing: {missing}. From another corner: {misplaced}. "
                  "On loan but on the shelf: {on_loan}. Lost or withdrawn but found: {gone}. Unknown codes: {unknown}.")
                .format(present=report.present, expected=report.expected, missing=len(report.missing),
                        misplaced=len(report.misplaced), on_loan=len(report.on_loan), gone=len(report.gone),
                        unknown=len(report.unknown)), style="bold")
    sections: tuple[tuple[str, tuple[StocktakeLine, ...], str], ...] = (
        (N_("Missing (not on loan, not scanned):"), report.missing, "red"),
        (N_("From another corner (take them home):"), report.misplaced, "yellow"),
        (N_("On loan but on the shelf (came back without a scan):"), report.on_loan, "yellow"),
        (N_("Lost or withdrawn, but on the shelf:"), report.gone, "yellow"),
    )
    for heading, lines, style in sections:
        if not lines:
            continue
        text.append("\n\n" + _(heading), style=f"bold {style}")
        for line in lines:
            text.append(f"\n  • {line.title}" + (f"  ({line.detail})" if line.detail else ""))
    if report.unknown:
        text.append("\n\n" + _("Codes that are no book of the catalogue:"), style="bold red")
        text.append("\n  " + ", ".join(report.unknown))
    if report.checked_in:
        text.append("\n\n" + _("{count} book(s) on loan but on the shelf were checked in.").format(
            count=report.checked_in), style="green")
    return text


class StocktakeScreen(KioskScreen):
    """A stock-take running, then its result."""

    BINDINGS = [Binding("escape", "leave", show=False)]

    def __init__(self, view: StocktakeView) -> None:
        super().__init__()
        self.view = view
        self.cancel_armed = False

    @property
    def bilingual(self) -> bool:
        return self.kiosk.settings.screen.bilingual

    def _label(self, msgid: str) -> str:
        return "\n".join(pair(msgid, self.bilingual))

    def compose_body(self) -> ComposeResult:
        view = self.view
        with Body(id="stocktake"):
            yield Static(" · ".join(in_each_language(self.bilingual, lambda: _("Stock-take of {shelf}").format(
                shelf=shelf_words(view.shelf)))), id="stocktake-title")
            with Horizontal(id="stocktake-big"):  # found / expected, to read from across the room
                yield Digits("", id="stocktake-found")
                yield Static(" ╱\n╱ ", id="stocktake-slash")
                yield Digits("", id="stocktake-expected")
            yield Static("", id="stocktake-count")
            yield Static("", id="stocktake-last")
            with VerticalScroll(id="stocktake-report"):
                yield Static("", id="stocktake-result")
            with Vertical(classes="answer"):
                yield Banner(id="stocktake-banner")
                yield Countdown(self.bilingual)
                with Horizontal(id="actions"):
                    yield Button(self._label(N_("Finish the stock-take")), id="stocktake-finish", variant="primary")
                    yield Button(self._label(N_("Pause")), id="stocktake-leave")
                    yield Button(self._label(N_("Cancel the stock-take")), id="stocktake-cancel", variant="error")
                    yield Button("", id="stocktake-checkin", variant="success")
                    yield Button(self._label(N_("Back")), id="stocktake-back", variant="primary")

    def on_mount(self) -> None:
        self.timeout_s = self.kiosk.settings.librarian.session_timeout_s
        super().on_mount()
        self.show_view(self.view)

    def after_relabel(self) -> None:
        self.show_view(self.view)

    def show_view(self, view: StocktakeView) -> None:
        self.view = view
        self.query_one("#stocktake-found", Digits).update(str(view.found))
        self.query_one("#stocktake-expected", Digits).update(str(view.expected))
        self.query_one("#stocktake-count", Static).update("\n".join(in_each_language(
            self.bilingual, lambda: count_line(view))))
        last = "\n".join(in_each_language(self.bilingual, lambda: _("Last book: {title}").format(
            title=view.last_title))) if view.last_title else ""
        self.query_one("#stocktake-last", Static).update(last)
        report = view.report
        running = report is None
        for button_id in ("#stocktake-finish", "#stocktake-leave", "#stocktake-cancel"):
            self.query_one(button_id, Button).display = running
        self.query_one("#stocktake-back", Button).display = not running
        checkin = self.query_one("#stocktake-checkin", Button)
        waiting = len(report.on_loan) - report.checked_in if report is not None else 0
        checkin.display = waiting > 0
        if report is not None:
            checkin.label = "\n".join(in_each_language(self.bilingual, lambda: _(
                "Check in the {count} book(s) on loan but on the shelf").format(count=waiting)))
            self.query_one("#stocktake-result", Static).update(report_text(report))
            self.query_one("#stocktake-report").add_class("-shown")
            self.query_one(Banner).clear()  # the last scan's answer, until the check-in's

    @on(Button.Pressed, "#stocktake-finish")
    def _finish(self) -> None:
        self.kiosk.submit(FinishStocktake())

    @on(Button.Pressed, "#stocktake-leave")
    @on(Button.Pressed, "#stocktake-back")
    def action_leave(self) -> None:
        self.kiosk.submit(LeaveStocktake())

    @on(Button.Pressed, "#stocktake-checkin")
    def _check_in(self) -> None:
        self.kiosk.submit(CheckInFound())

    @on(Button.Pressed, "#stocktake-cancel")
    def _cancel(self) -> None:
        """Twice: a stock-take given up cannot be taken up again."""
        button = self.query_one("#stocktake-cancel", Button)
        if self.cancel_armed:
            self.kiosk.submit(FinishStocktake(cancel=True))
            return
        self.cancel_armed = True
        button.label = self._label(N_("Press again to cancel"))
        self.set_timer(5.0, self._disarm)

    def _disarm(self) -> None:
        self.cancel_armed = False
        self.query_one("#stocktake-cancel", Button).label = self._label(N_("Cancel the stock-take"))
