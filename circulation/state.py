"""Circulation state as a projection: reference snapshot + events, rebuildable any time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

import msgspec

from bookcorner.circulation.events import (
    CardEnrolled,
    Checkin,
    Checkout,
    Event,
    ItemDamaged,
    ItemFound,
    ItemLost,
    ItemRegistered,
    ItemRepaired,
    NewItem,
    Renewal,
)
from bookcorner.circulation.model import Card, CardStatus, Item, ItemStatus

if TYPE_CHECKING:
    from bookcorner.circulation.reference import Reference


@dataclass(frozen=True, slots=True)
class Loan:
    """One loan: the same on the kiosk (projected from its own events, ``apply``) and on
    the server (replayed from them, ``circulation.replay``)."""

    #: the checkout's event id
    loan_id: str
    item_id: str
    patron_id: str
    due: date
    #: when it was lent: the kiosk's wall clock at the kiosk, the server's corrected time there
    since: datetime
    renewals: int = 0
    #: the kiosk that lent it (None: a loan from the server's snapshot)
    kiosk_id: str | None = None

    def is_overdue(self, today: date) -> bool:
        return today > self.due


@dataclass(frozen=True, slots=True)
class CirculationState:
    #: open loans by item id (an item is on loan at most once)
    loans: Mapping[str, Loan] = field(default_factory=dict)
    #: item ids on loan per patron
    by_patron: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: item statuses changed here since the reference snapshot
    item_status: Mapping[str, ItemStatus] = field(default_factory=dict)
    last_seq: int = 0
    #: cards enrolled and books registered here since the snapshot (the server has them later)
    enrolled_cards: Mapping[str, Card] = field(default_factory=dict)
    registered_items: Mapping[str, Item] = field(default_factory=dict)

    def loan_of(self, item_id: str) -> Loan | None:
        return self.loans.get(item_id)

    def loans_of(self, patron_id: str) -> list[Loan]:
        return sorted((self.loans[i] for i in self.by_patron.get(patron_id, ())), key=lambda l: (l.since, l.item_id))

    def overdue_loans_of(self, patron_id: str, today: date) -> list[Loan]:
        return [loan for loan in self.loans_of(patron_id) if loan.is_overdue(today)]

    def status_of(self, item: Item) -> ItemStatus:
        return self.item_status.get(item.item_id, item.status)


def _without_loan(loans: dict[str, Loan], by_patron: dict[str, tuple[str, ...]], item_id: str) -> None:
    old = loans.pop(item_id, None)
    if old is not None:
        remaining = tuple(i for i in by_patron.get(old.patron_id, ()) if i != item_id)
        if remaining:
            by_patron[old.patron_id] = remaining
        else:
            by_patron.pop(old.patron_id, None)


def apply(state: CirculationState, event: Event) -> CirculationState:
    """The state after one more event (events that change nothing only advance last_seq)."""
    p = event.payload
    last_seq = max(state.last_seq, event.seq)
    if isinstance(p, CardEnrolled):
        cards = dict(state.enrolled_cards)
        for old in p.replaces or ():
            cards[old] = Card(old, p.patron_id, CardStatus.LOST)
        cards[p.card_id] = Card(p.card_id, p.patron_id)
        return replace(state, enrolled_cards=cards, last_seq=last_seq)
    if isinstance(p, ItemRegistered):
        item = item_from_payload(p.item)
        return replace(state, registered_items={**state.registered_items, item.item_id: item}, last_seq=last_seq)
    if not isinstance(p, _CHANGES_ITEM):
        return replace(state, last_seq=last_seq)
    loans, by_patron, status = dict(state.loans), dict(state.by_patron), dict(state.item_status)
    item_id = p.item_id
    if isinstance(p, Checkout):
        _without_loan(loans, by_patron, item_id)
        loans[item_id] = Loan(
            loan_id=event.event_id,
            item_id=item_id,
            patron_id=p.patron_id,
            due=p.due,
            since=wall_time(event.wall_time),
            kiosk_id=event.kiosk_id,
        )
        by_patron[p.patron_id] = by_patron.get(p.patron_id, ()) + (item_id,)
    elif isinstance(p, Checkin):
        current = loans.get(item_id)
        if current is not None and current.loan_id == (p.loan_id if p.loan_id is not None else current.loan_id):
            _without_loan(loans, by_patron, item_id)
    elif isinstance(p, Renewal):
        current = loans.get(item_id)
        if current is not None:
            loans[item_id] = replace(current, due=p.due, renewals=current.renewals + 1)
    elif isinstance(p, ItemDamaged):
        status[item_id] = ItemStatus.IN_REPAIR
    elif isinstance(p, ItemLost):
        _without_loan(loans, by_patron, item_id)
        status[item_id] = ItemStatus.LOST
    else:  # found, back from repair
        status[item_id] = ItemStatus.AVAILABLE
    return replace(state, loans=loans, by_patron=by_patron, item_status=status, last_seq=last_seq)


_CHANGES_ITEM = (Checkout, Checkin, Renewal, ItemDamaged, ItemLost, ItemFound, ItemRepaired)


def wall_time(text: str) -> datetime:
    """An event's wall time as a datetime (one without an offset is taken as UTC)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def item_from_payload(fields: NewItem | Mapping) -> Item:
    """A book registered at a kiosk (its payload's ``item``; or the checkpoint's stored copy of it)."""
    new = fields if isinstance(fields, NewItem) else msgspec.convert(fields, NewItem)
    return Item(
        item_id=new.item_id,
        title=new.title,
        barcode=new.barcode,
        isbn13=new.isbn13,
        isbn10=new.isbn10,
        author=new.author,
        call_number=new.call_number,
        item_type=new.item_type,
        home_corner=new.home_corner,
    )



def initial_state(reference: Reference, covered: int | None = None) -> CirculationState:
    loans = {loan.item_id: loan for loan in reference.loans}
    by_patron: dict[str, tuple[str, ...]] = {}
    for loan in loans.values():
        by_patron[loan.patron_id] = by_patron.get(loan.patron_id, ()) + (loan.item_id,)
    return CirculationState(loans=loans, by_patron=by_patron,
                            last_seq=reference.applied_seq if covered is None else covered)


def project(reference: Reference, events: Iterable[Event], covered: int | None = None) -> CirculationState:
    """Rebuild the state from the snapshot and the events after it: those after
    ``covered`` (``reference.covered_seq``; by default the snapshot's applied_seq)."""
    after = reference.applied_seq if covered is None else covered
    state = initial_state(reference, after)
    for event in events:
        if event.seq > after:
            state = apply(state, event)
    return state
