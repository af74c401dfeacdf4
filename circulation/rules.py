"""Circulation decisions: checkout, checkin, renew, report damaged, lost or found.

Each function takes the reference data, the current state, the people and codes involved
and ``now`` (an aware datetime in the school's time zone), and returns a ``Decision``:
either what was done, or a refusal with a reason code and the facts a child needs to
understand it (which book is overdue, how many they have on loan). Either way it carries the
events to record: refused attempts and unknown codes are kept for the librarian too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import msgspec

from bookcorner.circulation.calendar import SchoolCalendar, due_date
from bookcorner.circulation.codes import CodeKind, ScannedCode, isbn10_of
from bookcorner.circulation.events import (
    CardEnrolled,
    Checkin,
    Checkout,
    EventDraft,
    EventType,
    ItemDamaged,
    ItemFound,
    ItemLost,
    ItemRegistered,
    ItemRepaired,
    LoanNote,
    NewItem,
    Refused,
    Renewal,
    UnknownCard,
    UnknownItem,
    Unreadable,
)
from bookcorner.circulation.model import CardStatus, Item, ItemStatus, ItemType, Patron, PatronStatus, Role
from bookcorner.circulation.outcomes import Reason, Warning_
from bookcorner.circulation.policy import Policy
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.state import CirculationState, Loan

#: who is recorded as the actor when nobody identified themselves
ANONYMOUS = "kiosk"


class Action(StrEnum):
    CHECKED_OUT = "borrowed"
    CHECKED_IN = "returned"
    RENEWED = "renewed"
    MARKED_DAMAGED = "marked_damaged"
    MARKED_LOST = "marked_lost"
    MARKED_FOUND = "marked_found"
    MARKED_REPAIRED = "marked_repaired"
    CARD_ENROLLED = "card_enrolled"
    ITEM_REGISTERED = "item_registered"


@dataclass(frozen=True, slots=True)
class Done:
    action: Action
    item_id: str
    #: the patron the loan belongs (or belonged) to
    patron_id: str | None = None
    due: date | None = None
    warnings: tuple[Warning_, ...] = ()
    #: open days late, for a return
    days_late: int = 0
    #: the card enrolled, for an enrolment
    card_id: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


@dataclass(frozen=True, slots=True)
class Decision:
    result: Done | Refusal
    events: tuple[EventDraft, ...] = ()

    @property
    def ok(self) -> bool:
        return isinstance(self.result, Done)


# --- identification ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identified:
    patron: Patron
    card_id: str


def identify(reference: Reference, scanned: ScannedCode) -> Identified | Decision:
    """Who tapped: their patron record, or a refusal (unknown or inactive card)."""
    if scanned.kind is not CodeKind.CARD:
        return unknown_code(scanned, ANONYMOUS)
    card = reference.cards[scanned.card_id or scanned.text]
    patron = reference.patrons.get(card.patron_id)
    if patron is None:
        return _refuse(Reason.CARD_UNKNOWN, ANONYMOUS, scanned, card_id=card.card_id)
    if card.status is not CardStatus.ACTIVE:
        return _refuse(Reason.CARD_NOT_ACTIVE, patron.patron_id, scanned, card_status=str(card.status))
    if patron.status is PatronStatus.LEFT:
        return _refuse(Reason.PATRON_LEFT, patron.patron_id, scanned)
    return Identified(patron, card.card_id)


def unknown_code(scanned: ScannedCode, actor: str) -> Decision:
    """A card nobody enrolled, a book not in the catalogue, or a garbled scan: recorded
    so the librarian can enrol or register it."""
    if scanned.kind is CodeKind.UNKNOWN_CARD:
        return Decision(
            Refusal(Reason.CARD_UNKNOWN, {"code": scanned.text}),
            (EventDraft(EventType.UNKNOWN_CARD, actor, UnknownCard(code=scanned.text)),),
        )
    if scanned.kind is CodeKind.UNKNOWN_ITEM:
        facts = {"code": scanned.text, "isbn13": scanned.isbn13}
        event = EventDraft(EventType.UNKNOWN_ITEM, actor, UnknownItem(code=scanned.text, isbn13=scanned.isbn13))
        return Decision(Refusal(Reason.ITEM_UNKNOWN, facts), (event,))
    return Decision(
        Refusal(Reason.UNREADABLE, {"code": scanned.text}),
        (EventDraft(EventType.UNREADABLE, actor, Unreadable(code=scanned.raw[:200])),),
    )


# --- borrowing and renewing ----------------------------------------------------------------


def loan_due(policy: Policy, calendar: SchoolCalendar, role: Role, item_type: ItemType, today: date) -> date | None:
    """When a loan of an ``item_type`` book to a ``role`` made on ``today`` (the school's
    day) is due, or None when no open day is left in the term. The server asks the same
    question of a checkout it re-timed (``due_on_corrected_day``)."""
    return due_date(calendar, today, policy.rule(role, item_type).loan_days, policy.role(role).holiday_loans)


#: how far the server may re-time a checkout before the kiosk's clock counts as wrong for its due date:
#: closer than this is drift, not a wrong clock (and a corner lends nothing around midnight)
WRONG_CLOCK = timedelta(minutes=1)


def due_on_corrected_day(
    policy: Policy, calendar: SchoolCalendar, role: Role, item_type: ItemType, given: date,
    kiosk_time: datetime, corrected: datetime, zone: tzinfo,
) -> date | None:
    """The due date the rules give a checkout on the school day (in ``zone``) the server
    re-timed it to, when the kiosk's clock put it on another day and the date it gave the
    child (``given``) differs; else None (central.due_check offers it for review)."""
    day = corrected.astimezone(zone).date()
    if kiosk_time.astimezone(zone).date() == day:
        return None  # the same school day: the rules give the same date
    due = loan_due(policy, calendar, role, item_type, day)
    return None if due is None or due == given else due


def checkout(
    reference: Reference, state: CirculationState, who: Identified, scanned: ScannedCode, now: datetime
) -> Decision:
    """A book scanned during a patron's session: check it out, or renew it if it is already on loan to them."""
    patron = who.patron
    if scanned.kind is not CodeKind.ITEM:
        return unknown_code(scanned, patron.patron_id)
    copies = reference.copies(scanned.item_ids)
    mine = [state.loans[c.item_id] for c in copies if _holder(state, c) == patron.patron_id]
    if mine:
        return renew(reference, state, who, min(mine, key=_age), scanned, now)
    if patron.status is PatronStatus.SUSPENDED:
        return _refuse(Reason.PATRON_SUSPENDED, patron.patron_id, scanned)
    item = _copy_to_check_out(state, copies, scanned)
    refusal = _item_refusal(reference, state, patron, item, scanned)
    if refusal is not None:
        return refusal
    today = now.date()
    role = reference.policy.role(patron.role)
    rule = reference.policy.rule(patron.role, item.item_type)
    loans = state.loans_of(patron.patron_id)
    overdue = [loan for loan in loans if loan.is_overdue(today)]
    if overdue and role.block_when_overdue:
        return _refuse(Reason.OVERDUE, patron.patron_id, scanned, item, overdue=_describe(reference, overdue))
    if len(loans) >= role.max_loans:
        return _refuse(
            Reason.LIMIT_REACHED, patron.patron_id, scanned, item,
            loan_count=len(loans), limit=role.max_loans, loans=_describe(reference, loans),
        )
    if rule.max_loans is not None:
        same_type = [loan for loan in loans if reference.items[loan.item_id].item_type is item.item_type]
        if len(same_type) >= rule.max_loans:
            return _refuse(
                Reason.TYPE_LIMIT_REACHED, patron.patron_id, scanned, item,
                loan_count=len(same_type), limit=rule.max_loans, item_type=str(item.item_type),
            )
    due = loan_due(reference.policy, reference.calendar, patron.role, item.item_type, today)
    if due is None:
        return _refuse(Reason.TERM_ENDED, patron.patron_id, scanned, item)

    events: list[EventDraft] = []
    warnings: list[Warning_] = []
    previous = state.loan_of(item.item_id)
    if previous is not None:
        warnings.append(Warning_.RETURNED_FROM_OTHER)
        events.append(_checkin_event(reference, previous, patron.patron_id, today, implicit=True, with_card=False))
    if state.status_of(item) is ItemStatus.LOST:
        warnings.append(Warning_.WAS_LOST)
        events.append(EventDraft(EventType.ITEM_FOUND, patron.patron_id, ItemFound(item_id=item.item_id)))
    events.append(
        EventDraft(
            EventType.CHECKED_OUT,
            patron.patron_id,
            Checkout(item_id=item.item_id, patron_id=patron.patron_id, card_id=who.card_id, code=scanned.text,
                     due=due, warnings=tuple(str(w) for w in warnings)),
        )
    )
    return Decision(Done(Action.CHECKED_OUT, item.item_id, patron.patron_id, due, tuple(warnings)), tuple(events))


