"""What bookcorner's SIP2 server decides and records: patrons, books, checkouts, checkins and
renewals asked for by a self-check machine (the listener is ``central.sip2``).

Decisions are the circulation rules' own (``circulation.rules``: checkout, checkin, renew,
allowance), the kiosk's, over the server's reference data and open loans. The events of a
decision are the rules' ``EventDraft``s, stamped as the next events of the SIP2 account's
virtual kiosk and taken by ``central.ingest`` like any kiosk's push: replayed, stored,
kept for review when they conflict. The answer follows what replay did, so a self-check
machine is never told "done" for a loan the server did not apply.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from bookcorner.central import db, zone
from bookcorner.central import reference as server_reference
from bookcorner.central.due_check import calendar_of, policy_of
from bookcorner.central.ingest import Batch, ingest
from bookcorner.circulation.codes import ScannedCode, Source, classify
from bookcorner.circulation.events import EventDraft, payload_builtins
from bookcorner.circulation.model import Card, Item, ItemStatus, Patron
from bookcorner.circulation.outcomes import Outcome, Reason
from bookcorner.circulation.policy import DEFAULT_POLICY
from bookcorner.circulation.reference import Reference, build_reference
from bookcorner.circulation.rules import (
    Action,
    Decision,
    Done,
    Identified,
    Refusal,
    allowance,
    checkin,
    checkout,
    identify,
    renew,
)
from bookcorner.circulation.state import CirculationState, Loan
from bookcorner.i18n import N_, _
from bookcorner.protocol.messages import ClockReading, WireEvent

#: what a self-check machine shows for each refusal of the rules (short: a receipt line)
REASON_TEXT: dict[str, str] = {
    Reason.CARD_UNKNOWN: N_("This card is not known: ask the librarian"),
    Reason.CARD_NOT_ACTIVE: N_("This card cannot be used any more: ask the librarian"),
    Reason.PATRON_SUSPENDED: N_("Borrowing is paused for this card: ask the librarian"),
    Reason.PATRON_LEFT: N_("This card belongs to someone who has left the school"),
    Reason.ITEM_UNKNOWN: N_("This book is not in the catalogue: give it to the librarian"),
    Reason.UNREADABLE: N_("The code could not be read: try again"),
    Reason.REFERENCE_ONLY: N_("This book stays in the room: read it here"),
    Reason.NOT_LOANABLE: N_("This book cannot be borrowed"),
    Reason.IN_REPAIR: N_("This book is being repaired"),
    Reason.WITHDRAWN: N_("This book has been withdrawn"),
    Reason.LIMIT_REACHED: N_("You have borrowed as many books as you may"),
    Reason.TYPE_LIMIT_REACHED: N_("You have borrowed as many books of this kind as you may"),
    Reason.OVERDUE: N_("Please bring back your overdue book first"),
    Reason.TERM_ENDED: N_("The term is over: no more borrowing"),
    Reason.RENEWAL_LIMIT: N_("This book cannot be renewed again"),
    Reason.ALREADY_YOURS: N_("You have this book already"),
    Reason.NOT_ON_LOAN: N_("This book was not on loan"),
    Reason.AMBIGUOUS_COPY: N_("Several copies are on loan: give the book to the librarian"),
}
KEPT_FOR_REVIEW = N_("Recorded; the librarian will check it")
NOT_DONE = N_("Not done: ask the librarian")

#: what the pure core decides of a card holder's scan of a book (its checkout, or a renewal)
Act = Callable[[Reference, CirculationState, Identified, ScannedCode, datetime], Decision]


def screen_text(reason: str) -> str:
    return _(REASON_TEXT.get(reason, NOT_DONE))


@dataclass(frozen=True)
class Result:
    """What a checkout, checkin or renewal came to: done or not, the book, its loan."""

    ok: bool
    item: Item | None
    code: str
    patron_id: str = ""
    due: date | None = None
    renewed: bool = False
    screen: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatronView:
    card: str
    patron: Patron | None
    loans: tuple[tuple[Loan, Item], ...] = ()
    limit: int = 0
    overdue: int = 0
    blocked: bool = False
    reason: str | None = None


class Desk:
    """The SIP2 server's circulation desk over one database. One decision at a time per
    process (``central.sip2`` serves SIP2 from one process): each account's sequence numbers
    stay gap-free, and a decision reads the state the previous one left."""

    def __init__(self, store: db.Store) -> None:
        self.store = store
        self.boot_id = f"sip2-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cached: tuple[tuple, Reference] | None = None

    # --- the reference data and the state ---------------------------------------------------------

    def _school(self, kiosk_id: str) -> tuple[Reference, CirculationState, ZoneInfo]:
        """The school's reference data (rebuilt when the roster, cards, catalogue or rules change,
        not at every loan), and the open loans and item statuses as replay left them, read each time."""
        with self.store.reading() as conn:
            key = (conn.execute(select(db.meta.c.value).where(db.meta.c.key == "epoch")).scalar_one(),
                   *(conn.execute(select(func.max(table.c.rev))).scalar()
                     for table in (db.patrons, db.cards, db.catalogue, db.settings)))
            school_zone = ZoneInfo(zone.school_zone_name(conn))
            state = circulation_state(conn)
        with self._cache_lock:  # one rebuild at a time: the sessions after a change wait for it, not redo it
            if self._cached is None or self._cached[0] != key:
                self._cached = (key, _reference_of(server_reference.delta(self.store, kiosk_id, 0)))
            return self._cached[1], state, school_zone

    def now(self, kiosk_id: str) -> datetime:
        """The school's time (SIP2 dates are local)."""
        with self.store.reading() as conn:
            return datetime.now(ZoneInfo(zone.school_zone_name(conn)))

    # --- questions --------------------------------------------------------------------------------

    def patron(self, kiosk_id: str, card_code: str, now: datetime) -> PatronView:
        reference, state, _zone = self._school(kiosk_id)
        who = identify(reference, classify(card_code, reference, Source.CARD_READER))
        if isinstance(who, Decision):
            reason = who.result.reason if isinstance(who.result, Refusal) else None
            return PatronView(card_code, None, reason=reason)
        loans = tuple((loan, reference.items[loan.item_id]) for loan in state.loans_of(who.patron.patron_id))
        can = allowance(reference, state, who.patron, now.date())
        return PatronView(card_code, who.patron, loans, can.limit, can.overdue, can.blocked)

    def item(self, kiosk_id: str, code: str) -> tuple[Item | None, Loan | None, str]:
        """The book behind a code (the first copy of a shared barcode), its loan and its status."""
        reference, state, _zone = self._school(kiosk_id)
        copies = _copies(reference, classify(code, reference))
        if not copies:
            return None, None, ""
        on_loan = [c for c in copies if c.item_id in state.loans]
        item = on_loan[0] if on_loan else copies[0]
        return item, state.loan_of(item.item_id), str(state.status_of(item))

    # --- acts -------------------------------------------------------------------------------------

    def checkout(self, kiosk_id: str, card_code: str, item_code: str) -> Result:
        """Borrow (or, for a book the patron holds, renew) as the kiosk's rules decide."""
        return self._patron_act(kiosk_id, card_code, item_code, checkout)

    def renew(self, kiosk_id: str, card_code: str, item_code: str) -> Result:
        return self._patron_act(kiosk_id, card_code, item_code, _renewal)

    def _patron_act(self, kiosk_id: str, card_code: str, item_code: str, rule: Act) -> Result:
        """A card holder's act on a book (``rule``: the pure core's checkout or renewal), once
        the card is known to the school."""
        with self._lock:
            reference, state, school_zone = self._school(kiosk_id)
            now = datetime.now(school_zone)
            who = identify(reference, classify(card_code, reference, Source.CARD_READER))
            scanned = classify(item_code, reference)
            if isinstance(who, Decision):
                return self._settle(kiosk_id, who, reference, scanned, now)
            return self._settle(kiosk_id, rule(reference, state, who, scanned, now), reference, scanned, now)

    def checkin(self, kiosk_id: str, item_code: str) -> Result:
        with self._lock:
            reference, state, school_zone = self._school(kiosk_id)
            now = datetime.now(school_zone)
            scanned = classify(item_code, reference)
            return self._settle(kiosk_id, checkin(reference, state, scanned, now), reference, scanned, now)

    def _settle(self, kiosk_id: str, decision: Decision, reference: Reference, scanned: ScannedCode,
                now: datetime) -> Result:
        """Record the decision's events as the account's, and say what came of it."""
        outcomes = self._record(kiosk_id, decision.events, now)
        result = decision.result
        item = _item_of(reference, result, scanned)
        if isinstance(result, Refusal):
            return Result(False, item, scanned.text, screen=(screen_text(result.reason),))
        if any(outcome is Outcome.NEEDS_REVIEW for outcome in outcomes):
            return Result(False, item, scanned.text, result.patron_id or "", screen=(_(KEPT_FOR_REVIEW),))
        return Result(True, item, scanned.text, result.patron_id or "", result.due,
                      renewed=result.action is Action.RENEWED)

    def _record(self, kiosk_id: str, drafts: Sequence[EventDraft], now: datetime) -> list[Outcome]:
        """The drafts as the next events of ``kiosk_id``, taken by ingest; what replay did with each."""
        if not drafts:
            return []
        with self.store.reading() as conn:
            last = conn.execute(select(db.kiosks.c.max_seq).where(db.kiosks.c.kiosk_id == kiosk_id)).scalar_one()
        wall, tick = now.isoformat(timespec="milliseconds"), time.monotonic_ns()
        events = [WireEvent(event_id=str(uuid.uuid4()), kiosk_id=kiosk_id, seq=last + 1 + i, boot_id=self.boot_id,
                            monotonic_ns=tick, wall_time=wall, clock_synced=True, actor=draft.actor[:128],
                            type=str(draft.type), payload=payload_builtins(draft.payload))
                  for i, draft in enumerate(drafts)]
        batch = Batch(kiosk_id, f"sip2-{uuid.uuid4().hex}", last + 1, last + len(events),
                      ClockReading(self.boot_id, tick, wall, True), events)
        reply = ingest(self.store, batch, db.now())
        return [Outcome(result.outcome) for result in reply.results]


