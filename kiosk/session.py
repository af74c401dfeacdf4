"""Who is at the kiosk, and what their taps and scans mean.

The screen forwards every card tap, scan and button press here as a command; the
controller decides what it means in the current visit (a child borrowing, a student
librarian taking a class's returns, the librarian), asks the circulation desk, and returns
outcomes for the screen to show. It runs on one thread (the screen's desk worker), so
commands are handled strictly in the order they happened, and it knows nothing of Textual:
tests and benchmarks drive it directly too (the app wraps each outcome in the Textual
message of its kind: bookcorner.kiosk.messages.desk_message).

Children's answers are worded here, in the screen's language and (bilingual screens) in
the other one, so the screen's thread only draws.

Commands and outcomes are plain dataclasses, treated as values: nobody changes one after
it is made (frozen ones would cost the kiosk's start-up twice as much to define).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from bookcorner.circulation.codes import CodeKind, Source
from bookcorner.circulation.events import (
    Event,
    EventDraft,
    StocktakeFinished,
    StocktakeScanned,
    StocktakeStarted,
)
from bookcorner.circulation.model import ItemType, PatronStatus, Role
from bookcorner.circulation.rules import Ambiguity, Decision, Identified, Reason, Refusal
from bookcorner.circulation.stocktake import StocktakeResult, reconcile
from bookcorner.circulation.suggestions import book_key, suggest
from bookcorner.devices.events import CardTap, Scan
from bookcorner.i18n import LANGUAGES, _, current_language, in_language
from bookcorner.journal.storage import StoreError, StoreWriteError
from bookcorner.kiosk.desk import CirculationDesk, PatronView, Recorded
from bookcorner.kiosk.pin import PinGuard
from bookcorner.kiosk.reading import OpenStocktake, ReadingHistory, shelf_of
from bookcorner.kiosk.stocktaking import StocktakePending, StocktakeReport, StocktakeView
from bookcorner.kiosk.wording import Message, Tone, enter_pin_first, explain, librarian_mode_closed, not_saved

if TYPE_CHECKING:
    from bookcorner.kiosk import reports

log = logging.getLogger(__name__)


class VisitKind(StrEnum):
    #: a student or a teacher borrowing for themselves
    BORROWER = "borrower"
    #: a student librarian on duty
    HELPER = "helper"
    LIBRARIAN = "librarian"


class ScanMode(StrEnum):
    CHECKOUT = "borrow"
    CHECKIN = "return"
    DAMAGED = "damaged"
    FOUND = "found"


# -- commands (from the screen) -----------------------------------------------------------


@dataclass
class EndVisit:
    #: "done" (the Done key), "timeout", "second_tap"
    reason: str = "done"


@dataclass
class EnterPin:
    pin: str


@dataclass
class SwitchMode:
    mode: ScanMode


@dataclass
class OpenOwnLoans:
    """A student librarian or the librarian borrows for themselves."""


@dataclass
class EnrolCard:
    card_id: str
    patron_id: str
    replace_other_cards: bool = False


@dataclass
class RegisterBook:
    code: str
    title: str
    item_type: ItemType = ItemType.CIRCULATING
    author: str = ""
    call_number: str = ""


@dataclass
class LoadChaseList:
    export: bool = False


@dataclass
class LoadWorkRecord:
    pass


@dataclass
class LoadUnsent:
    acked_seq: int
    limit: int = 200


@dataclass
class StartStocktake:
    """The librarian starts a stock-take of the shelf, or goes on with the unfinished one."""


@dataclass
class LeaveStocktake:
    """Back to the librarian's mode: an unfinished stock-take waits (scans are returns again)."""


@dataclass
class FinishStocktake:
    #: given up: recorded as cancelled, no result
    cancel: bool = False


@dataclass
class CheckInFound:
    """Check in every book the finished stock-take found on the shelf while on loan."""


@dataclass
class Refresh:
    """Take up a new reference snapshot from the sync daemon (between visits only)."""


@dataclass
class OpenDesk:
    """Try again to open the desk, after it could not open (the librarian fixed something)."""


Command = (Scan | CardTap | EndVisit | EnterPin | SwitchMode | OpenOwnLoans | EnrolCard | RegisterBook
           | LoadChaseList | LoadWorkRecord | LoadUnsent | Refresh | OpenDesk | StartStocktake | LeaveStocktake
           | FinishStocktake | CheckInFound)


def challenge_words(name: str, done: int, goal: int, by_category: bool) -> tuple[str, str]:
    """"7 of 10" in the current language, and a cheer when the goal is reached."""
    if by_category:
        line = _("{name}: {done} of {goal} kinds of books").format(name=name, done=done, goal=goal)
    else:
        line = _("{name}: {done} of {goal} books").format(name=name, done=done, goal=goal)
    cheer = _("★ Goal reached! Well done! ★") if done >= goal else ""
    return line, cheer


