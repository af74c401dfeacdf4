"""A child's session: a greeting, the books on loan to them, how many more they may borrow.

Every scan borrows, renews or (an overdue book) takes back, and the answer shows at once
in the banner. The session ends on a second tap, the Done button (or Esc/Enter), or after
a quiet spell with a countdown; this screen is then thrown away, so the next child never
sees it.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from bookcorner.i18n import N_, _
from bookcorner.kiosk.screens.base import Body, KioskScreen
from bookcorner.kiosk.session import Feedback, ScanMode, VisitView
from bookcorner.kiosk.widgets import in_each_language, pair
from bookcorner.kiosk.widgets.banner import Banner
from bookcorner.kiosk.widgets.countdown import Countdown
from bookcorner.kiosk.widgets.loans import LoanList


def greeting(view: VisitView, bilingual: bool) -> str:
    def words() -> str:
        if view.class_name:
            return _("Hello, {name}! (class {klass})").format(name=view.greeting, klass=view.class_name)
        return _("Hello, {name}!").format(name=view.greeting)

    return " · ".join(in_each_language(bilingual, words))


def allowance(view: VisitView, bilingual: bool) -> str:
    def words() -> str:
        if view.overdue and view.blocked:
            return _("Please bring back the overdue book first: scan it here.")
        if view.blocked:
            return _("You cannot borrow at the moment: please ask the librarian.")
        if view.may_checkout:
            return _("You may borrow {more} more (you have {held}).").format(more=view.may_checkout, held=view.loan_count)
        return _("You have {held} books: bring one back to borrow another.").format(held=view.loan_count)

    return "\n".join(in_each_language(bilingual, words))


def read_next(view: VisitView, bilingual: bool) -> str:
    """What to read next: a short heading in each language, then the titles (titles only)."""
    if not view.suggestions:
        return ""
    heading = " · ".join(pair(N_("Read next, on the shelf now:"), bilingual))
    return "\n".join([heading, *(f"  • {title}" for title in view.suggestions)])


class VisitScreen(KioskScreen):
    """One child (or teacher) borrowing."""

    BINDINGS = [
        Binding("escape,enter", "done", show=False),
    ]

    def __init__(self, view: VisitView, feedback: Feedback | None = None) -> None:
        super().__init__()
        self.view = view
        self.first_feedback = feedback
        self.timeout_s = None

    def compose_body(self) -> ComposeResult:
        bilingual = self.kiosk.settings.screen.bilingual
        with Body(id="visit"):
            yield Static(greeting(self.view, bilingual), id="greeting")
            yield Static(allowance(self.view, bilingual), id="allowance")
            yield Static(" · ".join(pair(N_("Your books:"), bilingual)), id="loans-title")
            yield LoanList(id="loans")
            yield Static("", id="read-next")
            with Vertical(classes="answer"):  # at the bottom, always whole, whatever is above
                yield Banner(id="visit-banner")
                yield Countdown(bilingual)
                with Horizontal(id="actions"):
                    yield Button(" · ".join(pair(N_("Done"), bilingual)),
                                 id="done", variant="primary")
                    yield Button(self._mode_label(), id="mode")

    def _mode_label(self) -> str:
        bilingual = self.kiosk.settings.screen.bilingual
        msgid = N_("Give a book back") if self.view.mode is ScanMode.CHECKOUT else N_("Borrow instead")
        return " · ".join(pair(msgid, bilingual))

    def on_mount(self) -> None:
        self.timeout_s = self.kiosk.settings.screen.session_timeout_s
        super().on_mount()
        self.show_view(self.view)
        if self.first_feedback is not None:
            self.answer(self.first_feedback, self.view)

    def after_relabel(self) -> None:
        self.show_view(self.view)

    def show_view(self, view: VisitView) -> None:
        self.view = view
        bilingual = self.kiosk.settings.screen.bilingual
        self.query_one("#greeting", Static).update(greeting(view, bilingual))
        self.query_one("#allowance", Static).update(allowance(view, bilingual))
        self.query_one("#allowance").set_class(view.blocked, "-blocked")
        self.query_one(LoanList).show(view.loans)
        suggestions = self.query_one("#read-next", Static)
        suggestions.update(read_next(view, bilingual))
        suggestions.display = bool(view.suggestions)
        self.query_one("#mode", Button).label = self._mode_label()
        self.set_class(view.mode is ScanMode.CHECKIN, "-returning")

    def answer(self, feedback: Feedback, view: VisitView | None) -> None:
        if view is not None:
            self.show_view(view)
        super().answer(feedback, view)

    @on(Button.Pressed, "#done")
    def action_done(self) -> None:
        self.kiosk.end_visit("done")

    @on(Button.Pressed, "#mode")
    def _toggle_mode(self) -> None:
        self.kiosk.switch_scan_mode(ScanMode.CHECKIN if self.view.mode is ScanMode.CHECKOUT else ScanMode.CHECKOUT)


