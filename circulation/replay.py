"""Replaying a kiosk's events into the school's loans: the server's use of the circulation model.

The kiosk decides with ``rules`` and projects its own state with ``state.apply``; the
server replays the events of every kiosk with this module, over the same ``Loan``, the
same ``ItemStatus`` and the same vocabulary (``outcomes``). Offline transactions are facts
that already happened (../shared/DOMAIN.md): they are replayed in time order and never
dropped; what cannot apply cleanly is stored and kept for a librarian with the reason.

* a checkout of a book on loan to someone else closes that loan first (Koha);
* a return of a book that is not on loan is kept for review (Koha);
* news about a book older than its last change recorded elsewhere is kept for review,
  not applied (Evergreen skips a transaction when the item changed after its time);
  within one kiosk the sequence number is the order, whatever the clocks said;
* an event type the server does not know (a newer kiosk) is kept for review, never
  dropped, never an error.

Cards enrolled and books registered at a kiosk join the server's reference data: that
is decided over the server's records (central.additions).

Pure: the caller loads the items' states, this changes them, the caller stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from bookcorner.circulation.events import (
    Checkin,
    Checkout,
    EventType,
    ItemDamaged,
    ItemFound,
    ItemLost,
    ItemRepaired,
    Payload,
    Renewal,
    UnknownPayload,
    event_type,
)
from bookcorner.circulation.model import ItemStatus
from bookcorner.circulation.outcomes import Outcome, ReviewReason, Warning_
from bookcorner.circulation.state import Loan

#: kept as records for the librarian; nothing to apply
RECORDS = frozenset({EventType.REFUSED, EventType.UNKNOWN_CARD, EventType.UNKNOWN_ITEM, EventType.UNREADABLE})
#: always for a person to look at
ALWAYS_REVIEW = {EventType.JOURNAL_DAMAGE: ReviewReason.JOURNAL_DAMAGE}
CHANGES_ITEMS = frozenset({
    EventType.CHECKED_OUT, EventType.CHECKED_IN, EventType.RENEWED, EventType.ITEM_DAMAGED,
    EventType.ITEM_LOST, EventType.ITEM_FOUND, EventType.ITEM_REPAIRED,
})
#: add to the reference data (cards, catalogue) rather than to an item's circulation
ADDITIONS = frozenset({EventType.CARD_ENROLLED, EventType.ITEM_REGISTERED})
#: the payloads of the events in CHANGES_ITEMS (each names its book: ``item_id``)
ITEM_PAYLOADS = (Checkout, Checkin, Renewal, ItemDamaged, ItemLost, ItemFound, ItemRepaired)
#: lending a book in one of these statuses warns (and puts it back in circulation unless withdrawn)
_LENT_WHILE = {ItemStatus.IN_REPAIR: Warning_.ITEM_WAS_IN_REPAIR, ItemStatus.LOST: Warning_.ITEM_WAS_LOST,
               ItemStatus.WITHDRAWN: Warning_.ITEM_WAS_WITHDRAWN}


@dataclass(slots=True)
class ItemState:
    """One book as the server keeps it: its status (None: as the catalogue says), its open
    loan, and its last change (when, by which kiosk, at which sequence number)."""

    item_id: str
    status: ItemStatus | None = None
    loan: Loan | None = None
    changed_time: datetime | None = None
    changed_kiosk: str | None = None
    changed_seq: int | None = None
    dirty: bool = False

    def __post_init__(self) -> None:
        if self.status is not None:  # a status code as stored
            self.status = ItemStatus(self.status)


class ReplayEvent(NamedTuple):
    event_id: str
    kiosk_id: str
    seq: int
    type: str
    #: decoded at the boundary (circulation.events.decode_payload); ``UnknownPayload`` for a
    #: type this code does not know, or a payload kept for review that its type's struct refused
    payload: Payload
    #: the server's corrected time of the event (circulation.retiming)
    time: datetime


@dataclass(frozen=True, slots=True)
class Replayed:
    outcome: Outcome
    reason: ReviewReason | None = None
    warnings: tuple[Warning_, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


def item_of(payload: Payload) -> str | None:
    """The item an event changes, if it changes one."""
    if isinstance(payload, ITEM_PAYLOADS) and payload.item_id:
        return payload.item_id
    return None


def review(reason: ReviewReason, **detail: Any) -> Replayed:
    return Replayed(Outcome.NEEDS_REVIEW, reason, detail=detail)


_APPLIED = Replayed(Outcome.APPLIED)


def done(*warnings: Warning_) -> Replayed:
    if not warnings:
        return _APPLIED
    return Replayed(Outcome.APPLIED_WITH_WARNING, warnings=tuple(warnings))


def replay(event: ReplayEvent, items: Mapping[str, ItemState]) -> Replayed:
    """Apply one event to the items it touches (``items`` must hold its item)."""
    kind = event.type
    known = event_type(kind)
    if known is None:
        return review(ReviewReason.UNKNOWN_EVENT_TYPE, type=kind)
    if known in ALWAYS_REVIEW:
        return review(ALWAYS_REVIEW[known])
    if known in RECORDS:
        return done()
    if known not in CHANGES_ITEMS:  # a type added to the domain without a replay rule yet
        return review(ReviewReason.NOT_HANDLED, type=kind)
    item_id = item_of(event.payload)
    if item_id is None or isinstance(event.payload, UnknownPayload):
        return review(ReviewReason.INVALID_PAYLOAD, missing="item_id")
    state = items[item_id]
    if _stale(state, event):
        return review(ReviewReason.OLDER_THAN_ITEM_CHANGE, item_id=item_id,
                      changed_at=state.changed_time.isoformat() if state.changed_time else None,
                      changed_by=state.changed_kiosk)
    result = _APPLY[known](state, event)
    if result.outcome is not Outcome.NEEDS_REVIEW:
        state.changed_time = max(state.changed_time, event.time) if state.changed_time else event.time
        state.changed_kiosk, state.changed_seq = event.kiosk_id, event.seq
        state.dirty = True
    return result


def _stale(state: ItemState, event: ReplayEvent) -> bool:
    if state.changed_time is None:
        return False
    if state.changed_kiosk == event.kiosk_id:
        return state.changed_seq is not None and event.seq < state.changed_seq
    return event.time < state.changed_time


def _checked_out(state: ItemState, event: ReplayEvent) -> Replayed:
    p = event.payload
    assert isinstance(p, Checkout)
    patron, due = p.patron_id, p.due
    if not patron:
        return review(ReviewReason.INVALID_PAYLOAD, missing="patron_id or due")
    warnings = []
    current = state.loan
    if current is not None:
        warnings.append(Warning_.RETURNED_FROM_OTHER if current.patron_id != patron
                        else Warning_.ALREADY_ON_LOAN_TO_PATRON)
    if state.status in _LENT_WHILE:
        warnings.append(_LENT_WHILE[state.status])
    state.status = None if state.status in (ItemStatus.LOST, ItemStatus.IN_REPAIR) else state.status
    state.loan = Loan(event.event_id, state.item_id, patron, due, event.time, kiosk_id=event.kiosk_id)
    return done(*warnings)


def _returned(state: ItemState, event: ReplayEvent) -> Replayed:
    p = event.payload
    assert isinstance(p, Checkin)
    current = state.loan
    if current is None:
        return review(ReviewReason.NOT_ON_LOAN, item_id=p.item_id, loan_id=p.loan_id, patron_id=p.patron_id)
    state.loan = None
    loan_id = p.loan_id
    if loan_id is not None and loan_id != current.loan_id:
        return done(Warning_.CLOSED_OTHER_LOAN)
    return done()


def _renewed(state: ItemState, event: ReplayEvent) -> Replayed:
    p = event.payload
    assert isinstance(p, Renewal)
    current, due = state.loan, p.due
    if current is None:
        return review(ReviewReason.NOT_ON_LOAN, item_id=p.item_id)
    if p.loan_id not in (None, current.loan_id):
        return review(ReviewReason.LOAN_CHANGED, item_id=p.item_id, on_loan_to=current.patron_id)
    state.loan = replace(current, due=due, renewals=current.renewals + 1)
    return done()


def _damaged(state: ItemState, event: ReplayEvent) -> Replayed:
    warnings = []
    if state.loan is not None:  # the kiosk records the return first; if it did not, close it now
        state.loan = None
        warnings.append(Warning_.LOAN_STILL_OPEN)
    state.status = ItemStatus.IN_REPAIR
    return done(*warnings)


def _lost(state: ItemState, event: ReplayEvent) -> Replayed:
    state.loan = None
    state.status = ItemStatus.LOST
    return done()


def _found(state: ItemState, event: ReplayEvent) -> Replayed:
    was = state.status
    state.status = ItemStatus.AVAILABLE
    return done() if was is ItemStatus.LOST else done(Warning_.NOT_REPORTED)


def _repaired(state: ItemState, event: ReplayEvent) -> Replayed:
    was = state.status
    state.status = ItemStatus.AVAILABLE
    return done() if was is ItemStatus.IN_REPAIR else done(Warning_.NOT_REPORTED)


_APPLY = {
    EventType.CHECKED_OUT: _checked_out,
    EventType.CHECKED_IN: _returned,
    EventType.RENEWED: _renewed,
    EventType.ITEM_DAMAGED: _damaged,
    EventType.ITEM_LOST: _lost,
    EventType.ITEM_FOUND: _found,
    EventType.ITEM_REPAIRED: _repaired,
}