# -- outcomes (to the screen) -------------------------------------------------------------


@dataclass
class Words:
    language: str
    headline: str
    detail: str = ""


@dataclass
class Feedback:
    """One answer, worded in the screen's language first (and the other, if bilingual)."""

    tone: Tone
    words: tuple[Words, ...]
    #: what happened, for sounds and tests: an action ("borrowed") or a reason ("limit_reached")
    code: str
    #: the events that made it durable (0: nothing changed)
    recorded: int = 0
    #: the class of the child it is about, where known (a return at the idle screen): who hears it
    class_name: str | None = None
    #: after a borrow: the child's reading-challenge progress, a line per language (and a
    #: cheer when the goal is reached)
    challenge: tuple[Words, ...] = ()

    @property
    def sound(self) -> str | None:
        if self.tone is Tone.SUCCESS:
            return "success"
        if self.tone in (Tone.REFUSAL, Tone.ERROR):
            return "refusal"
        return None


@dataclass
class LoanLine:
    item_id: str
    title: str
    due: date
    overdue: bool


@dataclass
class SlotView:
    class_name: str
    #: None: free borrowing (the counters are then the helper's own class's, today)
    until: datetime | None
    loans: int
    returns: int


@dataclass
class VisitView:
    """What the screen shows of the person at the kiosk (and nothing of anyone before)."""

    visit_id: int
    kind: VisitKind
    patron_id: str
    greeting: str
    name: str
    class_name: str | None
    role: Role
    loans: tuple[LoanLine, ...]
    loan_count: int
    limit: int
    may_checkout: int
    overdue: int
    blocked: bool
    mode: ScanMode
    slot: SlotView | None = None
    #: what this student librarian did during this visit
    handled: int = 0
    #: what to read next, after a borrow or a return (titles of books on the shelf now)
    suggestions: tuple[str, ...] = ()
    #: the librarian's mode: a stock-take not finished yet
    stocktake: StocktakePending | None = None


@dataclass(frozen=True)
class ClassChallenge:
    """A class's progress in a reading challenge, for the idle screen."""

    name: str
    class_name: str
    reached: int
    children: int


@dataclass
class Ready:
    school: str
    kiosk_id: str
    last_seq: int


@dataclass
class StartFailed:
    message: str


@dataclass
class VisitOpened:
    view: VisitView
    feedback: Feedback | None = None


@dataclass
class VisitChanged:
    view: VisitView


@dataclass
class VisitClosed:
    reason: str


@dataclass
class Answer:
    feedback: Feedback
    #: the visit after the answer (None at the idle screen)
    view: VisitView | None = None


@dataclass
class PinWanted:
    name: str
    locked_until: datetime | None = None


@dataclass
class PinRefused:
    tries_left: int
    locked_until: datetime | None


@dataclass
class CardToEnrol:
    card_id: str


@dataclass
class BookToRegister:
    code: str
    isbn13: str | None


@dataclass
class ChaseListReady:
    class_name: str
    lines: tuple[reports.ChaseLine, ...]
    exported: tuple[Path, ...] = ()


@dataclass
class WorkRecordReady:
    name: str
    days: tuple[reports.WorkDay, ...]


@dataclass
class UnsentReady:
    total: int
    lines: tuple[reports.EventLine, ...]


@dataclass
class StocktakeShown:
    """The stock-take screen: its count, and the answer to the scan just made (or its result)."""

    view: StocktakeView
    feedback: Feedback | None = None


@dataclass
class TroubleReading:
    """A report could not be read (the journal is damaged or unreadable)."""

    message: str


Outcome = (Ready | StartFailed | VisitOpened | VisitChanged | VisitClosed | Answer | PinWanted | PinRefused
           | CardToEnrol | BookToRegister | ChaseListReady | WorkRecordReady | UnsentReady | TroubleReading
           | StocktakeShown)


# -- the controller -----------------------------------------------------------------------


@dataclass
class _Visit:
    visit_id: int
    who: Identified
    kind: VisitKind
    mode: ScanMode
    handled: int = 0
    suggestions: tuple[str, ...] = ()


@dataclass
class _PendingPin:
    who: Identified


@dataclass
class _PendingReturn:
    """A shared-ISBN book scanned at the idle screen: whose copy it is waits for a card."""

    code: str
    until: float


@dataclass
class _Stocktake:
    """The stock-take the librarian is scanning into, and its result so far."""

    stocktake_id: str
    shelf: tuple[str, ...] | None
    codes: list[str]
    result: StocktakeResult


