"""What the kiosk knows for "what to read next": the books each child borrowed here (from
its own journal, which holds every loan made at this kiosk), and the shelf it stands by."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from bookcorner.circulation.events import Checkout, Event
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.suggestions import book_key
from bookcorner.journal.storage import StoreError
from bookcorner.kiosk import reports

log = logging.getLogger(__name__)

_EVER = datetime(1970, 1, 1, tzinfo=timezone.utc)


def read_by_child(journal_dir: Path) -> dict[str, set[str]]:
    """Every child's borrowed items here, by item id (``note`` adds to it as they borrow).
    A journal that cannot be read gives nothing: suggestions may then repeat a book, which
    is better than none."""
    read: dict[str, set[str]] = {}
    try:
        note(read, reports.events_since(journal_dir, _EVER))
    except StoreError as error:
        log.warning("could not read the journal for suggestions: %s", error)
    return read


def note(read: dict[str, set[str]], events: Iterable[Event]) -> None:
    for event in events:
        if isinstance(event.payload, Checkout):
            read.setdefault(event.payload.patron_id, set()).add(event.payload.item_id)


def books_read(read: dict[str, set[str]], patron_id: str, reference: Reference) -> set[str]:
    """A child's borrowed items as books (an item the catalogue no longer has is left out)."""
    items = reference.items
    return {book_key(items[i]) for i in read.get(patron_id, ()) if i in items}


def shelf_of(reference: Reference) -> frozenset[str] | None:
    """The corners whose books stand by this kiosk: the classes of its rotation timetable
    (None: no timetable, every book the reference has)."""
    classes = frozenset(slot.class_name for slot in reference.timetable.slots)
    return classes or None