def renew(
    reference: Reference,
    state: CirculationState,
    who: Identified,
    loan: Loan,
    scanned: ScannedCode,
    now: datetime,
) -> Decision:
    """Re-scanning a book you hold: a new due date counted from today, if the rules allow."""
    patron = who.patron
    item = reference.items[loan.item_id]
    today = now.date()
    role = reference.policy.role(patron.role)
    rule = reference.policy.rule(patron.role, item.item_type)
    new_due = loan_due(reference.policy, reference.calendar, patron.role, item.item_type, today)
    if new_due is not None and new_due <= loan.due:
        return Decision(Refusal(Reason.ALREADY_YOURS, {"item_id": item.item_id, "due": loan.due.isoformat()}))
    overdue = state.overdue_loans_of(patron.patron_id, today)
    if overdue and role.block_when_overdue:
        return _refuse(Reason.OVERDUE, patron.patron_id, scanned, item, overdue=_describe(reference, overdue))
    if patron.status is PatronStatus.SUSPENDED:
        return _refuse(Reason.PATRON_SUSPENDED, patron.patron_id, scanned, item)
    if loan.renewals >= rule.renewals:
        return _refuse(
            Reason.RENEWAL_LIMIT, patron.patron_id, scanned, item,
            renewals=rule.renewals, due=loan.due.isoformat(),
        )
    if new_due is None:
        return _refuse(Reason.TERM_ENDED, patron.patron_id, scanned, item, due=loan.due.isoformat())
    event = EventDraft(
        EventType.RENEWED,
        patron.patron_id,
        Renewal(item_id=item.item_id, loan_id=loan.loan_id, patron_id=patron.patron_id, due_before=loan.due,
                due=new_due, renewal=loan.renewals + 1),
    )
    return Decision(Done(Action.RENEWED, item.item_id, patron.patron_id, new_due), (event,))