@dataclass
class _Finished:
    stocktake_id: str
    shelf: tuple[str, ...] | None
    result: StocktakeResult
    report: StocktakeReport


#: who may take stock of the shelf: the librarian, and a student librarian on duty
_STOCKTAKERS = frozenset({VisitKind.LIBRARIAN, VisitKind.HELPER})
#: how long a "tap your card first" return waits for the card
PENDING_RETURN_S = 30.0
#: how long opening the librarian's mode may spend finishing the read of the journal, to
#: find a stock-take left unfinished
STOCKTAKE_BUDGET_S = 5.0
#: how long a child's scan may spend finishing the read of the borrowing history (the rest
#: is read between scans)
HISTORY_BUDGET_S = 0.05


@dataclass
class SessionController:
    open_desk: Callable[[], CirculationDesk]
    pins: PinGuard
    exports: Path
    bilingual: bool = True
    monotonic: Callable[[], float] = time.monotonic
    desk: CirculationDesk | None = None
    _visit: _Visit | None = None
    _pin: _PendingPin | None = None
    _pending_return: _PendingReturn | None = None
    _visits: int = 0
    #: today's events, for the rotation slot's counters (loaded when first needed)
    _today: list[Event] | None = None
    _today_date: date | None = None
    _started: bool = field(default=False)
    #: the books each child borrowed here (read from the journal between scans: ``idle``)
    _history: ReadingHistory | None = None
    #: the stock-take being scanned into (the librarian's mode only)
    _stocktake: _Stocktake | None = None
    #: the stock-take just finished, for its result and the check-in it offers
    _finished: _Finished | None = None
    _class_cache: tuple[tuple[str, int, date, int], tuple[ClassChallenge, ...]] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> list[Outcome]:
        try:
            self.desk = self.open_desk()
        except StoreError as error:
            log.error("the desk could not open: %s", error)
            return [StartFailed(str(error))]
        self._history = ReadingHistory(self.desk.paths.journal)
        return [Ready(self.desk.school, self.desk.kiosk_id, self.desk.journal.last_seq)]

    def idle(self) -> bool:
        """A little of the work that waits for a quiet moment (reading the children's
        borrowing history from the journal); whether more is left."""
        history = self._history
        if history is None or history.complete:
            return False
        history.step()
        return not history.complete

    def close(self) -> None:
        if self.desk is not None:
            self.desk.close()
            self.desk = None

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, command: Command) -> list[Outcome]:
        if self.desk is None:
            return self.start() if isinstance(command, OpenDesk) else []
        try:
            return self._dispatch(command)
        except StoreWriteError as error:
            log.error("a write failed: %s", error)
            full = error.disk_full
            view = self._view() if self._visit else None
            return [Answer(self._words(lambda: not_saved(full), "not_saved"), view)]

    def _dispatch(self, command: Command) -> list[Outcome]:
        if isinstance(command, CardTap):
            return self._tap(command.card_id, Source.CARD_READER)
        if isinstance(command, Scan):
            return self._scan(command.text)
        if isinstance(command, EndVisit):
            return self._end(command.reason)
        if isinstance(command, EnterPin):
            return self._check_pin(command.pin)
        if isinstance(command, SwitchMode):
            return self._switch(command.mode)
        if isinstance(command, OpenOwnLoans):
            return self._own_loans()
        if isinstance(command, EnrolCard):
            return self._enrol(command)
        if isinstance(command, RegisterBook):
            return self._register(command)
        if isinstance(command, LoadChaseList):
            return self._chase_list(command.export)
        if isinstance(command, LoadWorkRecord):
            return self._work_record()
        if isinstance(command, LoadUnsent):
            return self._unsent(command)
        if isinstance(command, StartStocktake):
            return self._start_stocktake()
        if isinstance(command, LeaveStocktake):
            return self._leave_stocktake()
        if isinstance(command, FinishStocktake):
            return self._finish_stocktake(command.cancel)
        if isinstance(command, CheckInFound):
            return self._check_in_found()
        if isinstance(command, Refresh):
            if self._visit is None and self._pin is None:
                self._desk.follow_sync()
                if self._desk.refresh_reference():
                    log.info("took up reference snapshot %s", self._desk.reference_version)
            return []
        raise TypeError(f"unknown command {command!r}")

    # -- taps ------------------------------------------------------------------------------

    def _tap(self, raw: str, source: Source) -> list[Outcome]:
        desk = self._desk
        visit = self._visit
        if visit is not None and visit.kind is VisitKind.LIBRARIAN:
            scanned = desk.classify(raw, source)
            if scanned.kind is CodeKind.UNKNOWN_CARD:
                return [CardToEnrol(scanned.card_id or scanned.text)]
        outcome = desk.identify(raw, source)
        if isinstance(outcome, Recorded):
            return self._card_refused(raw, source, outcome)
        who = outcome
        closed: list[Outcome] = []
        if self._pin is not None:
            same = self._pin.who.patron.patron_id == who.patron.patron_id
            self._pin = None
            if same:
                return [VisitClosed("second_tap")]
            closed.append(VisitClosed("next"))
        if visit is not None:
            if visit.who.patron.patron_id == who.patron.patron_id:
                return self._end("second_tap")
            closed.append(VisitClosed("next"))
            self._visit = None
        pending, self._pending_return = self._pending_return, None
        if who.patron.role is Role.LIBRARIAN:
            if not self.pins.stored_hash:
                return closed + [Answer(self._words(librarian_mode_closed, "no_pin"))]
            self._pin = _PendingPin(who)
            return closed + [PinWanted(who.patron.name, self.pins.locked_until(desk.now()))]
        kind = VisitKind.HELPER if who.patron.role is Role.STUDENT_LIBRARIAN else VisitKind.BORROWER
        mode = ScanMode.CHECKIN if kind is VisitKind.HELPER else ScanMode.CHECKOUT
        self._open(who, kind, mode)
        feedback = None
        if pending is not None and self.monotonic() <= pending.until:
            feedback = self._explain(desk.checkin(pending.code, who))
        return closed + [VisitOpened(self._view(), feedback)]

    def _card_refused(self, raw: str, source: Source, recorded: Recorded) -> list[Outcome]:
        """A card the kiosk will not take (lost, unknown, its holder gone). Another person's
        card during a visit is the next person at the kiosk, as any card is: the visit closes
        and the refusal is said at the idle screen, to that card's holder, never on the
        previous child's screen. The visiting person's own card, a bad read and any card in
        the librarian's mode are answered where they are."""
        feedback = self._explain(recorded)
        visit = self._visit
        present = visit.who if visit is not None else self._pin.who if self._pin is not None else None
        if (present is None or (visit is not None and visit.kind is VisitKind.LIBRARIAN)
                or not self._someone_else(raw, source, recorded, present)):
            return [Answer(feedback, self._view() if visit is not None else None)]
        return [*self._end("next"), Answer(feedback)]

    def _someone_else(self, raw: str, source: Source, recorded: Recorded, present: Identified) -> bool:
        result = recorded.decision.result
        if isinstance(result, Refusal) and result.reason is Reason.UNREADABLE:
            return False  # nobody was read: not a new person
        card = self._desk.reference.cards.get(self._desk.classify(raw, source).card_id or "")
        return card is None or card.patron_id != present.patron.patron_id

    def _open(self, who: Identified, kind: VisitKind, mode: ScanMode) -> None:
        self._visits += 1
        self._stocktake = None
        self._finished = None
        self._visit = _Visit(self._visits, who, kind, mode)

    def _end(self, reason: str) -> list[Outcome]:
        self._visit = None
        self._pin = None
        self._stocktake = None  # unfinished, it waits in the journal for the next librarian's visit
        self._finished = None
        if self.desk is not None and self.desk.refresh_reference():
            log.info("took up reference snapshot %s", self.desk.reference_version)
        return [VisitClosed(reason)]

    # -- scans -----------------------------------------------------------------------------

    def _scan(self, raw: str) -> list[Outcome]:
        desk = self._desk
        scanned = desk.classify(raw, Source.SCANNER)
        if scanned.kind is CodeKind.CARD:  # a card with a barcode, shown to the scanner
            return self._tap(raw, Source.SCANNER)
        if self._pin is not None:
            return [Answer(self._words(enter_pin_first, "pin_first"))]
        visit = self._visit
        if visit is None:
            return self._quick_return(raw)
        if self._stocktake is not None and visit.kind in _STOCKTAKERS:
            return self._stocktake_scan(visit, raw)
        if visit.kind is VisitKind.LIBRARIAN and (
                scanned.kind is CodeKind.UNKNOWN_ITEM
                or (scanned.kind is CodeKind.ITEM and scanned.isbn13 and scanned.text not in desk.reference.by_barcode
                    and visit.mode is not ScanMode.CHECKIN)):
            return [BookToRegister(scanned.text, scanned.isbn13)]
        who = visit.who
        mode = visit.mode
        if mode is ScanMode.CHECKOUT and self._holds_overdue(who, scanned.item_ids):
            mode = ScanMode.CHECKIN  # an overdue book cannot be renewed: bring it back
        if mode is ScanMode.CHECKOUT:
            recorded = desk.checkout(who, raw)
        elif mode is ScanMode.CHECKIN:
            if visit.kind is VisitKind.BORROWER:
                recorded = desk.checkin(raw, who)
            else:  # bulk returns: a shared barcode closes the oldest loan, flagged for review
                recorded = desk.checkin(raw, None, Ambiguity.OLDEST, handled_by=who)
        elif mode is ScanMode.DAMAGED:
            recorded = desk.report_damaged(who, raw)
        else:
            recorded = desk.report_found(who, raw)
        self._note(recorded)
        if recorded.ok:
            visit.handled += 1
            if visit.kind is VisitKind.BORROWER and mode in (ScanMode.CHECKOUT, ScanMode.CHECKIN):
                visit.suggestions = self._suggest(who, recorded, scanned.item_ids)
        feedback = self._explain(recorded)
        if recorded.ok and visit.kind is VisitKind.BORROWER and mode is ScanMode.CHECKOUT:
            feedback.challenge = self._challenges(who)
        return [Answer(feedback, self._view())]

    def _challenges(self, who: Identified) -> tuple[Words, ...]:
        """The child's progress in the challenges their class takes part in now, counted from
        this kiosk's journal (the history ``_suggest`` has just brought up to date)."""
        desk, history = self._desk, self._history
        patron = who.patron
        if history is None or not history.complete or patron.role not in (Role.STUDENT, Role.STUDENT_LIBRARIAN):
            return ()
        now = desk.now()
        lines: list[Words] = []
        running = [c for c in desk.reference.reading.challenges if c.running(now) and c.is_for(patron.class_name)]
        for challenge in sorted(running, key=lambda c: (c.end, c.name))[:2]:
            got = history.challenge_progress(patron.patron_id, challenge, desk.reference)
            if got is None:
                continue
            for language in self._languages():
                with in_language(language):
                    lines.append(Words(language, *challenge_words(challenge.name, got.done, got.goal,
                                                                  challenge.by_category)))
        return tuple(lines)

    def _suggest(self, who: Identified, recorded: Recorded, item_ids: tuple[str, ...]) -> tuple[str, ...]:
        """Up to three books on the shelf now for the child to read next (never one they read)."""
        desk, history = self._desk, self._history
        if history is None:
            return ()
        history.note(recorded.events)
        if not history.finish(HISTORY_BUDGET_S):
            return ()  # a long journal not yet read: nothing, rather than a book the child read
        read = history.books_read(who.patron.patron_id, desk.reference) or set()
        items = desk.reference.items
        just = [book_key(items[i]) for i in item_ids if i in items]
        books = suggest(desk.reference, desk.state, who.patron, desk.now(), just, read,
                        shelf_of(desk.reference))
        return tuple(item.title for item in books)

    def class_challenges(self, class_name: str) -> tuple[ClassChallenge, ...]:
        """The class's progress in its running challenges (how many of its children reached
        the goal), counted from this kiosk's journal, for the idle screen; nothing while the
        journal is not all read. Kept until the journal or the day changes."""
        desk, history = self.desk, self._history
        if desk is None or history is None or not history.complete:
            return ()
        now = desk.now()
        key = (class_name, desk.journal.last_seq, now.date(), id(desk.reference))
        if self._class_cache is not None and self._class_cache[0] == key:
            return self._class_cache[1]
        children = [p for p in desk.reference.patrons.values() if p.class_name == class_name
                    and p.role in (Role.STUDENT, Role.STUDENT_LIBRARIAN) and p.status is not PatronStatus.LEFT]
        out = []
        running = [c for c in desk.reference.reading.challenges if c.running(now) and c.is_for(class_name)]
        for challenge in sorted(running, key=lambda c: (c.end, c.name))[:2]:
            reached = 0
            for child in children:
                got = history.challenge_progress(child.patron_id, challenge, desk.reference)
                reached += bool(got and got.reached)
            out.append(ClassChallenge(challenge.name, class_name, reached, len(children)))
        self._class_cache = (key, tuple(out))
        return self._class_cache[1]

    def _quick_return(self, raw: str) -> list[Outcome]:
        recorded = self._desk.checkin(raw)
        self._note(recorded)
        result = recorded.decision.result
        if isinstance(result, Refusal) and result.reason is Reason.AMBIGUOUS_COPY:
            self._pending_return = _PendingReturn(raw, self.monotonic() + PENDING_RETURN_S)
        return [Answer(self._explain(recorded))]

    def _holds_overdue(self, who: Identified, item_ids: tuple[str, ...]) -> bool:
        desk = self._desk
        today = desk.now().date()
        for item_id in item_ids:
            loan = desk.state.loan_of(item_id)
            if loan is not None and loan.patron_id == who.patron.patron_id and loan.is_overdue(today):
                return True
        return False

    # -- the librarian ---------------------------------------------------------------------

    def _check_pin(self, pin: str) -> list[Outcome]:
        pending = self._pin
        if pending is None:
            return []
        answer = self.pins.check(pin, self._desk.now())
        if answer.ok:
            self._pin = None
            self._open(pending.who, VisitKind.LIBRARIAN, ScanMode.CHECKIN)
            return [VisitOpened(self._view())]
        if answer.no_pin:
            self._pin = None
            return [VisitClosed("no_pin"), Answer(self._words(librarian_mode_closed, "no_pin"))]
        return [PinRefused(answer.tries_left, answer.locked_until)]

    def _enrol(self, command: EnrolCard) -> list[Outcome]:
        visit = self._visit
        if visit is None or visit.kind is not VisitKind.LIBRARIAN:
            return []
        recorded = self._desk.enrol_card(visit.who, command.card_id, command.patron_id,
                                         replace_other_cards=command.replace_other_cards)
        return [Answer(self._explain(recorded), self._view())]

    def _register(self, command: RegisterBook) -> list[Outcome]:
        visit = self._visit
        if visit is None or visit.kind is not VisitKind.LIBRARIAN:
            return []
        recorded = self._desk.register_item(visit.who, command.code, command.title, command.item_type,
                                            author=command.author or None, call_number=command.call_number or None)
        return [Answer(self._explain(recorded), self._view())]

    # -- the stock-take --------------------------------------------------------------------

    def _unfinished_stocktake(self, budget_s: float = STOCKTAKE_BUDGET_S) -> OpenStocktake | None:
        history = self._history
        if history is None:
            return None
        history.finish(budget_s)
        return history.unfinished_stocktake()

    def _record_stocktake(self, who: Identified,
                          payload: StocktakeStarted | StocktakeScanned | StocktakeFinished) -> None:
        """Durable before the screen says anything; noted for the next restart's reading."""
        events = self._desk.record((EventDraft(payload.TYPE, who.patron.patron_id, payload),))
        if self._history is not None:
            self._history.note(events)

    def _start_stocktake(self) -> list[Outcome]:
        visit = self._visit
        if visit is None or visit.kind not in _STOCKTAKERS:
            return []
        desk = self._desk
        self._finished = None
        if self._stocktake is None:
            open_ = self._unfinished_stocktake()
            if open_ is not None:
                codes = open_.codes
                self._stocktake = _Stocktake(open_.stocktake_id, open_.shelf, codes,
                                             reconcile(desk.reference, desk.state, codes, open_.shelf))
            else:
                shelf = shelf_of(desk.reference)
                stocktake_id = f"{desk.kiosk_id}-{uuid.uuid4().hex[:12]}"
                ordered = tuple(sorted(shelf)) if shelf is not None else None
                self._record_stocktake(visit.who, StocktakeStarted(
                    stocktake_id=stocktake_id, shelf=ordered, patron_id=visit.who.patron.patron_id))
                self._stocktake = _Stocktake(stocktake_id, ordered, [],
                                             reconcile(desk.reference, desk.state, (), ordered))
        return [StocktakeShown(self._stocktake_view(self._stocktake))]

    def _stocktake_scan(self, visit: _Visit, raw: str) -> list[Outcome]:
        from bookcorner.kiosk.stocktaking import last_scan, scan_message

        stocktake = self._stocktake
        assert stocktake is not None
        desk = self._desk
        self._record_stocktake(visit.who, StocktakeScanned(stocktake_id=stocktake.stocktake_id, code=raw))
        stocktake.codes.append(raw)
        before = stocktake.result
        stocktake.result = reconcile(desk.reference, desk.state, stocktake.codes, stocktake.shelf)
        kind, item_id = last_scan(before, stocktake.result)
        reference = desk.reference
        text = desk.classify(raw).text or raw
        feedback = self._words(lambda: scan_message(kind, item_id, text, reference), f"stocktake_{kind}", 1)
        item = reference.items.get(item_id or "")
        title = item.title if item is not None else text
        return [StocktakeShown(self._stocktake_view(stocktake, title), feedback)]

    def _leave_stocktake(self) -> list[Outcome]:
        if self._visit is None or self._visit.kind not in _STOCKTAKERS:
            return []
        self._stocktake = None
        self._finished = None
        return [VisitOpened(self._view())]

    def _finish_stocktake(self, cancel: bool) -> list[Outcome]:
        from bookcorner.kiosk.stocktaking import report

        visit = self._visit
        if visit is None or visit.kind not in _STOCKTAKERS:
            return []
        desk = self._desk
        stocktake = self._stocktake
        if stocktake is None:
            open_ = self._unfinished_stocktake()
            if open_ is None:
                return [VisitOpened(self._view())]
            codes = open_.codes
            stocktake = _Stocktake(open_.stocktake_id, open_.shelf, codes,
                                   reconcile(desk.reference, desk.state, codes, open_.shelf))
        self._record_stocktake(visit.who, StocktakeFinished(
            stocktake_id=stocktake.stocktake_id, scans=len(stocktake.codes), cancelled=cancel))
        self._stocktake = None
        if cancel:
            return [VisitOpened(self._view())]
        result = reconcile(desk.reference, desk.state, stocktake.codes, stocktake.shelf)
        self._finished = _Finished(stocktake.stocktake_id, stocktake.shelf, result,
                                   report(result, desk.reference, desk.state))
        view = self._stocktake_view(_Stocktake(stocktake.stocktake_id, stocktake.shelf, stocktake.codes, result))
        view.report = self._finished.report
        return [StocktakeShown(view)]

    def _check_in_found(self) -> list[Outcome]:
        from bookcorner.kiosk.stocktaking import checked_in, flagged

        visit, finished = self._visit, self._finished
        if visit is None or visit.kind not in _STOCKTAKERS or finished is None:
            return []
        desk = self._desk
        done = 0
        for item_id in finished.result.on_loan_on_shelf:
            if desk.state.loan_of(item_id) is None:
                continue  # checked in already (pressed twice)
            recorded = desk.checkin_item(item_id, visit.who)
            self._note(recorded)
            done += recorded.ok
        finished.report.checked_in += done
        view = StocktakeView(finished.stocktake_id, finished.shelf, finished.result.scans,
                             len(finished.result.present), finished.result.expected, flagged(finished.result),
                             report=finished.report)
        total = finished.report.checked_in
        return [StocktakeShown(view, self._words(lambda: checked_in(total), "stocktake_checked_in", done))]

    def _stocktake_view(self, stocktake: _Stocktake, last_title: str = "") -> StocktakeView:
        from bookcorner.kiosk.stocktaking import flagged

        result = stocktake.result
        return StocktakeView(stocktake.stocktake_id, stocktake.shelf, len(stocktake.codes), len(result.present),
                             result.expected, flagged(result), last_title)

    def _pending_stocktake(self, kind: VisitKind) -> StocktakePending | None:
        """The librarian may wait a moment for the journal's read; a student librarian's
        every scan may not (the offer to go on then shows once the journal is read)."""
        open_ = self._unfinished_stocktake(STOCKTAKE_BUDGET_S if kind is VisitKind.LIBRARIAN else HISTORY_BUDGET_S)
        return StocktakePending(len(open_.scanned), open_.started) if open_ is not None else None

    # -- modes and reports -----------------------------------------------------------------

    def _switch(self, mode: ScanMode) -> list[Outcome]:
        visit = self._visit
        if visit is None:
            return []
        allowed = {VisitKind.BORROWER: {ScanMode.CHECKOUT, ScanMode.CHECKIN},
                   VisitKind.HELPER: set(ScanMode), VisitKind.LIBRARIAN: set(ScanMode)}[visit.kind]
        if mode in allowed:
            visit.mode = mode
        return [VisitChanged(self._view())]

    def _own_loans(self) -> list[Outcome]:
        visit = self._visit
        if visit is None or visit.kind is VisitKind.BORROWER:
            return []
        self._open(visit.who, VisitKind.BORROWER, ScanMode.CHECKOUT)
        return [VisitOpened(self._view())]

    def _class_on_duty(self) -> tuple[str | None, reports.SlotWindow | None]:
        """The class whose slot it is now, else the visitor's own class."""
        from bookcorner.kiosk import reports

        desk = self._desk
        now = desk.now()
        slot = desk.reference.timetable.slot_at(now)
        if slot is not None:
            return slot.class_name, reports.slot_window(slot, now)
        visit = self._visit
        return (visit.who.patron.class_name if visit else None), None

    def _chase_list(self, export: bool) -> list[Outcome]:
        from bookcorner.kiosk import reports

        desk = self._desk
        class_name, _window = self._class_on_duty()
        if class_name is None or self._visit is None:
            return []
        today = desk.now().date()
        lines = tuple(reports.chase_list(desk.reference, desk.state, class_name, today))
        exported: tuple[Path, ...] = ()
        if export:
            try:
                exported = tuple(reports.export_chase_list(self.exports, lines, class_name, today))
            except OSError as error:
                log.error("could not export the chase list: %s", error)
                return [TroubleReading(str(error))]
        return [ChaseListReady(class_name, lines, exported)]

    def _work_record(self) -> list[Outcome]:
        from bookcorner.kiosk import reports

        desk = self._desk
        visit = self._visit
        if visit is None:
            return []
        try:
            events = reports.events_since(desk.paths.journal, reports.work_record_since(desk.now()))
        except StoreError as error:
            return [TroubleReading(str(error))]
        days = reports.work_record(events, visit.who.patron.patron_id)
        return [WorkRecordReady(visit.who.patron.name, tuple(days))]

    def _unsent(self, command: LoadUnsent) -> list[Outcome]:
        from bookcorner.kiosk import reports

        desk = self._desk
        total = max(0, desk.journal.last_seq - command.acked_seq)
        start = max(command.acked_seq, desk.journal.last_seq - command.limit)
        try:
            events = list(desk.journal.events_after(start))
        except StoreError as error:
            return [TroubleReading(str(error))]
        return [UnsentReady(total, tuple(reports.event_lines(events, desk.reference)))]

    # -- the rotation slot's counters ------------------------------------------------------

    def _note(self, recorded: Recorded) -> None:
        if self._today is not None:
            self._today.extend(recorded.events)

    def _slot(self) -> SlotView | None:
        from bookcorner.kiosk import reports

        desk = self._desk
        now = desk.now()
        if self._today is None or self._today_date != now.date():
            midnight = datetime.combine(now.date(), datetime.min.time(), now.tzinfo)
            try:
                self._today = reports.events_since(desk.paths.journal, midnight)
            except StoreError as error:
                log.error("could not read today's events: %s", error)
                self._today = []
            self._today_date = now.date()
        class_name, window = self._class_on_duty()
        if class_name is None:
            return None
        members = reports.class_members(desk.reference, class_name)  # the class's loans, not everyone's
        if window is None:
            start = datetime.combine(now.date(), datetime.min.time(), now.tzinfo)
            counts = reports.slot_counts(self._today, start, start + timedelta(days=1), members)
            return SlotView(class_name, None, counts.loans, counts.returns)
        counts = reports.slot_counts(self._today, window.start, window.end, members)
        return SlotView(class_name, window.end, counts.loans, counts.returns)

    # -- views and words -------------------------------------------------------------------

    @property
    def _desk(self) -> CirculationDesk:
        assert self.desk is not None
        return self.desk

    def _view(self) -> VisitView:
        visit = self._visit
        assert visit is not None
        desk = self._desk
        patron = visit.who.patron
        seen: PatronView = desk.patron_view(patron)
        today = desk.now().date()
        loans = tuple(
            LoanLine(loan.item_id, desk.reference.items[loan.item_id].title if loan.item_id in desk.reference.items
                     else loan.item_id, loan.due, loan.is_overdue(today))
            for loan in seen.loans
        )
        allowance = seen.allowance
        return VisitView(
            visit_id=visit.visit_id, kind=visit.kind, patron_id=patron.patron_id, greeting=patron.greeting_name,
            name=patron.name, class_name=patron.class_name, role=patron.role, loans=loans, loan_count=allowance.loan_count,
            limit=allowance.limit, may_checkout=allowance.may_checkout, overdue=allowance.overdue,
            blocked=allowance.blocked, mode=visit.mode,
            slot=self._slot() if visit.kind is VisitKind.HELPER else None, handled=visit.handled,
            suggestions=visit.suggestions,
            stocktake=self._pending_stocktake(visit.kind) if visit.kind in _STOCKTAKERS else None,
        )

    def _languages(self) -> tuple[str, ...]:
        main = current_language()
        if not self.bilingual:
            return (main,)
        return (main, *(language for language in LANGUAGES if language != main))

    def _words(self, make: Callable[[], Message], code: str, recorded: int = 0,
               class_name: str | None = None) -> Feedback:
        words = []
        tone = Tone.WARNING
        for language in self._languages():
            with in_language(language):
                message = make()
            tone = message.tone
            words.append(Words(language, message.headline, message.detail))
        return Feedback(tone, tuple(words), code, recorded, class_name)

    def _explain(self, recorded: Recorded) -> Feedback:
        decision: Decision = recorded.decision
        result = decision.result
        code = str(result.reason) if isinstance(result, Refusal) else str(result.action)
        reference = self._desk.reference
        patron = None if isinstance(result, Refusal) else reference.patrons.get(result.patron_id or "")
        return self._words(lambda: explain(decision, reference), code, len(recorded.events),
                           patron.class_name if patron is not None else None)
