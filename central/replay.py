"""Replaying kiosk events into the school's loans, with the peers' semantics.

Offline transactions are facts that already happened (../shared/DOMAIN.md): they are
replayed in time order and never dropped; what cannot apply cleanly is stored and kept
for a librarian with the reason.

* a checkout of a book on loan to someone else closes that loan first (Koha);
* a return of a book that is not on loan is kept for review (Koha);
* news about a book older than its last change recorded elsewhere is kept for review,
  not applied (Evergreen skips a transaction when the item changed after its time);
  within one kiosk the sequence number is the order, whatever the clocks said;
* a card enrolled or a book registered at a kiosk joins the reference data (the kiosk
  already lends with it), unless the server knows that card or item id otherwise: then
  it waits for review;
* an event type the server does not know (a newer kiosk) is kept for review, never
  dropped, never an error.

Pure: the caller loads the items' states, this changes them, the caller stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import msgspec

from bookcorner.circulation.events import EventType
from bookcorner.protocol.messages import CardRecord, ItemRecord, Outcome

#: kept as records for the librarian; nothing to apply
RECORDS = frozenset({EventType.REFUSED, EventType.UNKNOWN_CARD, EventType.UNKNOWN_ITEM, EventType.UNREADABLE})
#: always for a person to look at
ALWAYS_REVIEW = {EventType.JOURNAL_DAMAGE: "journal_damage"}
CHANGES_ITEMS = frozenset({
    EventType.CHECKED_OUT, EventType.RETURNED, EventType.RENEWED, EventType.ITEM_DAMAGED,
    EventType.ITEM_LOST, EventType.ITEM_FOUND, EventType.ITEM_REPAIRED,
})
#: add to the reference data (cards, catalogue) rather than to an item's circulation
ADDITIONS = frozenset({EventType.CARD_ENROLLED, EventType.ITEM_REGISTERED})
KNOWN_TYPES = frozenset(str(t) for t in EventType)
_BY_NAME = {str(t): t for t in EventType}


class Reason:
    """Why an event waits for review (codes on the wire and in the database)."""

    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    INVALID_PAYLOAD = "invalid_payload"
    NOT_ON_LOAN = "not_on_loan"
    LOAN_CHANGED = "loan_changed"
    OLDER_THAN_ITEM_CHANGE = "older_than_item_change"
    JOURNAL_DAMAGE = "journal_damage"
    SEQ_CONFLICT = "seq_conflict"
    EVENT_ID_CONFLICT = "event_id_conflict"
    EVENTS_MISSING = "events_missing"
    CARD_HELD_BY_OTHER = "card_held_by_other"
    ITEM_ID_TAKEN = "item_id_taken"
    NOT_HANDLED = "not_handled_here"
    #: a kiosk's journal began a new incarnation after going back in time (restored from a
    #: backup, repaired, copied back): what the server has that the kiosk no longer has
    JOURNAL_RESTORED = "journal_restored"
    JOURNAL_REPAIRED = "journal_repaired"
    JOURNAL_WENT_BACK = "journal_went_back"
    #: a checkout applied, but the kiosk worked its due date out under a clock the server
    #: corrected onto another day: the loan keeps the date the child was told, the librarian
    #: may move it to the one the rules give on the corrected day (central.due_check)
    DUE_FROM_WRONG_CLOCK = "due_date_from_wrong_clock"


class Warn:
    RETURNED_FROM_OTHER = "returned_from_other"
    CLOSED_OTHER_LOAN = "closed_other_loan"
    ALREADY_ON_LOAN_TO_PATRON = "already_on_loan_to_patron"
    ITEM_WAS = "item_was_"  # + status: lent while in repair, lost or withdrawn
    LOAN_STILL_OPEN = "loan_still_open"
    NOT_REPORTED = "was_not_reported"
    PATRON_UNKNOWN = "patron_unknown"
    #: the server had another event under this sequence number of the same journal (it went
    #: back in time): this one is a different event, stored and applied all the same
    SEQ_REUSED = "seq_reused"


@dataclass(slots=True)
class Loan:
    loan_id: str
    patron_id: str
    due: date
    since: datetime
    kiosk_id: str
    renewals: int = 0


@dataclass(slots=True)
class ItemState:
    item_id: str
    status: str | None = None
    loan: Loan | None = None
    changed_time: datetime | None = None
    changed_kiosk: str | None = None
    changed_seq: int | None = None
    dirty: bool = False


class ReplayEvent(NamedTuple):
    event_id: str
    kiosk_id: str
    seq: int
    type: str
    payload: Mapping[str, Any]
    time: datetime


@dataclass(frozen=True, slots=True)
class Replayed:
    outcome: Outcome
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


def item_of(event_type: str, payload: Mapping[str, Any]) -> str | None:
    """The item an event changes, if it changes one."""
    if event_type in CHANGES_ITEMS:
        item_id = payload.get("item_id")
        if isinstance(item_id, str) and item_id:
            return item_id
    return None


def _review(reason: str, **detail: Any) -> Replayed:
    return Replayed(Outcome.NEEDS_REVIEW, reason, detail=detail)


_APPLIED = Replayed(Outcome.APPLIED)


def _done(*warnings: str) -> Replayed:
    if not warnings:
        return _APPLIED
    return Replayed(Outcome.APPLIED_WITH_WARNING, warnings=tuple(warnings))


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def replay(event: ReplayEvent, items: Mapping[str, ItemState]) -> Replayed:
    """Apply one event to the items it touches (``items`` must hold its item)."""
    kind = event.type
    known = _BY_NAME.get(kind)
    if known is None:
        return _review(Reason.UNKNOWN_EVENT_TYPE, type=kind)
    if known in ALWAYS_REVIEW:
        return _review(ALWAYS_REVIEW[known])
    if known in RECORDS:
        return _done()
    if known not in CHANGES_ITEMS:  # a type added to the domain without a replay rule yet
        return _review(Reason.NOT_HANDLED, type=kind)
    item_id = item_of(kind, event.payload)
    if item_id is None:
        return _review(Reason.INVALID_PAYLOAD, missing="item_id")
    state = items[item_id]
    if _stale(state, event):
        return _review(Reason.OLDER_THAN_ITEM_CHANGE, item_id=item_id,
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
    patron, due = p.get("patron_id"), _date(p.get("due"))
    if not isinstance(patron, str) or not patron or due is None:
        return _review(Reason.INVALID_PAYLOAD, missing="patron_id or due")
    warnings = []
    current = state.loan
    if current is not None:
        warnings.append(Warn.RETURNED_FROM_OTHER if current.patron_id != patron else Warn.ALREADY_ON_LOAN_TO_PATRON)
    if state.status in ("in_repair", "lost", "withdrawn"):
        warnings.append(Warn.ITEM_WAS + state.status)
    state.status = None if state.status in ("lost", "in_repair") else state.status
    state.loan = Loan(event.event_id, patron, due, event.time, event.kiosk_id)
    return _done(*warnings)


def _returned(state: ItemState, event: ReplayEvent) -> Replayed:
    current = state.loan
    if current is None:
        return _review(Reason.NOT_ON_LOAN, item_id=event.payload.get("item_id"),
                       loan_id=event.payload.get("loan_id"), patron_id=event.payload.get("patron_id"))
    state.loan = None
    loan_id = event.payload.get("loan_id")
    if loan_id is not None and loan_id != current.loan_id:
        return _done(Warn.CLOSED_OTHER_LOAN)
    return _done()


def _renewed(state: ItemState, event: ReplayEvent) -> Replayed:
    current, due = state.loan, _date(event.payload.get("due"))
    if due is None:
        return _review(Reason.INVALID_PAYLOAD, missing="due")
    if current is None:
        return _review(Reason.NOT_ON_LOAN, item_id=event.payload.get("item_id"))
    if event.payload.get("loan_id") not in (None, current.loan_id):
        return _review(Reason.LOAN_CHANGED, item_id=event.payload.get("item_id"), on_loan_to=current.patron_id)
    current.due = due
    current.renewals += 1
    return _done()


def _damaged(state: ItemState, event: ReplayEvent) -> Replayed:
    warnings = []
    if state.loan is not None:  # the kiosk records the return first; if it did not, close it now
        state.loan = None
        warnings.append(Warn.LOAN_STILL_OPEN)
    state.status = "in_repair"
    return _done(*warnings)


def _lost(state: ItemState, event: ReplayEvent) -> Replayed:
    state.loan = None
    state.status = "lost"
    return _done()


def _found(state: ItemState, event: ReplayEvent) -> Replayed:
    was = state.status
    state.status = "available"
    return _done() if was == "lost" else _done(Warn.NOT_REPORTED)


def _repaired(state: ItemState, event: ReplayEvent) -> Replayed:
    was = state.status
    state.status = "available"
    return _done() if was == "in_repair" else _done(Warn.NOT_REPORTED)


_APPLY = {
    EventType.CHECKED_OUT: _checked_out,
    EventType.RETURNED: _returned,
    EventType.RENEWED: _renewed,
    EventType.ITEM_DAMAGED: _damaged,
    EventType.ITEM_LOST: _lost,
    EventType.ITEM_FOUND: _found,
    EventType.ITEM_REPAIRED: _repaired,
}


# --- additions to the reference data ----------------------------------------------------------


def additions_of(event_type: str, payload: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The card ids and item ids an addition event touches (to load before replaying it)."""
    if event_type == EventType.CARD_ENROLLED:
        ids = [payload.get("card_id"), *(payload.get("replaces") or ())]
        return [i for i in ids if isinstance(i, str) and i], []
    if event_type == EventType.ITEM_REGISTERED:
        item = payload.get("item")
        item_id = item.get("item_id") if isinstance(item, Mapping) else None
        return [], [item_id] if isinstance(item_id, str) and item_id else []
    return [], []


