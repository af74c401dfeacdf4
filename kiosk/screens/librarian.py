"""The librarian's mode (card plus PIN): sync now and what is not on the server yet,
enrolling an unknown card, registering a new book, a stock-take of the shelf (started, or
an unfinished one taken up again), devices, language, power.

Any book scanned here is taken back; an unknown card tapped here is offered for
enrolment, an unknown book scanned here for registration.
"""

from __future__ import annotations

from datetime import datetime, timezone

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    OptionList,
    ProgressBar,
    RadioButton,
    RadioSet,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from bookcorner.circulation.model import ItemType, Role
from bookcorner.i18n import _
from bookcorner.kiosk.reports import EventLine
from bookcorner.kiosk.screens.base import Body, KioskScreen
from bookcorner.kiosk.session import (
    EnrolCard,
    Feedback,
    FinishStocktake,
    LoadUnsent,
    OpenOwnLoans,
    RegisterBook,
    StartStocktake,
    VisitView,
)
from bookcorner.kiosk.widgets.banner import Banner
from bookcorner.kiosk.widgets.countdown import Countdown
from bookcorner.kiosk.widgets.topbar import when
from bookcorner.sync.journal_notice import JournalNotice, mark_seen, unseen
from bookcorner.sync.status import Phase, SyncStatus

STAFF = "\x00staff"
_TYPES = ((ItemType.CIRCULATING, "type-circulating"), (ItemType.REFERENCE, "type-reference"),
          (ItemType.PERIODICAL, "type-periodical"))


def sync_details(status: SyncStatus, last_seq: int, now: datetime) -> str:
    phase = {
        Phase.NEVER: _("no sync tried yet"),
        Phase.IDLE: _("online, the last sync succeeded"),
        Phase.SYNCING: _("syncing now"),
        Phase.OFFLINE: _("offline: the server could not be reached"),
        Phase.BUSY: _("server busy, retrying: every event stays here until the server has it"),
        Phase.ERROR: _("the server answered with a problem"),
    }[status.phase]
    lines = [
        _("Sync: {phase}").format(phase=phase),
        _("Events recorded here: {total}; not yet on the server: {waiting}").format(
            total=last_seq, waiting=status.waiting(last_seq)),
        _("Last successful sync: {when}").format(when=when(status.last_success, now) or _("never")),
        _("Last try: {when}").format(when=when(status.last_attempt, now) or _("never")),
        _("For your review on the server: {count}").format(count=status.needs_review),
    ]
    if status.last_error:
        lines.append(_("Last problem: {error}").format(error=status.last_error))
    if status.reference_version:
        lines.append(_("Roster and catalogue version: {version}").format(version=status.reference_version))
    return "\n".join(lines)