# --- returning -----------------------------------------------------------------------------


class Ambiguity(StrEnum):
    """What to do when a shared barcode matches several loans and no card says whose."""

    #: ask the child to tap their card (the self-service default)
    REFUSE = "refuse"
    #: close the oldest loan and flag it (a student librarian's bulk returns)
    OLDEST = "oldest"


def checkin(
    reference: Reference,
    state: CirculationState,
    scanned: ScannedCode,
    now: datetime,
    who: Identified | None = None,
    ambiguity: Ambiguity = Ambiguity.REFUSE,
    handled_by: Identified | None = None,
) -> Decision:
    """A book handed back, with or without the borrower's card. ``handled_by`` is a student
    librarian taking returns for others: recorded as the actor (their work record), without
    saying whose book it is."""
    actor = who.patron.patron_id if who else handled_by.patron.patron_id if handled_by else ANONYMOUS
    if scanned.kind is not CodeKind.ITEM:
        return unknown_code(scanned, actor)
    copies = reference.copies(scanned.item_ids)
    loans = sorted((state.loans[c.item_id] for c in copies if c.item_id in state.loans), key=_age)
    if not loans:
        return _refuse(Reason.NOT_ON_LOAN, actor, scanned, copies[0])
    warnings: list[Warning_] = []
    mine = [loan for loan in loans if who and loan.patron_id == who.patron.patron_id]
    if mine:
        loan = mine[0]
    elif len(loans) == 1:
        loan = loans[0]
    elif ambiguity is Ambiguity.OLDEST:
        loan = loans[0]
        warnings.append(Warning_.OLDEST_OF_SEVERAL)
    else:
        return _refuse(Reason.AMBIGUOUS_COPY, actor, scanned, copies[0], on_loan=len(loans))
    today = now.date()
    late = reference.calendar.open_days_between(loan.due, today) if loan.is_overdue(today) else 0
    if late:
        warnings.append(Warning_.LATE)
    event = _checkin_event(reference, loan, actor, today, implicit=False, with_card=who is not None, warnings=warnings)
    return Decision(Done(Action.CHECKED_IN, loan.item_id, loan.patron_id, loan.due, tuple(warnings), late), (event,))