def enrol_card(
    event: ReplayEvent, cards: dict[str, CardRecord | None], patron_known: bool
) -> tuple[Replayed, list[CardRecord]]:
    """A card given to a patron at a kiosk (``cards``: the server's records of the card
    and of those it replaces, None where unknown; updated in place)."""
    p = event.payload
    card_id, patron_id, replaces = p.get("card_id"), p.get("patron_id"), p.get("replaces") or []
    if not isinstance(card_id, str) or not card_id or not isinstance(patron_id, str) or not patron_id \
            or not isinstance(replaces, (list, tuple)):
        return _review(Reason.INVALID_PAYLOAD, missing="card_id or patron_id"), []
    current = cards.get(card_id)
    if current is not None and current.patron_id != patron_id and current.status == "active":
        return _review(Reason.CARD_HELD_BY_OTHER, card_id=card_id, held_by=current.patron_id), []
    changed = [CardRecord(card_id, patron_id, "active")]
    for old in replaces:
        before = cards.get(old)
        if before is not None and before.patron_id == patron_id and before.status == "active":
            changed.append(CardRecord(old, patron_id, "lost"))
    for record in changed:
        cards[record.card_id] = record
    return (_done() if patron_known else _done(Warn.PATRON_UNKNOWN)), changed


def register_item(event: ReplayEvent, items: dict[str, ItemRecord | None]) -> tuple[Replayed, ItemRecord | None]:
    """A book put on the shelf at a kiosk (``items``: the server's record, None if unknown)."""
    try:
        record = msgspec.convert(event.payload.get("item"), ItemRecord)
    except msgspec.ValidationError as error:
        return _review(Reason.INVALID_PAYLOAD, problem=str(error)), None
    current = items.get(record.item_id)
    if current is not None:
        if current == record:
            return _done(), None  # the same registration again: nothing to change
        return _review(Reason.ITEM_ID_TAKEN, item_id=record.item_id, title=current.title), None
    items[record.item_id] = record
    return _done(), record
