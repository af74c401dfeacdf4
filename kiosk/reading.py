"""What the kiosk knows from its own journal, read a chunk at a time between scans: the books
each child borrowed here (for "what to read next"), a stock-take left unfinished (to go on
with after a restart), and the shelf it stands by."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bookcorner.circulation.challenges import Challenge, Progress, category_of, progress
from bookcorner.circulation.challenges import Checkout as Borrowed
from bookcorner.circulation.events import Checkout, Event, StocktakeFinished, StocktakeScanned, StocktakeStarted
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.suggestions import book_key
from bookcorner.journal.journal import JournalReader
from bookcorner.journal.storage import StoreError

log = logging.getLogger(__name__)


class ReadingHistory:
    """Every child's borrowed items here, by item id, read from the journal a chunk at a time
    while the desk has nothing else to do (``step``), so that neither the kiosk's start nor a
    child's scan waits for a long journal (100,000 events take over a second to read).
    ``note`` adds what is recorded meanwhile (an item noted twice is one item). Until the
    whole journal is read, ``books_read`` gives None: the kiosk then suggests nothing rather
    than a book the child may have read."""

    #: events read per step (a few milliseconds)
    CHUNK = 500

    def __init__(self, journal_dir: Path) -> None:
        self._reader = JournalReader(journal_dir)
        self._read: dict[str, set[str]] = {}
        self._stocktakes: dict[str, OpenStocktake] = {}
        self._finished: set[str] = set()
        #: every child's checkouts here, with when (for the reading challenges)
        self._dated: dict[str, list[tuple[str, datetime]]] = {}
        self._after = 0
        self.complete = False

    def step(self) -> None:
        """Reads the next chunk of the journal (nothing once it is all read). A journal that
        cannot be read ends the reading: suggestions may then repeat a book, which is better
        than none."""
        if self.complete:
            return
        try:
            chunk = list(self._reader.events_after(self._after, limit=self.CHUNK))
        except StoreError as error:
            log.warning("could not read the journal for suggestions: %s", error)
            self.complete = True
            return
        self.note(chunk)
        if chunk:
            self._after = chunk[-1].seq
        if len(chunk) < self.CHUNK:
            self.complete = True

    def finish(self, budget_s: float) -> bool:
        """Reads on for at most ``budget_s`` seconds; whether the whole journal is read."""
        until = time.monotonic() + budget_s
        while not self.complete and time.monotonic() < until:
            self.step()
        return self.complete

    def note(self, events: Iterable[Event]) -> None:
        """Events read or just recorded (an event noted twice counts once)."""
        events = list(events)
        note(self._read, events)
        note_dated(self._dated, events)
        note_stocktakes(self._stocktakes, self._finished, events)

    def unfinished_stocktake(self) -> OpenStocktake | None:
        """The newest stock-take started and neither finished nor cancelled (None while the
        journal is not all read)."""
        if not self.complete or not self._stocktakes:
            return None
        return max(self._stocktakes.values(), key=lambda stocktake: stocktake.started_seq)

    def books_read(self, patron_id: str, reference: Reference) -> set[str] | None:
        """The child's borrowed books (None while the journal is not all read)."""
        return books_read(self._read, patron_id, reference) if self.complete else None

    def challenge_progress(self, patron_id: str, challenge: Challenge, reference: Reference) -> Progress | None:
        """The child's progress in a challenge, from their checkouts here (None while the
        journal is not all read: a count too low would discourage)."""
        if not self.complete:
            return None
        items = reference.items
        return progress(challenge, (
            Borrowed(book_key(items[i]), category_of(items[i].call_number), at)
            for i, at in self._dated.get(patron_id, ()) if i in items))


def note(read: dict[str, set[str]], events: Iterable[Event]) -> None:
    for event in events:
        if isinstance(event.payload, Checkout):
            read.setdefault(event.payload.patron_id, set()).add(event.payload.item_id)


@dataclass
class OpenStocktake:
    """A stock-take as its events in the journal tell it: its codes by sequence number."""

    stocktake_id: str
    shelf: tuple[str, ...] | None
    patron_id: str | None
    started_seq: int
    started: str
    scanned: dict[int, str] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [self.scanned[seq] for seq in sorted(self.scanned)]


def note_stocktakes(open_: dict[str, OpenStocktake], finished: set[str], events: Iterable[Event]) -> None:
    """Stock-takes started, scanned into and finished (``finished``: those seen to end, so
    that their start read again does not open them again)."""
    for event in events:
        payload = event.payload
        if isinstance(payload, StocktakeStarted) and payload.stocktake_id not in finished:
            open_.setdefault(payload.stocktake_id, OpenStocktake(
                payload.stocktake_id, payload.shelf, payload.patron_id, event.seq, event.wall_time))
        elif isinstance(payload, StocktakeScanned) and payload.stocktake_id in open_:
            open_[payload.stocktake_id].scanned[event.seq] = payload.code
        elif isinstance(payload, StocktakeFinished):
            finished.add(payload.stocktake_id)
            open_.pop(payload.stocktake_id, None)


def note_dated(dated: dict[str, list[tuple[str, datetime]]], events: Iterable[Event]) -> None:
    for event in events:
        if isinstance(event.payload, Checkout):
            try:
                at = datetime.fromisoformat(event.wall_time)
            except ValueError:
                continue
            dated.setdefault(event.payload.patron_id, []).append((event.payload.item_id, at))


def books_read(read: dict[str, set[str]], patron_id: str, reference: Reference) -> set[str]:
    """A child's borrowed items as books (an item the catalogue no longer has is left out)."""
    items = reference.items
    return {book_key(items[i]) for i in read.get(patron_id, ()) if i in items}


def shelf_of(reference: Reference) -> frozenset[str] | None:
    """The corners whose books stand by this kiosk: the classes of its rotation timetable
    (None: no timetable, every book the reference has)."""
    classes = frozenset(slot.class_name for slot in reference.timetable.slots)
    return classes or None