# --- reports by student librarians and the librarian ----------------------------------------

_REPORTERS = frozenset({Role.STUDENT_LIBRARIAN, Role.TEACHER, Role.LIBRARIAN})


def report_damaged(
    reference: Reference, state: CirculationState, who: Identified, scanned: ScannedCode, now: datetime, note: str = ""
) -> Decision:
    """A damaged book goes to the repair register (and back from its borrower, if on loan)."""
    return _report(reference, state, who, scanned, now, Action.MARKED_DAMAGED, note)


def report_lost(
    reference: Reference, state: CirculationState, who: Identified, scanned: ScannedCode, now: datetime, note: str = ""
) -> Decision:
    """A book declared lost: its loan closes (compensation is the school's business)."""
    return _report(reference, state, who, scanned, now, Action.MARKED_LOST, note)


def report_found(
    reference: Reference, state: CirculationState, who: Identified, scanned: ScannedCode, now: datetime, note: str = ""
) -> Decision:
    """A lost book turned up, or a book came back from repair: on the shelf again."""
    return _report(reference, state, who, scanned, now, Action.MARKED_FOUND, note)


def _report(
    reference: Reference,
    state: CirculationState,
    who: Identified,
    scanned: ScannedCode,
    now: datetime,
    action: Action,
    note: str,
) -> Decision:
    actor = who.patron.patron_id
    if scanned.kind is not CodeKind.ITEM:
        return unknown_code(scanned, actor)
    if who.patron.role not in _REPORTERS:
        return _refuse(Reason.NOT_ALLOWED, actor, scanned, action=str(action))
    copies = reference.copies(scanned.item_ids)
    today = now.date()
    if action is Action.MARKED_FOUND:
        candidates = [c for c in copies if state.status_of(c) in (ItemStatus.LOST, ItemStatus.IN_REPAIR)]
        if not candidates:
            return _refuse(Reason.ALREADY_REPORTED, actor, scanned, copies[0], status=str(state.status_of(copies[0])))
        item = candidates[0]
        if state.status_of(item) is ItemStatus.IN_REPAIR:
            event = EventDraft(EventType.ITEM_REPAIRED, actor, ItemRepaired(item_id=item.item_id, note=note))
            return Decision(Done(Action.MARKED_REPAIRED, item.item_id), (event,))
        event = EventDraft(EventType.ITEM_FOUND, actor, ItemFound(item_id=item.item_id, note=note))
        return Decision(Done(Action.MARKED_FOUND, item.item_id), (event,))

    target = ItemStatus.IN_REPAIR if action is Action.MARKED_DAMAGED else ItemStatus.LOST
    candidates = [c for c in copies if state.status_of(c) is not target]
    if not candidates:
        return _refuse(Reason.ALREADY_REPORTED, actor, scanned, copies[0], status=str(target))
    on_loan = sorted((state.loans[c.item_id] for c in candidates if c.item_id in state.loans), key=_age)
    on_shelf = [c for c in candidates if c.item_id not in state.loans]
    # the damaged book is in hand: a copy on the shelf if there is one, else the oldest loan
    item = on_shelf[0] if on_shelf and action is Action.MARKED_DAMAGED else (
        reference.items[on_loan[0].item_id] if on_loan else candidates[0]
    )
    loan = state.loan_of(item.item_id)
    events: list[EventDraft] = []
    loan_id, patron_id = (loan.loan_id, loan.patron_id) if loan is not None else (None, None)
    if loan is not None and action is Action.MARKED_DAMAGED:
        events.append(_checkin_event(reference, loan, actor, today, implicit=True, with_card=False))
    if action is Action.MARKED_DAMAGED:
        events.append(EventDraft(EventType.ITEM_DAMAGED, actor,
                                 ItemDamaged(item_id=item.item_id, note=note, loan_id=loan_id, patron_id=patron_id)))
    else:
        events.append(EventDraft(EventType.ITEM_LOST, actor,
                                 ItemLost(item_id=item.item_id, note=note, loan_id=loan_id, patron_id=patron_id)))
    return Decision(Done(action, item.item_id, loan.patron_id if loan else None), tuple(events))


