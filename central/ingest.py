"""Taking a batch of events exactly once: the one path for pushes and USB imports.

In one transaction, holding the locks of the batch's kiosk, items and cards
(``db.Store.ingesting``: other kiosks' batches about other books run side by side): answer
a batch id seen before with its stored reply; otherwise tell apart the events already
stored (duplicates, by event id) from new ones, re-time the new ones
(``circulation.retiming``), replay them in order (``circulation.replay``), store them with
their outcome, keep those that need a person in ``reviews``, move the kiosk's high-water
mark, store the reply under the batch id, and last the changed items under a new revision.
Delivery is at-least-once; the effect is exactly once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from bookcorner.central import db, validate
from bookcorner.central.additions import additions_of, enrol_card, register_item
from bookcorner.central.due_check import DueCheck
from bookcorner.central.loans import LoanLedger
from bookcorner.central.outbox import enqueue
from bookcorner.central.validate import Problem, canonical
from bookcorner.circulation.events import CardEnrolled, Checkout, EventType, Payload
from bookcorner.circulation.outcomes import ReviewReason, Warning_
from bookcorner.circulation.replay import ADDITIONS, ItemState, Replayed, ReplayEvent, item_of
from bookcorner.circulation.retiming import Anchor, Stamp, TimeQuality, Timing, last_known, parse_wall, retime
from bookcorner.circulation.rules import WRONG_CLOCK
from bookcorner.circulation.state import Loan
from bookcorner.protocol.messages import (
    CardRecord,
    ClockReading,
    EventResult,
    ItemRecord,
    JournalIdentity,
    JournalNotice,
    Outcome,
    PushReply,
    WireEvent,
)

log = logging.getLogger(__name__)
_json = msgspec.json.Encoder()


class IngestError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Forbidden(IngestError):
    status, code = 403, "wrong_kiosk"


class Invalid(IngestError):
    status, code = 422, "invalid_batch"


class Conflict(IngestError):
    status, code = 409, "batch_id_reused"


@dataclass(frozen=True)
class Batch:
    kiosk_id: str
    batch_id: str
    from_seq: int
    to_seq: int
    clock: ClockReading
    events: Sequence[WireEvent]
    #: "push": the clock reading was taken just before sending (the receipt time anchors
    #: its boot); "import": it was taken when a USB export was written, days ago perhaps
    source: str = "push"
    #: what the kiosk reported still holding unacknowledged before this batch (None: not said)
    waiting: int | None = None
    #: the journal incarnation the events come from (None: an older kiosk that does not say)
    journal: JournalIdentity | None = None


@dataclass
class Timings:
    """Where a request's time went, for the Server-Timing header and the benchmark."""

    phases: dict[str, float] = field(default_factory=dict)
    _mark: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + (now - self._mark)
        self._mark = now

    def header(self) -> str:
        return ", ".join(f"{name};dur={seconds * 1000:.2f}" for name, seconds in self.phases.items())


def check(batch: Batch, kiosk_id: str) -> None:
    """What a batch must be before anything is looked up (the principal is ``kiosk_id``)."""
    if batch.kiosk_id != kiosk_id:
        raise Forbidden(f"this credential belongs to kiosk {kiosk_id!r}, not {batch.kiosk_id!r}")
    if batch.to_seq < batch.from_seq - 1:
        raise Invalid("to_seq is before from_seq")
    previous = batch.from_seq - 1
    for event in batch.events:
        if event.kiosk_id != kiosk_id:
            raise Forbidden(f"event {event.event_id} names kiosk {event.kiosk_id!r}: a kiosk pushes only its own events")
        if event.seq <= previous:
            raise Invalid(f"events are not in increasing sequence order at {event.seq}")
        if event.seq > batch.to_seq:
            raise Invalid(f"event {event.seq} is past to_seq {batch.to_seq}")
        previous = event.seq
    if len({e.event_id for e in batch.events}) != len(batch.events):
        raise Invalid("the same event id appears twice in the batch")


def digest(batch: Batch) -> str:
    h = hashlib.sha256(f"{batch.from_seq}:{batch.to_seq}".encode())
    for e in batch.events:
        h.update(f"|{e.seq}:{e.event_id}".encode())
    return h.hexdigest()


def _open_reviews(conn: Connection, kiosk_id: str) -> int:
    return conn.execute(
        select(func.count()).select_from(db.reviews)
        .where(db.reviews.c.kiosk_id == kiosk_id, db.reviews.c.resolved_at.is_(None))
    ).scalar_one()


