"""Cards enrolled and books registered at a kiosk, joining the server's reference data.

A kiosk already lends with them, so they join the roster's cards and the catalogue,
unless the server knows that card or item id otherwise: then the event waits for review
(``ReviewReason.CARD_HELD_BY_OTHER``, ``ReviewReason.ITEM_ID_TAKEN``). Decided over the
server's own records (the wire's ``CardRecord``, ``ItemRecord``), with the circulation
model's outcomes (``circulation.replay``); pure: central.ingest loads and stores them.
"""

from __future__ import annotations

from bookcorner.circulation.events import CardEnrolled, ItemRegistered, NewItem, Payload
from bookcorner.circulation.outcomes import ReviewReason, Warning_
from bookcorner.circulation.replay import Replayed, ReplayEvent, done, review
from bookcorner.protocol.messages import CardRecord, ItemRecord


def additions_of(payload: Payload) -> tuple[list[str], list[str]]:
    """The card ids and item ids an addition event touches (to load before replaying it)."""
    if isinstance(payload, CardEnrolled):
        ids = [payload.card_id, *(payload.replaces or ())]
        return [i for i in ids if i], []
    if isinstance(payload, ItemRegistered):
        return [], [payload.item.item_id] if payload.item.item_id else []
    return [], []


def enrol_card(
    event: ReplayEvent, cards: dict[str, CardRecord | None], patron_known: bool
) -> tuple[Replayed, list[CardRecord]]:
    """A card given to a patron at a kiosk (``cards``: the server's records of the card
    and of those it replaces, None where unknown; updated in place)."""
    p = event.payload
    if not isinstance(p, CardEnrolled) or not p.card_id or not p.patron_id:
        return review(ReviewReason.INVALID_PAYLOAD, missing="card_id or patron_id"), []
    card_id, patron_id, replaces = p.card_id, p.patron_id, p.replaces or ()
    current = cards.get(card_id)
    if current is not None and current.patron_id != patron_id and current.status == "active":
        return review(ReviewReason.CARD_HELD_BY_OTHER, card_id=card_id, held_by=current.patron_id), []
    changed = [CardRecord(card_id, patron_id, "active")]
    for old in replaces:
        before = cards.get(old)
        if before is not None and before.patron_id == patron_id and before.status == "active":
            changed.append(CardRecord(old, patron_id, "lost"))
    for record in changed:
        cards[record.card_id] = record
    return (done() if patron_known else done(Warning_.PATRON_UNKNOWN)), changed


def item_record(new: NewItem) -> ItemRecord:
    """The catalogue's record of a book registered at a kiosk (its payload was checked against
    ``ItemRecord``'s rules at the boundary: central.validate)."""
    return ItemRecord(item_id=new.item_id, title=new.title, barcode=new.barcode, isbn13=new.isbn13,
                      isbn10=new.isbn10, author=new.author, call_number=new.call_number,
                      item_type=str(new.item_type), home_corner=new.home_corner)


def register_item(event: ReplayEvent, items: dict[str, ItemRecord | None]) -> tuple[Replayed, ItemRecord | None]:
    """A book put on the shelf at a kiosk (``items``: the server's record, None if unknown)."""
    if not isinstance(event.payload, ItemRegistered):
        return review(ReviewReason.INVALID_PAYLOAD, problem="not a registration"), None
    record = item_record(event.payload.item)
    current = items.get(record.item_id)
    if current is not None:
        if current == record:
            return done(), None  # the same registration again: nothing to change
        return review(ReviewReason.ITEM_ID_TAKEN, item_id=record.item_id, title=current.title), None
    items[record.item_id] = record
    return done(), record