def _renewal(reference: Reference, state: CirculationState, who: Identified, scanned: ScannedCode,
             now: datetime) -> Decision:
    """Renew (29): the patron's own loan of the book, through the rules' renew."""
    mine = [state.loans[c.item_id] for c in _copies(reference, scanned)
            if c.item_id in state.loans and state.loans[c.item_id].patron_id == who.patron.patron_id]
    if not mine:
        return Decision(Refusal(Reason.NOT_ON_LOAN, {"code": scanned.text}))
    return renew(reference, state, who, min(mine, key=lambda loan: (loan.since, loan.item_id)), scanned, now)


def _copies(reference: Reference, scanned: ScannedCode) -> list[Item]:
    return reference.copies(scanned.item_ids)


def _item_of(reference: Reference, result: Done | Refusal, scanned: ScannedCode) -> Item | None:
    item_id = result.item_id if isinstance(result, Done) else result.details.get("item_id")
    if isinstance(item_id, str) and item_id in reference.items:
        return reference.items[item_id]
    copies = _copies(reference, scanned)
    return copies[0] if copies else None


def _convert(record: Any, kind: type) -> Any:
    return msgspec.convert(msgspec.to_builtins(record), kind, strict=False)


def _reference_of(delta: Any) -> Reference:
    """The circulation rules' reference data from a full delta (what a kiosk would pull); its loans
    and statuses are left to ``_state``, read afresh for each decision."""
    return build_reference(
        patrons=[_convert(p, Patron) for p in delta.patrons], cards=[_convert(c, Card) for c in delta.cards],
        items=[_convert(i, Item) for i in delta.items],
        policy=policy_of(delta.policy) if delta.policy is not None else DEFAULT_POLICY,
        calendar=calendar_of(delta.calendar) if delta.calendar is not None else None)