def _chunks(values: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _missing(start: int, end: int, present: Iterable[int]) -> list[tuple[int, int]]:
    """The ranges of ``start..end`` not in ``present`` (without building the whole range)."""
    gaps, expected = [], start
    for seq in sorted(s for s in set(present) if start <= s <= end):
        if seq > expected:
            gaps.append((expected, seq - 1))
        expected = seq + 1
    if expected <= end:
        gaps.append((expected, end))
    return gaps


def next_revision(conn: Connection) -> int:
    return conn.execute(update(db.revision).where(db.revision.c.id == 1).values(rev=db.revision.c.rev + 1)
                        .returning(db.revision.c.rev)).scalar_one()


@dataclass(frozen=True)
class _Prepared:
    """What can be worked out before taking the write lock (a function of the batch alone)."""

    digest: str
    #: the batch, its events' types under their current names (central.validate.canonical)
    batch: Batch
    #: each event's payload as stored (JSON text) and its clock readings, in batch order
    payloads: list[str]
    stamps: list[Stamp]
    #: each event's typed payload (circulation.events), None where it is invalid
    decoded: list[Payload | None]
    #: the events (by index in the batch) whose payload the database or replay cannot take
    #: (central.validate): stored and kept for review, nothing of them replayed or looked up
    invalid: dict[int, Problem]
    #: the items and cards the batch's valid events may change (what it locks: ``db.Store.ingesting``)
    items: frozenset[str] = frozenset()
    cards: frozenset[str] = frozenset()

    @classmethod
    def of(cls, batch: Batch) -> _Prepared:
        encode = _json.encode
        events = [canonical(e) for e in batch.events]
        payloads = [encode(e.payload).decode("utf-8") for e in events]
        decoded: list[Payload | None] = []
        invalid: dict[int, Problem] = {}
        for i, (e, text) in enumerate(zip(events, payloads, strict=True)):
            found = validate.decoded(e, text)
            if isinstance(found, Problem):
                invalid[i] = found
                decoded.append(None)
            else:
                decoded.append(found)
        items: set[str] = set()
        cards: set[str] = set()
        for payload in decoded:
            if payload is not None:
                item = item_of(payload)
                if item is not None:
                    items.add(item)
                added_cards, added_items = additions_of(payload)
                items.update(added_items)
                cards.update(added_cards)
        return cls(digest(batch), replace(batch, events=events), payloads,
                   [Stamp(e.seq, e.boot_id, e.monotonic_ns, parse_wall(e.wall_time), e.clock_synced)
                    for e in events], decoded, invalid, frozenset(items), frozenset(cards))

    def payload(self, index: int) -> Payload:
        """The typed payload of a valid event."""
        found = self.decoded[index]
        assert found is not None, "an invalid event is not replayed"
        return found


def ingest(store: db.Store, batch: Batch, received: datetime, timings: Timings | None = None) -> PushReply:
    timings = timings or Timings()
    prepared = _Prepared.of(batch)
    timings.lap("check")
    # First as if every event were new when the batch is numbered past everything the kiosk
    # sent before (no lookup of 500 ids); an id the server already has trips the primary
    # key, the transaction is undone, and the careful path looks every id up. Once more when
    # another kiosk's batch, side by side with this one, stored one of its ids first (the
    # careful path did not see it yet): the third time it is seen and kept for review.
    attempts = (True, False) if store.sqlite else (True, False, False)  # (SQLite: one writer, none between)
    for attempt, optimistic in enumerate(attempts, 1):
        try:
            with store.ingesting(batch.kiosk_id, prepared.items, prepared.cards) as conn:
                timings.lap("lock")
                reply = _ingest(conn, prepared.batch, prepared, received, timings, optimistic)
                timings.lap("write")
            timings.lap("commit")
            return reply
        except IntegrityError:
            if attempt == len(attempts):
                raise
            log.info("batch %s of kiosk %s holds an event id the server has: looking each one up",
                     batch.batch_id, batch.kiosk_id)
    raise AssertionError("unreachable")


@dataclass
class _Work:
    """One batch's working state as it goes through the phases of ``_ingest``, in one transaction."""

    conn: Connection
    batch: Batch
    prepared: _Prepared
    received: datetime
    timings: Timings
    #: the kiosk's row, as the journal incarnation the batch comes from sees it
    kiosk: Any
    journal: _JournalOf
    notice: JournalNotice | None
    #: rows for db.reviews, in the order they are found
    reviews: list[dict[str, Any]]
    #: each event's result, by event id
    results: dict[str, EventResult] = field(default_factory=dict)

    def review(self, event_id: str | None, seq: int | None, reason: str, detail: dict[str, Any]) -> None:
        self.reviews.append(_review_row(self.batch.kiosk_id, event_id, seq, reason, self.received, detail))


@dataclass(frozen=True)
class _Stored:
    """What the server already holds of the batch's range."""

    #: the batch's event ids the server has stored, with the kiosk and number they were stored under
    known: dict[str, tuple[str, int]]
    #: the ids stored under numbers in the batch's range (from the high-water mark on), current incarnation
    seqs: dict[int, str]


@dataclass(frozen=True)
class _Fresh:
    """The batch's events the server does not hold yet, in batch order."""

    #: their indexes in the batch, and the events
    at: list[int]
    events: list[WireEvent]
    #: those under a number the server holds another event of this journal under: id -> the other's id
    conflicts: dict[str, str]


@dataclass(frozen=True)
class _State:
    """What replay reads and changes (items, additions, loans), and the due-date check."""

    items: dict[str, ItemState]
    additions: _Additions
    ledger: LoanLedger
    due_check: DueCheck


def _ingest(conn: Connection, batch: Batch, prepared: _Prepared, received: datetime, timings: Timings,
            optimistic: bool) -> PushReply:
    """Take one batch in the write transaction ``conn``, phase by phase."""
    found = _kiosk_and_batch(conn, batch)
    work = _identify_journal(conn, batch, prepared, received, timings, found)
    if found["digest"] is not None:
        return _reply_again(work, found)
    stored = _read_stored(work, optimistic)
    fresh = _deduplicate(work, stored)
    timed, anchor = _retime(work, fresh)
    state = _load_state(work, fresh)
    rows = _replay(work, fresh, timed, state)
    _note_went_back(work, fresh)
    applied = _high_water_mark(work, stored)
    _persist(work, rows, state, anchor)
    reply = _reply(work, fresh, timed, len(rows), applied)
    _publish(work, state)
    return reply


# The statements every batch runs, built once: building a statement costs SQLAlchemy about as
# much CPU as executing it (~0.2 ms each on this machine), and a batch runs a handful.
_KIOSK_AND_BATCH = (
    select(db.kiosks, db.batches.c.digest, db.batches.c.reply)
    .select_from(db.kiosks.outerjoin(db.batches, (db.batches.c.kiosk_id == db.kiosks.c.kiosk_id)
                                     & (db.batches.c.batch_id == bindparam("batch_id"))))
    .where(db.kiosks.c.kiosk_id == bindparam("kiosk_id"))
)
_BOOT_ANCHORS = select(db.boot_anchors).where(db.boot_anchors.c.kiosk_id == bindparam("kiosk_id"),
                                              db.boot_anchors.c.boot_id.in_(bindparam("boots", expanding=True)))
_OPEN_REVIEWS = (select(func.count()).select_from(db.reviews)
                 .where(db.reviews.c.kiosk_id == bindparam("review_kiosk"), db.reviews.c.resolved_at.is_(None))
                 .scalar_subquery())
_STORE_BATCH = db.batches.insert()
#: the kiosk row's update (by the names of the columns it sets) with its open reviews returned
_TOUCH: dict[tuple[str, ...], Any] = {}


def _kiosk_and_batch(conn: Connection, batch: Batch) -> Any:
    """The kiosk's row, with the digest and reply of a batch stored before under this batch id (or None)."""
    found = conn.execute(_KIOSK_AND_BATCH, {"kiosk_id": batch.kiosk_id, "batch_id": batch.batch_id}).mappings().first()
    if found is None:
        raise Forbidden(f"no kiosk {batch.kiosk_id!r} on this server")
    return found


def _identify_journal(conn: Connection, batch: Batch, prepared: _Prepared, received: datetime, timings: Timings,
                      found: Any) -> _Work:
    """The journal incarnation the batch comes from: the kiosk switches to it when it is another."""
    kiosk: Any = found
    notice: JournalNotice | None = None
    reviews: list[dict[str, Any]] = []
    if batch.journal is not None and batch.journal.incarnation != kiosk["incarnation"]:
        kiosk, notice = _switch_journal(conn, dict(kiosk), batch, received, reviews)
    journal = _JournalOf(conn, batch.kiosk_id, kiosk["incarnation"], batch.journal)
    return _Work(conn, batch, prepared, received, timings, kiosk, journal, notice, reviews)


def _reply_again(work: _Work, found: Any) -> PushReply:
    """A batch id seen before: the reply stored for it, brought up to date (or a conflict if
    the id was used for other events)."""
    conn, batch, kiosk = work.conn, work.batch, work.kiosk
    if found["digest"] != work.prepared.digest:
        raise Conflict(f"batch id {batch.batch_id} was used before for other events")
    stored = _unpack_reply(found["reply"], batch)
    if work.reviews:
        conn.execute(db.reviews.insert(), work.reviews)
    stored.applied_seq, stored.needs_review = kiosk["applied_seq"], _touch(conn, batch, kiosk, work.received)
    stored.server_time, stored.replayed = work.received.isoformat(), True
    stored.applied_event_id = _event_at(conn, batch.kiosk_id, work.journal, stored.applied_seq, batch.to_seq)
    return stored


def _read_stored(work: _Work, optimistic: bool) -> _Stored:
    """Which of the batch's ids and numbers the server holds (``optimistic``: a batch numbered
    past everything the kiosk sent is not looked up id by id)."""
    conn, batch, kiosk = work.conn, work.batch, work.kiosk
    ids = [e.event_id for e in batch.events]
    known: dict[str, tuple[str, int]] = {}
    t = db.ids_table(conn).c  # (PostgreSQL: event_ids, not the partitioned events)
    for chunk in () if optimistic and batch.from_seq > kiosk["max_seq"] else _chunks(ids):
        for row in conn.execute(select(t.event_id, t.kiosk_id, t.seq).where(db.key_in(conn, t.event_id, chunk))):
            known[row.event_id] = (row.kiosk_id, row.seq)
    seqs: dict[int, str] = {}
    low = min(batch.from_seq, kiosk["applied_seq"] + 1)
    if low <= kiosk["max_seq"]:
        for stored in conn.execute(
            select(db.events.c.seq, db.events.c.event_id)
            .where(db.events.c.kiosk_id == batch.kiosk_id, db.events.c.seq >= low,
                   db.events.c.seq <= min(batch.to_seq, kiosk["max_seq"]), work.journal.stored_here())
        ):
            seqs.setdefault(stored.seq, stored.event_id)
    work.timings.lap("read")
    return _Stored(known, seqs)


def _deduplicate(work: _Work, stored: _Stored) -> _Fresh:
    """An event stored before is a duplicate; an id stored for another event is kept for
    review; the rest is fresh (noting those under a number the server has for another event)."""
    k = work.batch.kiosk_id
    at: list[int] = []
    conflicts: dict[str, str] = {}
    for index, event in enumerate(work.batch.events):
        stored_as = stored.known.get(event.event_id)
        if stored_as == (k, event.seq):
            work.results[event.event_id] = EventResult(event.event_id, event.seq, Outcome.DUPLICATE)
        elif stored_as is not None:
            work.results[event.event_id] = EventResult(event.event_id, event.seq, Outcome.NEEDS_REVIEW,
                                                       ReviewReason.EVENT_ID_CONFLICT)
            work.review(None, event.seq, ReviewReason.EVENT_ID_CONFLICT,
                        {"event": msgspec.to_builtins(event), "stored_as": list(stored_as)})
        else:
            if event.seq in stored.seqs:
                conflicts[event.event_id] = stored.seqs[event.seq]
            at.append(index)
    return _Fresh(at, [work.batch.events[i] for i in at], conflicts)


def _retime(work: _Work, fresh: _Fresh) -> tuple[list[Timing], Anchor | None]:
    """The fresh events' times on the server's clock (circulation.retiming), and the anchor this
    batch gives the kiosk's boot."""
    conn, batch, kiosk = work.conn, work.batch, work.kiosk
    boots = sorted({e.boot_id for e in fresh.events})
    anchors: dict[str, Anchor] = {}
    if boots:
        for row in conn.execute(_BOOT_ANCHORS, {"kiosk_id": batch.kiosk_id, "boots": boots}):
            anchors[row.boot_id] = Anchor(row.boot_id, row.monotonic_ns, row.server_time)
    push_anchor = _anchor_of(batch, work.received)
    if push_anchor is not None:
        anchors[push_anchor.boot_id] = push_anchor
    upper = work.received
    if batch.source != "push":
        # an imported file was written before it was imported: its wall clock bounds it when synced
        upper = push_anchor.time if push_anchor is not None else work.received
    in_order = bool(fresh.events) and fresh.events[0].seq > kiosk["max_seq"]
    timed = retime([work.prepared.stamps[i] for i in fresh.at], anchors=anchors, received=upper,
                   provisioned=kiosk["provisioned"], previous=kiosk["last_event_time"] if in_order else None,
                   known=kiosk["last_known_time"] if in_order else None)
    work.timings.lap("clock")
    return timed, push_anchor


def _load_state(work: _Work, fresh: _Fresh) -> _State:
    """The stored state the fresh events touch (an invalid payload's ids are never looked up:
    they may not fit the columns)."""
    valid = [(e, work.prepared.payload(i)) for i, e in zip(fresh.at, fresh.events, strict=True)
             if i not in work.prepared.invalid]
    item_ids = sorted({i for _e, p in valid if (i := item_of(p)) is not None})
    items = _load_items(work.conn, item_ids)
    additions = _Additions.load(work.conn, [p for e, p in valid if e.type in ADDITIONS])
    state = _State(items, additions, LoanLedger(), DueCheck(work.conn))
    work.timings.lap("read")
    return state


def _replay(work: _Work, fresh: _Fresh, timed: Sequence[Timing], state: _State) -> list[tuple]:
    """Each fresh event replayed in order: its result, its reviews and its row for db.events.

    An event under a number the server had for another event of this journal is a different
    event all the same (ids are unique): a journal that went back in time recorded it, and a
    child was told it is done. It is applied like any other."""
    rows: list[tuple] = []
    when = db.time_param(work.conn)
    at = when(work.received)
    batch, payloads, stamps, journal = work.batch, work.prepared.payloads, work.prepared.stamps, work.journal
    for index, event, timing in zip(fresh.at, fresh.events, timed, strict=True):
        done = _replay_one(work, index, event, timing, state)
        outcome = _result_of(event, done, timing, event.event_id in fresh.conflicts)
        if outcome.outcome is Outcome.NEEDS_REVIEW:
            work.review(event.event_id, event.seq, done.reason or "", {"type": event.type, **done.detail})
        elif event.type == EventType.CHECKED_OUT and _clock_was_wrong(stamps[index].wall, timing.time):
            _check_due(work, index, event, stamps[index].wall, timing.time, state.due_check)
        work.results[event.event_id] = outcome
        rows.append((  # in the order of db.events' columns
            event.event_id, batch.kiosk_id, event.seq, event.boot_id, event.monotonic_ns, event.wall_time,
            event.clock_synced, event.actor, event.type, payloads[index], at, when(timing.time),
            timing.quality.value, when(timing.lower), when(timing.upper), outcome.outcome.value, outcome.reason,
            _json.encode(outcome.warnings).decode() if outcome.warnings else None, batch.batch_id, batch.source,
            journal.recorded(event.seq),
        ))
    work.timings.lap("replay")
    return rows


def _replay_one(work: _Work, index: int, event: WireEvent, timing: Timing, state: _State) -> Replayed:
    """One event's replay (circulation.replay); an invalid payload is not replayed but kept for review."""
    problem = work.prepared.invalid.get(index)
    if problem is not None:
        # the field and the problem, never the value (it may be a child's name)
        log.warning("kiosk %s: event %d (%s) kept for review: %s is %s", work.batch.kiosk_id, event.seq, event.type,
                    problem.field, problem.problem)
        return Replayed(Outcome.NEEDS_REVIEW, ReviewReason.INVALID_PAYLOAD, detail=problem.detail(event.type))
    replayed = ReplayEvent(event.event_id, work.batch.kiosk_id, event.seq, event.type, work.prepared.payload(index),
                           timing.time)
    return state.additions.apply(replayed) if event.type in ADDITIONS else state.ledger.replay(replayed, state.items)


def _result_of(event: WireEvent, done: Replayed, timing: Timing, seq_reused: bool) -> EventResult:
    """The event's result for the kiosk: replay's, with the clock's and the journal's warnings."""
    warnings: list[str] = list(done.warnings)
    if timing.flags:
        warnings += [f.value for f in timing.flags]
    if seq_reused:
        warnings.append(Warning_.SEQ_REUSED)
    kind = done.outcome
    if kind is Outcome.APPLIED and warnings:
        kind = Outcome.APPLIED_WITH_WARNING
    return EventResult(event.event_id, event.seq, kind, done.reason, warnings)


def _clock_was_wrong(wall: datetime | None, corrected: datetime) -> bool:
    """The server moved the event further than drift (rules.WRONG_CLOCK): its due date is worth a look."""
    return wall is not None and abs(corrected - wall) >= WRONG_CLOCK


def _check_due(work: _Work, index: int, event: WireEvent, wall: datetime | None, corrected: datetime,
               due_check: DueCheck) -> None:
    """A checkout re-timed to another time: kept for review when the kiosk worked its due date
    out from a wrong clock (central.due_check)."""
    checkout = work.prepared.payload(index)
    wrong = due_check.review(checkout, wall, corrected) if isinstance(checkout, Checkout) else None
    if wrong is not None:
        work.review(event.event_id, event.seq, ReviewReason.DUE_FROM_WRONG_CLOCK, {"type": event.type, **wrong})


def _note_went_back(work: _Work, fresh: _Fresh) -> None:
    """Fresh events under numbers the server had for other events: the kiosk's journal went
    back in time; one review and a notice for the kiosk say how many."""
    if not fresh.conflicts:
        return
    reused = sorted(e.seq for e in fresh.events if e.event_id in fresh.conflicts)
    log.warning("kiosk %s: %d event(s) under numbers the server had for other events (%d to %d): its journal "
                "went back in time; applied as new events", work.batch.kiosk_id, len(reused), reused[0], reused[-1])
    work.review(None, reused[0], ReviewReason.JOURNAL_WENT_BACK,
                {"reused_numbers": len(reused), "from_seq": reused[0], "to_seq": reused[-1]})
    work.notice = work.notice or JournalNotice(kind="went_back")
    work.notice.reused_numbers = len(reused)


def _high_water_mark(work: _Work, stored: _Stored) -> int:
    """The kiosk's new high-water mark: a batch that starts where the server is moves it to its
    end; numbers in its range without an event were lost on the kiosk: recorded for review."""
    batch = work.batch
    applied = work.kiosk["applied_seq"]
    if batch.from_seq <= applied + 1 and batch.to_seq > applied:
        present = {e.seq for e in batch.events} | set(stored.seqs)
        for start, end in _missing(applied + 1, batch.to_seq, present):
            work.review(None, start, ReviewReason.EVENTS_MISSING, {"from_seq": start, "to_seq": end})
        applied = batch.to_seq
    elif batch.from_seq > applied + 1:
        log.info("kiosk %s pushed from %d but the server has only up to %d: it will be asked again",
                 batch.kiosk_id, batch.from_seq, applied)
    return applied


def _persist(work: _Work, rows: list[tuple], state: _State, anchor: Anchor | None) -> None:
    """Store the events, the reviews, the loans, and the anchor of the kiosk's boot."""
    conn = work.conn
    db.record_event_ids(conn, rows)  # first: an id the server has trips event_ids' key (PostgreSQL)
    db.bulk_insert(conn, db.events, rows)
    enqueue(conn, rows, work.received)  # the replay bridge's outbox, in this transaction (central.outbox)
    if work.reviews:
        conn.execute(db.reviews.insert(), work.reviews)
    state.ledger.store(conn)
    if anchor is not None and anchor.quality is TimeQuality.CORRECTED:
        upsert(conn, db.boot_anchors, ["kiosk_id", "boot_id"],
               [{"kiosk_id": work.batch.kiosk_id, "boot_id": anchor.boot_id, "monotonic_ns": anchor.monotonic_ns,
                 "server_time": anchor.time}])


def _publish(work: _Work, state: _State) -> None:
    """The changed items and additions, under one new revision: the last thing the batch does.
    Bumping the revision locks its one row until commit (batches side by side queue here,
    db.Store.ingesting), so revisions grow in commit order; last, so that the queue holds
    only these writes and the commit, not the whole batch."""
    changed = [s for s in state.items.values() if s.dirty]
    if state.additions.changed:
        rev = next_revision(work.conn)
        if changed:
            _store_items(work.conn, changed, rev)
        state.additions.store(work.conn, rev)
    elif changed:  # (the common case: the revision bumped in the same statement, sent with the commit)
        _store_items(work.conn, changed, None, commit=True)


def _kiosk_values(work: _Work, fresh: _Fresh, timed: Sequence[Timing], stored: int, applied: int) -> dict[str, Any]:
    """The kiosk row's new high-water mark, event count and, past its last number, times."""
    kiosk = work.kiosk
    values: dict[str, Any] = {"applied_seq": applied, "events": kiosk["events"] + stored}
    if fresh.events and fresh.events[-1].seq > kiosk["max_seq"]:
        values.update(max_seq=fresh.events[-1].seq, last_event_time=timed[-1].time)
        sure = last_known(timed)
        if sure is not None and (kiosk["last_known_time"] is None or sure > kiosk["last_known_time"]):
            values["last_known_time"] = sure
    return values


def _reply(work: _Work, fresh: _Fresh, timed: Sequence[Timing], stored: int, applied: int) -> PushReply:
    """Update the kiosk's row, and answer the batch (kept under its batch id for a retry)."""
    conn, batch = work.conn, work.batch
    needs_review = _touch(conn, batch, work.kiosk, work.received, _kiosk_values(work, fresh, timed, stored, applied))
    reply = PushReply(
        kiosk_id=batch.kiosk_id, batch_id=batch.batch_id, applied_seq=applied,
        results=[work.results[e.event_id] for e in batch.events], needs_review=needs_review,
        server_time=work.received.isoformat(), journal_notice=work.notice,
        applied_event_id=_event_at(conn, batch.kiosk_id, work.journal, applied, batch.to_seq),
    )
    conn.execute(_STORE_BATCH, {"kiosk_id": batch.kiosk_id, "batch_id": batch.batch_id,
                                "digest": work.prepared.digest, "reply": _pack_reply(reply),
                                "received_at": work.received})
    return reply


class _JournalOf:
    """Which stored events belong to the kiosk's current journal incarnation."""

    def __init__(self, conn: Connection, kiosk_id: str, current: str | None, sent: JournalIdentity | None) -> None:
        self.conn, self.kiosk_id, self.current, self.sent = conn, kiosk_id, current, sent

    def stored_here(self) -> Any:
        """A condition on db.events: stored under the current incarnation."""
        return _recorded_by(self.conn, self.kiosk_id, self.current)

    def recorded(self, seq: int) -> str | None:
        """The incarnation that recorded event ``seq`` of this batch."""
        if self.sent is None:
            return self.current
        return self.sent.incarnation if seq >= self.sent.since_seq else self.sent.previous


def _recorded_by(conn: Connection, kiosk_id: str, incarnation: str | None) -> ColumnElement[bool]:
    """A condition on db.events: recorded by ``incarnation`` of the kiosk's journal (None:
    before it named one). Events a kiosk pushed before it named its journal count as the
    journal it then named as ``upgraded``."""
    column = db.events.c.incarnation
    if incarnation is None:
        return column.is_(None)
    j = db.journals.c
    adopted = conn.execute(select(j.reason).where(j.kiosk_id == kiosk_id, j.incarnation == incarnation)).scalar()
    return or_(column == incarnation, column.is_(None)) if adopted == "upgraded" else column == incarnation


def _event_at(conn: Connection, kiosk_id: str, journal: _JournalOf, seq: int, to_seq: int) -> str | None:
    """The id of the one event stored under ``seq`` in the current incarnation, when ``seq``
    is past the batch (for a kiosk that lost its position to check it holds that event)."""
    if seq <= to_seq:
        return None
    ids = conn.execute(select(db.events.c.event_id).where(db.events.c.kiosk_id == kiosk_id, db.events.c.seq == seq,
                                                          journal.stored_here()).limit(2)).scalars().all()
    return ids[0] if len(ids) == 1 else None


_JOURNAL_STATE = ("applied_seq", "max_seq", "last_event_time", "last_known_time")
_NOTICE_REASONS = {"restored": ReviewReason.JOURNAL_RESTORED, "repaired": ReviewReason.JOURNAL_REPAIRED,
                   "went_back": ReviewReason.JOURNAL_WENT_BACK}


def _switch_journal(conn: Connection, kiosk: dict[str, Any], batch: Batch, received: datetime,
                    reviews: list[dict[str, Any]]) -> tuple[dict[str, Any], JournalNotice | None]:
    """The kiosk pushes from another journal incarnation than the one the server follows:
    keep the current one's high-water mark and times aside, take up (or begin) the other's.
    Nothing acknowledged for one incarnation is ever taken for the other. A new incarnation
    that went back in time (restored, repaired) is explained to the librarian: what the
    server holds from the journal it continues that this one no longer has."""
    k, sent = batch.kiosk_id, batch.journal
    assert sent is not None
    j = db.journals.c
    known = {row["incarnation"]: row for row in conn.execute(
        select(db.journals).where(j.kiosk_id == k, j.incarnation.in_([sent.incarnation, kiosk["incarnation"] or ""]))
    ).mappings()}
    state = {name: kiosk[name] for name in _JOURNAL_STATE}
    if kiosk["incarnation"] is None and sent.incarnation not in known and (
            sent.reason == "upgraded" or (kiosk["max_seq"] == 0 and kiosk["events"] == 0)):
        # the journal the kiosk always pushed from (or a first journal), now with a name
        conn.execute(db.journals.insert().values(
            kiosk_id=k, incarnation=sent.incarnation, since_seq=sent.since_seq, reason=sent.reason,
            previous=sent.previous, restored_from=sent.restored_from, first_seen=received, **state))
        conn.execute(update(db.kiosks).where(db.kiosks.c.kiosk_id == k).values(incarnation=sent.incarnation))
        log.info("kiosk %s names its journal %s (%s)", k, sent.incarnation, sent.reason)
        return {**kiosk, "incarnation": sent.incarnation}, None

    # put the current incarnation's state aside
    current = kiosk["incarnation"] or ""
    if current in known:
        conn.execute(update(db.journals).where(j.kiosk_id == k, j.incarnation == current).values(**state))
    else:
        conn.execute(db.journals.insert().values(
            kiosk_id=k, incarnation=current, since_seq=1, reason="upgraded" if current == "" else "new",
            first_seen=kiosk["provisioned"], **state))
    target = known.get(sent.incarnation)
    notice = None
    if target is not None:
        taken = {name: target[name] for name in _JOURNAL_STATE}
        log.warning("kiosk %s pushes from its earlier journal %s again (the current one was %s)", k,
                    sent.incarnation, current or "-")
    else:
        taken = {"applied_seq": batch.from_seq - 1, "max_seq": 0, "last_event_time": None, "last_known_time": None}
        conn.execute(db.journals.insert().values(
            kiosk_id=k, incarnation=sent.incarnation, since_seq=sent.since_seq, reason=sent.reason,
            previous=sent.previous, restored_from=sent.restored_from, first_seen=received, **taken))
        log.warning("kiosk %s: new journal incarnation %s (%s, own events from %d, continuing %s)", k,
                    sent.incarnation, sent.reason, sent.since_seq, sent.previous or "-")
        if sent.reason in _NOTICE_REASONS:
            notice = _not_here(conn, k, sent)
            reviews.append(_review_row(k, None, sent.since_seq, _NOTICE_REASONS[sent.reason], received, {
                "restored_from": sent.restored_from, "since_seq": sent.since_seq,
                "events_not_here": notice.events_not_here, "loans_not_here": notice.loans_not_here}))
    conn.execute(update(db.kiosks).where(db.kiosks.c.kiosk_id == k).values(incarnation=sent.incarnation, **taken))
    return {**kiosk, "incarnation": sent.incarnation, **taken}, notice


def _not_here(conn: Connection, kiosk_id: str, sent: JournalIdentity) -> JournalNotice:
    """What the journal ``sent`` continues had recorded from ``sent.since_seq`` on: events
    made after the backup (or lost by the repair) that the kiosk no longer holds."""
    e = db.events.c
    same = _recorded_by(conn, kiosk_id, sent.previous)
    counts: dict[str, int] = dict(conn.execute(
        select(e.type, func.count()).where(e.kiosk_id == kiosk_id, e.seq >= sent.since_seq, same).group_by(e.type)
    ).all())
    return JournalNotice(kind=sent.reason, events_not_here=sum(counts.values()),
                         loans_not_here=counts.get("loan.checked_out", 0))


def _pack_reply(reply: PushReply) -> bytes:
    """The reply kept for a retry of the batch: only the results that are not a plain
    "applied" (the batch's digest pins which events the rest were)."""
    unusual = [r for r in reply.results if r.outcome is not Outcome.APPLIED or r.reason or r.warnings]
    return msgspec.json.encode(PushReply(reply.kiosk_id, reply.batch_id, reply.applied_seq, unusual,
                                         reply.needs_review, reply.server_time, journal_notice=reply.journal_notice))


def _unpack_reply(packed: bytes, batch: Batch) -> PushReply:
    stored = msgspec.json.decode(packed, type=PushReply)
    unusual = {r.event_id: r for r in stored.results}
    stored.results = [unusual.get(e.event_id) or EventResult(e.event_id, e.seq, Outcome.APPLIED) for e in batch.events]
    return stored


def _anchor_of(batch: Batch, received: datetime) -> Anchor | None:
    clock = batch.clock
    if batch.source == "push":
        return Anchor(clock.boot_id, clock.monotonic_ns, received, TimeQuality.CORRECTED)
    wall = parse_wall(clock.wall_time)
    if clock.clock_synced and wall is not None:
        return Anchor(clock.boot_id, clock.monotonic_ns, min(wall, received), TimeQuality.SYNCED)
    return None


def _touch(conn: Connection, batch: Batch, kiosk: Any, received: datetime, values: dict[str, Any] | None = None) -> int:
    """Update the kiosk's row (last contact, its clock...); its open reviews, in the same round trip."""
    values = dict(values or {})
    if batch.source == "push":
        values["last_contact"] = received
        values["last_boot_id"] = batch.clock.boot_id
        wall = parse_wall(batch.clock.wall_time)
        if wall is not None:
            values["clock_offset_s"] = round((wall - received).total_seconds(), 3)
        if batch.waiting is not None:  # what it still holds once this batch is acknowledged
            applied = values.get("applied_seq", kiosk["applied_seq"])
            values["waiting_events"] = max(0, batch.from_seq - 1 + batch.waiting - applied)
            values["waiting_reported_at"] = received
    if not values:
        return _open_reviews(conn, batch.kiosk_id)
    names = tuple(values)
    statement = _TOUCH.get(names)
    if statement is None:
        statement = _TOUCH[names] = (update(db.kiosks).where(db.kiosks.c.kiosk_id == bindparam("touched_kiosk"))
                                     .values({name: bindparam(name) for name in names}).returning(_OPEN_REVIEWS))
    return conn.execute(statement, {**values, "touched_kiosk": batch.kiosk_id,
                                    "review_kiosk": batch.kiosk_id}).scalar_one()


def _review_row(kiosk_id: str, event_id: str | None, seq: int | None, reason: str, at: datetime,
                detail: dict[str, Any]) -> dict[str, Any]:
    return {"kiosk_id": kiosk_id, "event_id": event_id, "seq": seq, "reason": reason,
            "detail": _json.encode(detail).decode("utf-8"), "created_at": at}


class _Additions:
    """Cards enrolled and books registered at kiosks, joining the reference data."""

    def __init__(self, cards: dict[str, CardRecord | None], items: dict[str, ItemRecord | None],
                 patrons: set[str]) -> None:
        self.cards, self.items, self.patrons = cards, items, patrons
        self.changed_cards: dict[str, CardRecord] = {}
        self.changed_items: dict[str, ItemRecord] = {}

    @classmethod
    def load(cls, conn: Connection, fresh: Sequence[Payload]) -> _Additions:
        card_ids: set[str] = set()
        item_ids: set[str] = set()
        patron_ids: set[str] = set()
        for payload in fresh:
            cards, items = additions_of(payload)
            card_ids.update(cards)
            item_ids.update(items)
            if isinstance(payload, CardEnrolled):
                patron_ids.add(payload.patron_id)
        cards_found: dict[str, CardRecord | None] = dict.fromkeys(card_ids)
        items_found: dict[str, ItemRecord | None] = dict.fromkeys(item_ids)
        known_patrons: set[str] = set()
        if card_ids:
            for row in conn.execute(select(db.cards.c.card_id, db.cards.c.data)
                                    .where(db.key_in(conn, db.cards.c.card_id, sorted(card_ids)),
                                           db.cards.c.removed.is_(False))):
                cards_found[row.card_id] = msgspec.json.decode(row.data, type=CardRecord)
        if item_ids:
            for row in conn.execute(select(db.catalogue.c.item_id, db.catalogue.c.data)
                                    .where(db.key_in(conn, db.catalogue.c.item_id, sorted(item_ids)),
                                           db.catalogue.c.removed.is_(False))):
                items_found[row.item_id] = msgspec.json.decode(row.data, type=ItemRecord)
        if patron_ids:
            known_patrons = set(conn.execute(select(db.patrons.c.patron_id).where(
                db.key_in(conn, db.patrons.c.patron_id, sorted(patron_ids)), db.patrons.c.removed.is_(False))).scalars())
        return cls(cards_found, items_found, known_patrons)

    def apply(self, event: ReplayEvent) -> Replayed:
        if isinstance(event.payload, CardEnrolled):
            done, cards = enrol_card(event, self.cards, event.payload.patron_id in self.patrons)
            self.changed_cards.update((c.card_id, c) for c in cards)
            return done
        done, item = register_item(event, self.items)
        if item is not None:
            self.changed_items[item.item_id] = item
        return done

    @property
    def changed(self) -> bool:
        return bool(self.changed_cards or self.changed_items)

    def store(self, conn: Connection, rev: int) -> None:
        if self.changed_cards:
            upsert(conn, db.cards, ["card_id"], [
                {"card_id": c.card_id, "patron_id": c.patron_id, "data": _json.encode(c).decode(), "rev": rev,
                 "removed": False} for c in self.changed_cards.values()])
        if self.changed_items:
            upsert(conn, db.catalogue, ["item_id"], [
                {"item_id": i.item_id, "data": _json.encode(i).decode(), "rev": rev, "removed": False}
                for i in self.changed_items.values()])


def _load_items(conn: Connection, item_ids: Sequence[str]) -> dict[str, ItemState]:
    """The items' states: read through the driver, as many rows a batch touches."""
    items = {i: ItemState(i) for i in item_ids}
    when, day = db.time_result(conn), db.date_result(conn)
    for chunk in _chunks(item_ids):
        for (item_id, status, loan_id, patron_id, due, since, loan_kiosk, renewals, changed_time, changed_kiosk,
             changed_seq, _rev) in db.fetch_rows(conn, db.item_state, db.item_state.c.item_id, chunk):
            loan = None
            if loan_id is not None:
                loan = Loan(loan_id, item_id, patron_id, day(due), when(since), renewals, loan_kiosk)
            items[item_id] = ItemState(item_id, status, loan, when(changed_time), changed_kiosk, changed_seq)
    return items


def _store_items(conn: Connection, states: Sequence[ItemState], rev: int | None, *, commit: bool = False) -> None:
    """The items' states, under ``rev`` (None: a new revision, taken as they are stored).
    ``commit``: the transaction's last statement, sent with its COMMIT (``db.bulk_upsert``)."""
    when, day = db.time_param(conn), db.date_param(conn)
    rows: list[tuple] = []
    for s in states:  # in the order of db.item_state's columns
        loan = s.loan
        if loan is None:
            rows.append((s.item_id, s.status, None, None, None, None, None, 0, when(s.changed_time), s.changed_kiosk,
                         s.changed_seq, rev))
        else:
            rows.append((s.item_id, s.status, loan.loan_id, loan.patron_id, day(loan.due), when(loan.since),
                         loan.kiosk_id, loan.renewals, when(s.changed_time), s.changed_kiosk, s.changed_seq, rev))
    db.bulk_upsert(conn, db.item_state, ["item_id"], rows, new_revision="rev" if rev is None else None, commit=commit)


def upsert(conn: Connection, table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """Insert or replace rows by primary key, in the database's own dialect."""
    columns = tuple(c for c in rows[0] if c not in keys)
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(keys), columns), rows)


#: built once for each table and set of columns (every batch upserts its boot's anchor)
_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert_statement(dialect: str, table, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    found = _UPSERTS.get((dialect, table.name, keys, columns))
    if found is None:
        from sqlalchemy.dialects import postgresql, sqlite

        statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
        found = _UPSERTS[dialect, table.name, keys, columns] = statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: statement.excluded[c] for c in columns})
    return found



#: for the librarian's corrections (central.dashboard): the same reading and writing of item states
load_items, store_items = _load_items, _store_items