# --- the librarian's additions: cards and books the snapshot does not know yet -------------

_ENROLLERS = frozenset({Role.LIBRARIAN})


def enrol_card(
    reference: Reference,
    who: Identified,
    card: ScannedCode,
    patron_id: str,
    *,
    replace_other_cards: bool = False,
) -> Decision:
    """Give a card to a patron. With ``replace_other_cards`` the patron's other active
    cards are recorded as lost (a replacement card)."""
    actor = who.patron.patron_id
    if who.patron.role not in _ENROLLERS:
        return _refuse(Reason.NOT_ALLOWED, actor, card, action="enrol_card")
    if card.kind is CodeKind.CARD:
        holder = reference.cards[card.card_id or card.text].patron_id
        return _refuse(Reason.ALREADY_ENROLLED, actor, card, patron_id=holder)
    if card.kind is not CodeKind.UNKNOWN_CARD or not card.text:
        return _refuse(Reason.UNREADABLE, actor, card)
    patron = reference.patrons.get(patron_id)
    if patron is None:
        return _refuse(Reason.PATRON_UNKNOWN, actor, card, patron_id=patron_id)
    replaces = sorted(
        c.card_id for c in reference.cards.values()
        if replace_other_cards and c.patron_id == patron_id and c.status is CardStatus.ACTIVE
    )
    card_id = card.card_id or card.text
    event = EventDraft(EventType.CARD_ENROLLED, actor,
                       CardEnrolled(card_id=card_id, patron_id=patron_id, replaces=tuple(replaces)))
    return Decision(Done(Action.CARD_ENROLLED, "", patron_id, card_id=card_id), (event,))


def register_item(
    reference: Reference,
    who: Identified,
    scanned: ScannedCode,
    new_item_id: str,
    title: str,
    item_type: ItemType = ItemType.CIRCULATING,
    *,
    author: str | None = None,
    call_number: str | None = None,
    home_corner: str | None = None,
) -> Decision:
    """Put a new book on the shelf from the kiosk. A new accession label, or an ISBN the
    catalogue lacks; another copy of a known ISBN-only book is allowed too (several
    copies share a printed barcode). ``new_item_id`` comes from the caller: the rules
    invent nothing."""
    actor = who.patron.patron_id
    if who.patron.role not in _ENROLLERS:
        return _refuse(Reason.NOT_ALLOWED, actor, scanned, action="register_item")
    title = title.strip()
    if not title:
        return _refuse(Reason.TITLE_MISSING, actor, scanned)
    if scanned.kind is CodeKind.ITEM and (scanned.isbn13 is None or scanned.text in reference.by_barcode):
        return _refuse(Reason.ALREADY_REGISTERED, actor, scanned, item_id=scanned.item_ids[0])
    if scanned.kind not in (CodeKind.ITEM, CodeKind.UNKNOWN_ITEM):
        return _refuse(Reason.UNREADABLE, actor, scanned)
    if new_item_id in reference.items:
        return _refuse(Reason.ALREADY_REGISTERED, actor, scanned, item_id=new_item_id)
    isbn13 = scanned.isbn13
    new = NewItem(
        item_id=new_item_id,
        title=title,
        barcode=None if isbn13 else scanned.text,
        isbn13=isbn13,
        isbn10=isbn10_of(isbn13) if isbn13 else None,
        author=(author or "").strip() or None,
        call_number=(call_number or "").strip() or None,
        item_type=item_type,
        home_corner=home_corner,
    )
    event = EventDraft(EventType.ITEM_REGISTERED, actor, ItemRegistered(item=new, code=scanned.text))
    return Decision(Done(Action.ITEM_REGISTERED, new_item_id), (event,))


# --- what a patron may still do --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allowance:
    loan_count: int
    limit: int
    overdue: int
    blocked: bool

    @property
    def may_checkout(self) -> int:
        return 0 if self.blocked else max(0, self.limit - self.loan_count)