class LibrarianScreen(KioskScreen):
    """The librarian at the kiosk."""

    BINDINGS = [Binding("escape", "done", show=False)]

    def __init__(self, view: VisitView, feedback: Feedback | None = None) -> None:
        super().__init__()
        self.view = view
        self.first_feedback = feedback
        self.card_to_enrol: str | None = None
        self.book_to_register: str | None = None
        #: an unfinished stock-take is what the librarian sees first
        self.active_tab = "tab-stocktake" if view.stocktake is not None else "tab-sync"
        self.cancel_armed = False
        self.sync_requested_at: datetime | None = None
        self.shutdown_armed = False
        self.journal_notice: JournalNotice | None = None

    def compose_body(self) -> ComposeResult:
        with Body(id="librarian"):
            yield Static(_("Librarian: {name}").format(name=self.view.name), id="librarian-title")
            with TabbedContent(initial=self.active_tab):
                with TabPane(_("Sync"), id="tab-sync"):
                    with VerticalScroll():
                        with Horizontal(classes="row"):
                            yield Button(_("Sync now"), id="sync-now", variant="primary")
                            yield Button(_("Events not yet sent"), id="show-unsent")
                        yield ProgressBar(id="sync-progress", show_eta=False)
                        with Horizontal(id="journal-notice-row", classes="row"):
                            yield Static("", id="journal-notice")
                            yield Button(_("Seen"), id="journal-seen")
                        yield Static("", id="sync-summary")
                        yield Static("", id="sync-details")
                        table: DataTable[str] = DataTable(id="unsent", zebra_stripes=True, cursor_type="row")
                        table.add_columns("#", _("Time"), _("What"), _("Who"), _("Book or code"))
                        yield table
                with TabPane(_("Enrol a card"), id="tab-enrol"):
                    yield Static(_("Tap the new card on the reader."), id="enrol-card")
                    with Horizontal(id="enrol-pick"):
                        yield OptionList(id="enrol-classes")
                        yield OptionList(id="enrol-people")
                    with Horizontal(classes="row"):
                        yield Checkbox(_("It replaces a lost card"), id="enrol-replace")
                        yield Button(_("Enrol"), id="enrol", variant="primary", disabled=True)
                with TabPane(_("Register a book"), id="tab-register"):
                    yield Static(_("Scan the new book."), id="register-code")
                    with Horizontal(classes="row"):
                        yield Input(placeholder=_("Title (required)"), id="register-title")
                        yield Button(_("Register"), id="register", variant="primary", disabled=True)
                    with RadioSet(id="register-type"):
                        yield RadioButton(_("Borrowable book"), id="type-circulating", value=True)
                        yield RadioButton(_("Reference book (stays in the room)"), id="type-reference")
                        yield RadioButton(_("Magazine"), id="type-periodical")
                    with Horizontal(classes="row"):
                        yield Input(placeholder=_("Author (optional)"), id="register-author")
                        yield Input(placeholder=_("Call number (optional)"), id="register-call")
                with TabPane(_("Stock-take"), id="tab-stocktake"):
                    yield Static(self._stocktake_words(), id="stocktake-pending")
                    with Horizontal(classes="row"):
                        yield Button(_("Continue the stock-take") if self.view.stocktake is not None
                                     else _("Start a stock-take"), id="stocktake-start", variant="primary")
                        if self.view.stocktake is not None:
                            yield Button(_("Cancel it"), id="stocktake-drop", variant="error")
                with TabPane(_("Devices"), id="tab-devices"):
                    with VerticalScroll():
                        yield Static("", id="device-details")
                        yield Button(_("Refresh"), id="devices-refresh")
                with TabPane(_("Language"), id="tab-language"):
                    with Horizontal(classes="row"):
                        yield Button("中文", id="lang-zh_CN")
                        yield Button("English", id="lang-en")
                with TabPane(_("Power"), id="tab-power"):
                    yield Static(_("Restart the kiosk program, or shut the kiosk down (press twice)."))
                    with Horizontal(classes="row"):
                        yield Button(_("Restart"), id="restart")
                        yield Button(_("Shut down"), id="shutdown", variant="error")
            with Vertical(classes="answer"):  # at the bottom, always whole, whatever is above
                yield Banner(id="librarian-banner")
                yield Countdown(self.kiosk.settings.screen.bilingual)
                with Horizontal(id="actions"):
                    yield Button(_("My own books"), id="own")
                    yield Button(_("Done"), id="done", variant="primary")

    def on_mount(self) -> None:
        self.timeout_s = self.kiosk.settings.librarian.session_timeout_s
        super().on_mount()
        self.watch(self.kiosk, "sync_state", self.show_sync, init=True)
        self._fill_classes()
        self.show_devices()
        if self.first_feedback is not None:
            self.answer(self.first_feedback, self.view)

    def after_relabel(self) -> None:
        if self.card_to_enrol:
            self.enrol(self.card_to_enrol)
        if self.book_to_register:
            self.register(self.book_to_register, None)

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        self.active_tab = event.pane.id or self.active_tab

    def show_tab(self, tab: str) -> None:
        self.active_tab = tab
        self.query_one(TabbedContent).active = tab

    # -- sync ------------------------------------------------------------------------------

    def show_sync(self, state: tuple[SyncStatus, int] | None) -> None:
        if state is None:
            return
        status, last_seq = state
        now = self.kiosk.clock.now()
        self.query_one("#sync-details", Static).update(sync_details(status, last_seq, now))
        self.show_journal_notice()
        bar = self.query_one("#sync-progress", ProgressBar)
        if status.phase is Phase.SYNCING and status.to_send:
            bar.update(total=status.to_send, progress=status.sent)
        if self.sync_requested_at is None:
            return
        summary = self.query_one("#sync-summary", Static)
        attempted = _parse(status.last_attempt)
        if status.phase is Phase.SYNCING:
            summary.update(_("Syncing: {sent} of {total} events sent…").format(sent=status.sent, total=status.to_send))
        elif attempted is not None and attempted >= self.sync_requested_at:
            waiting = status.waiting(last_seq)
            if status.phase is Phase.IDLE:
                bar.update(total=max(1, status.to_send), progress=max(1, status.to_send))
                summary.update(_("Done: {waiting} event(s) still waiting, {review} for your review.").format(
                    waiting=waiting, review=status.needs_review))
            else:
                summary.update(_("Not synced: {error}. {waiting} event(s) wait for the next try.").format(
                    error=status.last_error or _("no answer"), waiting=waiting))
            self.sync_requested_at = None

    def show_journal_notice(self) -> None:
        """A journal that went back in time (restored, repaired, copied back), until seen."""
        self.journal_notice = unseen(self.kiosk.data_dir)
        self.query_one("#journal-notice-row").display = self.journal_notice is not None
        if self.journal_notice is not None:
            self.query_one("#journal-notice", Static).update(self.journal_notice.describe())

    @on(Button.Pressed, "#journal-seen")
    def _journal_seen(self) -> None:
        if self.journal_notice is not None:
            mark_seen(self.kiosk.data_dir, self.journal_notice)
        self.show_journal_notice()

    @on(Button.Pressed, "#sync-now")
    def _sync_now(self) -> None:
        self.sync_requested_at = self.kiosk.clock.now().replace(microsecond=0)
        self.query_one("#sync-summary", Static).update(_("Asked the sync daemon to sync now…"))
        bar = self.query_one("#sync-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.add_class("-shown")
        self.kiosk.sync_now()
        self.set_timer(20.0, self._sync_silent)

    def _sync_silent(self) -> None:
        if self.sync_requested_at is not None:
            self.query_one("#sync-summary", Static).update(
                _("The sync daemon has not answered yet. Is it running? (bookcorner syncd)"))

    @on(Button.Pressed, "#show-unsent")
    def _show_unsent(self) -> None:
        state = self.kiosk.sync_state
        self.kiosk.submit(LoadUnsent(state[0].acked_seq if state else 0))

    def show_unsent(self, total: int, lines: tuple[EventLine, ...]) -> None:
        table = self.query_one("#unsent", DataTable)
        table.add_class("-shown")
        table.clear()
        for line in lines:
            table.add_row(str(line.seq), line.time, line.what, line.who, line.detail)
        self.query_one("#sync-summary", Static).update(
            _("{total} event(s) not yet on the server; the newest {shown} are listed.").format(
                total=total, shown=len(lines)))

    # -- enrolment --------------------------------------------------------------------------

    def _fill_classes(self) -> None:
        reference = self.kiosk.reference
        classes = sorted({p.class_name for p in reference.patrons.values() if p.class_name and p.role in (
            Role.STUDENT, Role.STUDENT_LIBRARIAN)}) if reference else []
        options = [Option(_("Class {klass}").format(klass=name), id=name) for name in classes]
        options.append(Option(_("Teachers and staff"), id=STAFF))
        picker = self.query_one("#enrol-classes", OptionList)
        picker.clear_options()
        picker.add_options(options)

    @on(OptionList.OptionHighlighted, "#enrol-classes")
    @on(OptionList.OptionSelected, "#enrol-classes")
    def _class_chosen(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        reference = self.kiosk.reference
        if reference is None:
            return
        chosen = event.option.id
        cards = {c.patron_id for c in reference.cards.values() if str(c.status) == "active"}
        people = sorted(
            (p for p in reference.patrons.values()
             if (p.class_name == chosen and p.role in (Role.STUDENT, Role.STUDENT_LIBRARIAN))
             or (chosen == STAFF and p.role in (Role.TEACHER, Role.LIBRARIAN))),
            key=lambda p: p.patron_id)
        picker = self.query_one("#enrol-people", OptionList)
        picker.clear_options()
        picker.add_options([
            Option(f"{p.name}  {p.patron_id}" + ("  " + _("(has a card)") if p.patron_id in cards else ""),
                   id=p.patron_id)
            for p in people])
        self._update_enrol_button()

    @on(OptionList.OptionHighlighted, "#enrol-people")
    def _person_chosen(self) -> None:
        self._update_enrol_button()

    def _update_enrol_button(self) -> None:
        people = self.query_one("#enrol-people", OptionList)
        self.query_one("#enrol", Button).disabled = not (self.card_to_enrol and people.highlighted is not None)

    def enrol(self, card_id: str) -> None:
        self.card_to_enrol = card_id
        self.show_tab("tab-enrol")
        self.query_one("#enrol-card", Static).update(
            _("Card {card}: choose the class, then the person it is for.").format(card=card_id))
        self.query_one("#enrol-classes", OptionList).focus()
        self._update_enrol_button()

    @on(Button.Pressed, "#enrol")
    def _enrol(self) -> None:
        people = self.query_one("#enrol-people", OptionList)
        if self.card_to_enrol is None or people.highlighted is None:
            return
        patron_id = people.get_option_at_index(people.highlighted).id
        replace = self.query_one("#enrol-replace", Checkbox).value
        self.kiosk.submit(EnrolCard(self.card_to_enrol, str(patron_id), replace))
        self.card_to_enrol = None
        self.query_one("#enrol-card", Static).update(_("Tap the new card on the reader."))
        self.query_one("#enrol-replace", Checkbox).value = False
        self._update_enrol_button()

    # -- registration -----------------------------------------------------------------------

    def register(self, code: str, isbn13: str | None) -> None:
        self.book_to_register = code
        self.show_tab("tab-register")
        self.query_one("#register-code", Static).update(
            _("Barcode {code}: enter the title and choose the kind of book.").format(code=code))
        self.query_one("#register", Button).disabled = False
        self.query_one("#register-title", Input).focus()

    @on(Input.Submitted, "#register-title")
    @on(Button.Pressed, "#register")
    def _register(self) -> None:
        if self.book_to_register is None:
            return
        title = self.query_one("#register-title", Input).value.strip()
        if not title:
            self.query_one("#register-code", Static).update(_("A book needs at least its title."))
            return
        pressed = self.query_one("#register-type", RadioSet).pressed_button
        kind = next((kind for kind, button_id in _TYPES if pressed is not None and pressed.id == button_id),
                    ItemType.CIRCULATING)
        self.kiosk.submit(RegisterBook(self.book_to_register, title, kind,
                                       self.query_one("#register-author", Input).value.strip(),
                                       self.query_one("#register-call", Input).value.strip()))
        self.book_to_register = None
        for field in ("#register-title", "#register-author", "#register-call"):
            self.query_one(field, Input).value = ""
        self.query_one("#register", Button).disabled = True
        self.query_one("#register-code", Static).update(_("Scan the new book."))

    # -- the stock-take ----------------------------------------------------------------------

    def _stocktake_words(self) -> str:
        pending = self.view.stocktake
        if pending is None:
            return _("Scan every book on the shelf: the kiosk tells you which books are missing, which belong "
                     "to another corner and which came back without a scan. Scans are not returns meanwhile.")
        return _("A stock-take is not finished: {scans} scan(s) so far, started {when}. "
                 "Continue it, or cancel it.").format(
            scans=pending.scans, when=when(pending.started, self.kiosk.clock.now()))

    @on(Button.Pressed, "#stocktake-start")
    def _stocktake(self) -> None:
        self.kiosk.submit(StartStocktake())

    @on(Button.Pressed, "#stocktake-drop")
    def _drop_stocktake(self) -> None:
        """Twice: a stock-take given up cannot be taken up again."""
        if self.cancel_armed:
            self.kiosk.submit(FinishStocktake(cancel=True))
            return
        self.cancel_armed = True
        button = self.query_one("#stocktake-drop", Button)
        button.label = _("Press again to cancel")
        button.refresh(layout=True)

    # -- devices, language, power ------------------------------------------------------------

    @on(Button.Pressed, "#devices-refresh")
    def show_devices(self) -> None:
        self.query_one("#device-details", Static).update(self.kiosk.device_report())

    @on(Button.Pressed, "#lang-zh_CN")
    async def _chinese(self) -> None:
        await self.kiosk.set_language("zh_CN")

    @on(Button.Pressed, "#lang-en")
    async def _english(self) -> None:
        await self.kiosk.set_language("en")

    @on(Button.Pressed, "#restart")
    def _restart(self) -> None:
        self.kiosk.restart()

    @on(Button.Pressed, "#shutdown")
    def _shutdown(self) -> None:
        if self.shutdown_armed:
            self.kiosk.shut_down()
            return
        self.shutdown_armed = True
        self._label_shutdown(_("Press again to shut down"))
        self.set_timer(5.0, self._disarm)

    def _disarm(self) -> None:
        self.shutdown_armed = False
        self._label_shutdown(_("Shut down"))

    def _label_shutdown(self, label: str) -> None:
        button = self.query_one("#shutdown", Button)
        button.label = label
        button.refresh(layout=True)  # the button grows with its words

    # -- the visit ---------------------------------------------------------------------------

    @on(Button.Pressed, "#own")
    def _own(self) -> None:
        self.kiosk.submit(OpenOwnLoans())

    @on(Button.Pressed, "#done")
    def action_done(self) -> None:
        self.kiosk.end_visit("done")


def _parse(moment: str | None) -> datetime | None:
    if not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