def circulation_state(conn: Connection) -> CirculationState:
    """The open loans and the item statuses replay keeps (``item_state``): the kiosk's
    ``CirculationState``, as the server has it now. A status there overrides the catalogue's."""
    s = db.item_state.c
    loans: dict[str, Loan] = {}
    by_patron: dict[str, tuple[str, ...]] = {}
    statuses: dict[str, ItemStatus] = {}
    for row in conn.execute(select(db.item_state).where(or_(s.loan_id.is_not(None), s.status.is_not(None)))):
        if row.status:
            statuses[row.item_id] = ItemStatus(row.status)
        if row.loan_id is not None and row.patron_id is not None and row.due is not None:
            since = row.since if row.since.tzinfo else row.since.replace(tzinfo=UTC)
            loans[row.item_id] = Loan(row.loan_id, row.item_id, row.patron_id, row.due, since, row.renewals,
                                      row.loan_kiosk)
            by_patron[row.patron_id] = by_patron.get(row.patron_id, ()) + (row.item_id,)
    return CirculationState(loans=loans, by_patron=by_patron, item_status=statuses)


def due_moment(due: date | None) -> datetime | None:
    """A due date as SIP2's date-and-time: the end of the school day it falls on."""
    return datetime.combine(due, clock_time(23, 59, 59)) if due is not None else None