def allowance(reference: Reference, state: CirculationState, patron: Patron, today: date) -> Allowance:
    role = reference.policy.role(patron.role)
    loans = state.loans_of(patron.patron_id)
    overdue = sum(1 for loan in loans if loan.is_overdue(today))
    blocked = patron.status is not PatronStatus.ACTIVE or (overdue > 0 and role.block_when_overdue)
    return Allowance(loan_count=len(loans), limit=role.max_loans, overdue=overdue, blocked=blocked)


# --- helpers ---------------------------------------------------------------------------------


def _age(loan: Loan) -> tuple[datetime, str]:
    return (loan.since, loan.item_id)


def _holder(state: CirculationState, item: Item) -> str | None:
    loan = state.loan_of(item.item_id)
    return loan.patron_id if loan else None


def _copy_to_check_out(state: CirculationState, copies: Sequence[Item], scanned: ScannedCode) -> Item:
    """Which of the copies behind a code is the one in the child's hands.

    A labelled copy scanned by its label is that copy. Behind a shared ISBN, prefer a copy
    on the shelf, unlabelled ones first (labelled copies are normally scanned by label);
    if every copy is out, the one in hand must be the oldest loan's, never given back."""
    if len(copies) == 1:
        return copies[0]
    loanable = (ItemStatus.AVAILABLE, ItemStatus.LOST)
    on_shelf = [c for c in copies if c.item_id not in state.loans and state.status_of(c) in loanable]
    if on_shelf:
        return min(on_shelf, key=lambda c: (c.barcode is not None, c.item_id))
    on_loan = sorted((state.loans[c.item_id] for c in copies if c.item_id in state.loans), key=_age)
    if on_loan:
        return next(c for c in copies if c.item_id == on_loan[0].item_id)
    return copies[0]


def _item_refusal(
    reference: Reference, state: CirculationState, patron: Patron, item: Item, scanned: ScannedCode
) -> Decision | None:
    status = state.status_of(item)
    if status is ItemStatus.WITHDRAWN:
        return _refuse(Reason.WITHDRAWN, patron.patron_id, scanned, item)
    if status is ItemStatus.IN_REPAIR:
        return _refuse(Reason.IN_REPAIR, patron.patron_id, scanned, item)
    if not reference.policy.rule(patron.role, item.item_type).loanable:
        reason = Reason.REFERENCE_ONLY if item.item_type is ItemType.REFERENCE else Reason.NOT_LOANABLE
        return _refuse(reason, patron.patron_id, scanned, item, item_type=str(item.item_type))
    return None


def _describe(reference: Reference, loans: Sequence[Loan]) -> list[dict[str, str]]:
    return [
        {"item_id": loan.item_id, "title": reference.items[loan.item_id].title, "due": loan.due.isoformat()}
        for loan in loans
    ]


def _checkin_event(
    reference: Reference,
    loan: Loan,
    actor: str,
    today: date,
    *,
    implicit: bool,
    with_card: bool,
    warnings: Sequence[Warning_] = (),
) -> EventDraft:
    return EventDraft(
        EventType.CHECKED_IN,
        actor,
        Checkin(item_id=loan.item_id, loan_id=loan.loan_id, patron_id=loan.patron_id, due=loan.due,
                with_card=with_card, implicit=implicit, warnings=tuple(str(w) for w in warnings)),
    )


def _refuse(
    reason: Reason, actor: str, scanned: ScannedCode, item: Item | None = None, **details: Any
) -> Decision:
    facts: dict[str, Any] = dict(details)
    if item is not None:
        facts.setdefault("item_id", item.item_id)
        facts.setdefault("title", item.title)
    assert set(facts) <= set(Refused.__struct_fields__), f"a fact the refusal's payload has no field for: {facts}"
    fields: dict[str, Any] = {**facts, **{k: tuple(msgspec.convert(v, LoanNote) for v in facts[k])
                                           for k in ("overdue", "loans") if k in facts}}
    payload = Refused(reason=str(reason), code=scanned.text, **fields)
    return Decision(Refusal(reason, facts), (EventDraft(EventType.REFUSED, actor, payload),))
