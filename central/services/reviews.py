"""What the librarian checks at the desk, read from the central database: the end of the
day, the review queue (what Accept would do) and the audit log; the librarian's decisions
and corrections, written with an audit record in the same transaction. Also the helpers
the other services share: a school day's bounds in UTC, records by id, an audit record."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import msgspec
from sqlalchemy import func, select, update

from bookcorner.central import db
from bookcorner.central.db import json_object
from bookcorner.central.due_check import corrected_loan
from bookcorner.central.ingest import load_items, next_revision, store_items
from bookcorner.central.loans import LoanLedger
from bookcorner.central.outbox import enqueue_decided
from bookcorner.central.payloads import corrected_raw, raw, stored
from bookcorner.central.validate import Problem, fits, stored_decoded
from bookcorner.circulation.events import (
    EventType,
    Payload,
    UnknownPayload,
    item_id_of,
    loan_id_of,
    patron_id_of,
)
from bookcorner.circulation.model import ItemStatus
from bookcorner.circulation.outcomes import ReviewReason
from bookcorner.circulation.replay import CHANGES_ITEMS, ItemState, ReplayEvent, item_of
from bookcorner.circulation.retiming import TimeFlag
from bookcorner.protocol.messages import Outcome

LOANS, RETURNS = str(EventType.CHECKED_OUT), str(EventType.CHECKED_IN)
CIRCULATION = (LOANS, RETURNS)
DECISIONS = ("accept", "dismiss", "correct")
#: the days an address may name (``from``, ``to``, ``day``, ``since``): any a school means, and
#: none near the ends of the calendar, where a day's end (9999-12-31 + 1) or its time in UTC
#: (0001-01-01 east of Greenwich) is no date at all
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants a day of the school's ``zone`` starts and ends (an IANA zone: a day
    with a daylight-saving change is 23 or 25 hours long)."""
    start = datetime.combine(day, time(0), zone)
    return start.astimezone(db.UTC), (start + timedelta(days=1)).astimezone(db.UTC)


def period_bounds(start: date, end: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants from the start of day ``start`` to the end of day ``end`` (local)."""
    return day_bounds(start, zone)[0], day_bounds(end, zone)[1]


_CHUNK = 900  # ids per IN list


def records(conn, table, key, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Reference records (patrons, catalogue) by id, their JSON decoded; removed ones too
    (a register still names a student who has left)."""
    wanted, out = sorted(i for i in set(ids) if fits(i)), {}  # an id kept for review may fit no column
    for start in range(0, len(wanted), _CHUNK):
        for ident, data in conn.execute(select(key, table.c.data).where(key.in_(wanted[start:start + _CHUNK]))):
            out[ident] = json_object(data)
    return out


@dataclass
class Corner:
    kiosk_id: str
    name: str
    last_contact: datetime | None
    applied_seq: int
    max_seq: int
    events: int
    open_reviews: int
    last_batch_at: datetime | None
    last_batch_review: int | None
    all_in: bool
    problems: list[str] = field(default_factory=list)
    #: events the kiosk still held unacknowledged after its last push, as it reported them
    #: (None: it never said: an older kiosk), and when
    waiting_events: int | None = None
    waiting_reported_at: datetime | None = None


@dataclass
class Movement:
    time: datetime
    kind: str
    kiosk_id: str
    patron_id: str
    patron_name: str
    item_id: str
    title: str
    outcome: str
    #: why the server could not vouch for its time (circulation.retiming's flags), none when it could
    time_flags: tuple[str, ...] = ()


TIME_FLAGS = frozenset(f.value for f in TimeFlag)


def _time_flags(warnings: str | None) -> tuple[str, ...]:
    try:
        found = json.loads(warnings) if warnings else []
    except ValueError:
        return ()
    return tuple(w for w in found if w in TIME_FLAGS) if isinstance(found, list) else ()


def _names(conn, table, key, ids: set[str], attribute: str) -> dict[str, str]:
    return {k: str(record.get(attribute) or "") for k, record in records(conn, table, key, ids).items()}


def end_of_day(store: db.Store, day: date, zone: tzinfo) -> tuple[list[Corner], list[Movement]]:
    start, end = day_bounds(day, zone)
    k, r, b, e = db.kiosks.c, db.reviews.c, db.batches.c, db.events.c
    with store.reading() as conn:
        open_reviews: dict[str, int] = dict(conn.execute(select(r.kiosk_id, func.count()).where(r.resolved_at.is_(None))
                                         .group_by(r.kiosk_id)).all())
        corners = []
        for row in conn.execute(select(db.kiosks).order_by(k.kiosk_id)).all():
            last = conn.execute(select(b.received_at, b.reply).where(b.kiosk_id == row.kiosk_id)
                                .order_by(b.received_at.desc()).limit(1)).first()
            needs = None
            if last is not None:
                try:
                    needs = int(msgspec.json.decode(last.reply).get("needs_review", 0))
                except (msgspec.DecodeError, AttributeError, ValueError):
                    needs = None
            problems = []
            if row.last_contact is None or row.last_contact < start:
                problems.append("no_contact_today")
            if row.max_seq > row.applied_seq:
                problems.append("sequence_gap")
            if row.waiting_events:
                problems.append("events_waiting")
            corners.append(Corner(row.kiosk_id, row.name, row.last_contact, row.applied_seq, row.max_seq, row.events,
                                  open_reviews.get(row.kiosk_id, 0), last.received_at if last else None, needs,
                                  not problems, problems, row.waiting_events, row.waiting_reported_at))
        rows = conn.execute(select(e.time, e.type, e.kiosk_id, e.payload, e.outcome, e.warnings)
                            .where(e.time >= start, e.time < end, e.type.in_(CIRCULATION))
                            .order_by(e.time, e.kiosk_id, e.seq).limit(2000)).all()
        payloads = [stored(x.type, x.payload) for x in rows]
        borrowers = _borrowers(conn, [(x.time, x.type, p) for x, p in zip(rows, payloads, strict=True)])
        patrons = _names(conn, db.patrons, db.patrons.c.patron_id, set(borrowers) - {""}, "name")
        titles = _names(conn, db.catalogue, db.catalogue.c.item_id,
                        {i for p in payloads if (i := item_id_of(p))}, "title")
    movements = []
    for x, p, patron in zip(rows, payloads, borrowers, strict=True):
        item = item_id_of(p) or ""
        movements.append(Movement(x.time, x.type, x.kiosk_id, patron, patrons.get(patron, ""), item,
                                  titles.get(item, ""), x.outcome, _time_flags(x.warnings)))
    return corners, movements


def _borrowers(conn, movements: list[tuple[datetime, str, Payload]]) -> list[str]:
    """Whose book each loan or return was. A return often names only the book (and maybe
    the loan it closed): the student is the loan's, found in ``loans``, else in the
    checkout event that opened it (a loan's id is its checkout's event id), else in the
    book's latest loan before the return (``loans``, or a checkout earlier in the list).
    A loan the retention period anonymised stays without a name."""
    found = [patron_id_of(p) or "" for _t, _k, p in movements]
    loan_ids = {loan for (_t, kind, p), who in zip(movements, found, strict=True)
                if kind == RETURNS and not who and (loan := loan_id_of(p)) and fits(loan)}
    by_loan = _patrons_by_loan(conn, loan_ids)
    unnamed = {item for (_t, kind, p), who in zip(movements, found, strict=True)
               if kind == RETURNS and not who and (item := item_id_of(p)) and by_loan.get(loan_id_of(p) or "") is None}
    lent = _loans_of_items(conn, unnamed)
    _name_returns(movements, found, by_loan, lent, unnamed)
    return found


def _patrons_by_loan(conn, loan_ids: set[str]) -> dict[str, str]:
    """The student of each loan, from ``loans`` ("": anonymised, and stays so), else from
    the checkout that opened it."""
    by_loan: dict[str, str] = {}
    if not loan_ids:
        return by_loan
    kept, e = db.loans.c, db.events.c
    by_loan.update((k, v or "") for k, v in conn.execute(select(kept.loan_id, kept.patron_id).where(
        kept.loan_id.in_(sorted(loan_ids)))).all())
    rest = sorted(loan_ids - set(by_loan))
    if rest:
        for event_id, payload in conn.execute(select(e.event_id, e.payload).where(
                db.event_id_in(conn, rest), e.type == LOANS)).all():
            if patron := patron_id_of(stored(LOANS, payload)):
                by_loan[event_id] = patron
    return by_loan


def _loans_of_items(conn, items: set[str]) -> dict[str, list[tuple[datetime, str]]]:
    """Every kept loan of these books: when it began, and to whom."""
    lent: dict[str, list[tuple[datetime, str]]] = {}
    if items:
        kept = db.loans.c
        for item_id, out_at, patron_id in conn.execute(select(kept.item_id, kept.out_at, kept.patron_id).where(
                kept.item_id.in_(sorted(i for i in items if fits(i))))).all():
            lent.setdefault(item_id, []).append((out_at, patron_id or ""))
    return lent


def _name_returns(movements: list[tuple[datetime, str, Payload]], found: list[str], by_loan: dict[str, str],
                  lent: dict[str, list[tuple[datetime, str]]], unnamed: set[str]) -> None:
    """Fills in ``found`` the student of each return that named none: its loan's, else the
    book's latest loan before it (the checkouts in the list count too)."""
    for index, (when, kind, p) in enumerate(movements):
        item = item_id_of(p) or ""
        if kind == LOANS and found[index] and item in unnamed:
            lent.setdefault(item, []).append((when, found[index]))
        if kind != RETURNS or found[index]:
            continue
        loan = loan_id_of(p)
        if loan and loan in by_loan:
            found[index] = by_loan[loan]
        elif item in lent:
            earlier = [loan for loan in lent[item] if loan[0] <= when]
            found[index] = max(earlier)[1] if earlier else ""


@dataclass
class ReviewItem:
    review_id: int
    kiosk_id: str
    seq: int | None
    reason: str
    created_at: datetime
    detail: dict[str, Any]
    event: dict[str, Any] | None
    item: dict[str, Any] | None
    title: str
    patron_name: str
    resolution: dict[str, Any] | None = None
    resolved_at: datetime | None = None
    #: what Accept would do now (waiting items only), and the names of the students it names
    accept: AcceptEffect | None = None
    people: dict[str, str] = field(default_factory=dict)
    #: the titles of the books the case names (item id -> title)
    titles: dict[str, str] = field(default_factory=dict)


#: review reasons whose Accept applies the event to the book now, as if it were the newest
#: news about it (the librarian confirms it happened); every other reason (conflicts, lost
#: or damaged journal records, incomplete or unknown events, cards and books the server
#: knows otherwise) is acknowledged only: Accept records the decision and changes nothing
APPLIED_ON_ACCEPT = frozenset({ReviewReason.NOT_ON_LOAN, ReviewReason.OLDER_THAN_ITEM_CHANGE})


@dataclass(frozen=True)
class AcceptEffect:
    """What Accept does, worked out from the book as it is now: shown on the review card
    before the click and done by the click (refused if the book changed in between).
    ``changes``: ("close_loan", patron), ("open_loan", patron), ("due", day), ("status", s);
    when empty, ``unchanged`` says why (a code)."""

    changes: tuple[tuple[str, str], ...] = ()
    unchanged: str = "record_only"

    @property
    def signature(self) -> str:
        return "|".join(f"{code}={value}" for code, value in self.changes) or self.unchanged


class BookChanged(Exception):
    """What Accept would do is no longer what the librarian was shown."""


def plan_accept(conn, reason: str, event: Any, detail: dict[str, Any] | None = None,
                ) -> tuple[AcceptEffect, ItemState | None, LoanLedger | None]:
    """Accept's effect on the event's book (``event``: its row in ``events``, or None), with
    the book's new state and the loans changed, to store when it is done (None: nothing to).
    ``detail``: the review's (a due date from a wrong clock: Accept gives its corrected date)."""
    if reason == ReviewReason.DUE_FROM_WRONG_CLOCK:
        return _plan_due(conn, event, detail or {})
    target, payload = _accepted(reason, event)
    if target is None or payload is None:
        return AcceptEffect(), None, None
    state = load_items(conn, [target])[target]
    before, status = state.loan, state.status
    was = (before.loan_id, before.due, before.patron_id) if before is not None else None
    ledger, reason_left = _replay_as_newest(state, event, payload, target)
    changes = _loan_changes(was, state, status)
    if not changes:
        return AcceptEffect(unchanged=reason_left or "no_change"), None, None
    return AcceptEffect(tuple(changes)), state, ledger


def _accepted(reason: str, event: Any) -> tuple[str | None, Payload | None]:
    """The book an accepted event changes, and the event's payload (None: Accept only records)."""
    if reason not in APPLIED_ON_ACCEPT or event is None or event.type not in CHANGES_ITEMS:
        return None, None
    payload = stored_decoded(event.type, raw(event.payload))
    target = None if isinstance(payload, Problem) else item_of(payload)
    if target is None or isinstance(payload, Problem):
        return None, None
    return target, payload


def _replay_as_newest(state: ItemState, event: Any, payload: Payload, target: str,
                      ) -> tuple[LoanLedger, str | None]:
    """Replays the event on the book as if it were the newest news about it; the loans it
    changed, and the review reason replay still gives (if any)."""
    changed = (state.changed_time, state.changed_kiosk, state.changed_seq)
    state.changed_time = None  # as if it were the newest news about the book
    ledger = LoanLedger()
    done = ledger.replay(ReplayEvent(event.event_id, event.kiosk_id, event.seq, event.type, payload, event.time),
                         {target: state})
    if done.outcome is Outcome.NEEDS_REVIEW:
        state.changed_time = changed[0]
        if event.type == RETURNS and done.reason == ReviewReason.NOT_ON_LOAN and state.status == "lost":
            state.status, state.dirty = ItemStatus.AVAILABLE, True  # a book reported lost was brought back
    elif changed[0] is not None and changed[0] >= event.time:
        state.changed_time, state.changed_kiosk, state.changed_seq = changed  # its latest change stays the latest
    return ledger, done.reason


def _loan_changes(was: tuple[Any, Any, Any] | None, state: ItemState, status: str | None) -> list[tuple[str, str]]:
    """What replaying changed of the book: its loan (``was`` before: id, due, student), its status."""
    after, changes = state.loan, []
    if was is not None and (after is None or after.loan_id != was[0]):
        changes.append(("close_loan", was[2]))
    if after is not None and (was is None or after.loan_id != was[0]):
        changes += [("open_loan", after.patron_id), ("due", after.due.isoformat())]
    elif after is not None and was is not None and after.due != was[1]:
        changes.append(("due", after.due.isoformat()))
    if after is None and state.status != status:
        changes.append(("status", state.status or "available"))
    return changes


def _plan_due(conn, event: Any, detail: dict[str, Any]) -> tuple[AcceptEffect, ItemState | None, LoanLedger | None]:
    """Accepting the due date the rules give at the checkout's corrected time (the loan kept
    the one the child was told); nothing when the loan was returned or moved since."""
    item_id = detail.get("item_id")
    if event is None or not isinstance(item_id, str) or not fits(item_id):
        return AcceptEffect(), None, None
    state = load_items(conn, [item_id])[item_id]
    moved = corrected_loan(detail, event.event_id, state)
    if moved is None:
        loan = state.loan
        done = loan is not None and loan.loan_id == event.event_id and loan.due.isoformat() == detail.get("due_corrected")
        return AcceptEffect(unchanged="no_change" if done else "loan_changed"), None, None
    return AcceptEffect((("due", moved[0].isoformat()),)), state, moved[1]


PAGE_SIZE = 50


def waiting_count(store: db.Store) -> int:
    """How many reviews wait for a decision."""
    with store.reading() as conn:
        return conn.execute(select(func.count()).select_from(db.reviews)
                            .where(db.reviews.c.resolved_at.is_(None))).scalar_one()


def corner_names(store: db.Store) -> dict[str, str]:
    """Every corner's name by kiosk id (a school has a few dozen)."""
    with store.reading() as conn:
        return dict(conn.execute(select(db.kiosks.c.kiosk_id, db.kiosks.c.name)).all())


def reviews(store: db.Store, *, resolved: bool = False, limit: int = PAGE_SIZE, offset: int = 0) -> list[ReviewItem]:
    r = db.reviews.c
    query = select(db.reviews).where(r.resolved_at.is_not(None) if resolved else r.resolved_at.is_(None))
    query = query.order_by(r.resolved_at.desc() if resolved else r.review_id).limit(limit).offset(offset)
    with store.reading() as conn:
        rows = conn.execute(query).all()
        events, stored = _review_events(conn, rows)
        effects = {} if resolved else {
            x.review_id: plan_accept(conn, x.reason, stored.get(x.event_id), json_object(x.detail))[0] for x in rows}
        item_ids, patron_ids = _named_ids(rows, events, effects)
        states = _item_states(conn, item_ids, patron_ids)
        titles = _titles_and_shelved(conn, item_ids, states)
        names = _names(conn, db.patrons, db.patrons.c.patron_id, patron_ids, "name")
    return [_review_item(x, events.get(x.event_id), states, titles, names, effects) for x in rows]


def _review_events(conn, rows: Sequence[Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The events the reviews name, as the review card shows them and as stored."""
    event_ids = [x.event_id for x in rows if x.event_id]
    events, rows_by_id = {}, {}
    if event_ids:
        for ev in conn.execute(select(db.events).where(db.event_id_in(conn, event_ids))):
            rows_by_id[ev.event_id] = ev
            events[ev.event_id] = {"type": ev.type, "actor": ev.actor, "wall_time": ev.wall_time,
                                   "time": ev.time, "payload": stored(ev.type, ev.payload), "outcome": ev.outcome}
    return events, rows_by_id


def _named_ids(rows: Sequence[Any], events: dict[str, dict[str, Any]],
               effects: dict[int, AcceptEffect]) -> tuple[set[str], set[str]]:
    """The books and the students the reviews (their details, events, resolutions and
    what Accept would do) name."""
    item_ids: set[str] = set()
    patron_ids: set[str] = set()
    for x in rows:
        event = events.get(x.event_id)
        if event is not None:
            if (item := item_id_of(event["payload"])) is not None:
                item_ids.add(item)
            if (patron := patron_id_of(event["payload"])) is not None:
                patron_ids.add(patron)
        for source in (json_object(x.detail), json_object(x.resolution)):
            if isinstance(source.get("item_id"), str):
                item_ids.add(source["item_id"])
            patron_ids.update(source[key] for key in ("patron_id", "on_loan_to", "held_by")
                              if isinstance(source.get(key), str))
    patron_ids.update(who for effect in effects.values() for code, who in effect.changes
                      if code in ("close_loan", "open_loan"))
    return item_ids, patron_ids


def _item_states(conn, item_ids: set[str], patron_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The books' states now; their borrowers join ``patron_ids``."""
    states = {}
    if item_ids:
        for st in conn.execute(select(db.item_state).where(db.item_state.c.item_id.in_(
                sorted(i for i in item_ids if fits(i))))):
            states[st.item_id] = {"status": st.status, "patron_id": st.patron_id, "due": st.due,
                                  "since": st.since, "loan_kiosk": st.loan_kiosk}
            if st.patron_id:
                patron_ids.add(st.patron_id)
    return states


def _titles_and_shelved(conn, item_ids: set[str], states: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The books' titles; a book that never circulated joins ``states`` as the catalogue has it."""
    catalogue = records(conn, db.catalogue, db.catalogue.c.item_id, item_ids)
    for item_id, record in catalogue.items():
        if item_id not in states:
            status = record.get("status")
            states[item_id] = {"status": None if status == "available" else status, "patron_id": None,
                               "due": None, "since": None, "loan_kiosk": None}
    return {k: str(v.get("title") or "") for k, v in catalogue.items()}


def _review_item(x: Any, event: dict[str, Any] | None, states: dict[str, dict[str, Any]], titles: dict[str, str],
                 names: dict[str, str], effects: dict[int, AcceptEffect]) -> ReviewItem:
    detail = json_object(x.detail)
    payload = event["payload"] if event is not None else UnknownPayload({})
    named = detail.get("item_id") or item_id_of(payload)
    item_id = named if isinstance(named, str) else None
    patron_id = patron_id_of(payload)
    return ReviewItem(x.review_id, x.kiosk_id, x.seq, x.reason, x.created_at, detail, event,
                      states.get(item_id) if item_id is not None else None,
                      titles.get(item_id, "") if item_id is not None else "",
                      names.get(patron_id, "") if patron_id is not None else "",
                      json_object(x.resolution) if x.resolution else None, x.resolved_at,
                      effects.get(x.review_id), names, titles)


class AlreadyDecided(Exception):
    pass


def _open_review(conn, review_id: int):
    """The review still waiting for a decision (AlreadyDecided when it is not)."""
    review = conn.execute(select(db.reviews).where(db.reviews.c.review_id == review_id,
                                                   db.reviews.c.resolved_at.is_(None))).first()
    if review is None:
        raise AlreadyDecided(review_id)
    return review


def _event_of(conn, review):
    """The stored event a review is about (None: the review names none, e.g. lost events)."""
    if not review.event_id:
        return None
    return conn.execute(select(db.events).where(db.event_id_in(conn, [review.event_id]))).first()


def decide(store: db.Store, review_id: int, decision: str, note: str, who: str, expected: str = "") -> None:
    """Take a review item out of the queue with the librarian's decision, recorded twice:
    on the review itself and in the audit log, in the transaction that makes Accept's
    change to the loans (``plan_accept``). ``expected``: the signature of the effect the
    librarian was shown; when the book changed since, nothing is done (BookChanged)."""
    if decision not in ("accept", "dismiss"):
        raise ValueError(decision)
    at = db.now()
    with store.writing() as conn:
        review = _open_review(conn, review_id)
        decided: dict[str, Any] = {"decision": decision, "note": note, "by": who, "at": at.isoformat()}
        if decision == "accept":
            event = _event_of(conn, review)
            effect, state, ledger = plan_accept(conn, review.reason, event, json_object(review.detail))
            if expected and expected != effect.signature:
                raise BookChanged(review_id)
            if state is not None and ledger is not None:
                store_items(conn, [state], next_revision(conn))
                ledger.store(conn)
                _bridge(conn, event, at)
            decided["effect"] = [list(change) for change in effect.changes]
        resolution = json.dumps(decided, ensure_ascii=False)
        conn.execute(update(db.reviews).where(db.reviews.c.review_id == review_id)
                     .values(resolved_at=at, resolution=resolution))
        conn.execute(db.audit_log.insert().values(at=at, who=who, action=f"review.{decision}",
                                                  target=f"review:{review_id}", detail=resolution))


def _bridge(conn, event: Any, at: datetime) -> None:
    """An accepted event that changed its book, in the replay bridge's outbox as ingest
    would have put it (``central.outbox.enqueue_decided``)."""
    if event is None:
        return
    payload = stored_decoded(event.type, raw(event.payload))
    if not isinstance(payload, Problem):
        enqueue_decided(conn, event, payload, at)


class DoesNotFit(Exception):
    """A correction that cannot apply: the reason code (the item stays in the queue)."""


def correct(store: db.Store, review_id: int, who: str, note: str, *, item_id: str = "", patron_id: str = "") -> None:
    """Replay the event of a review item with the patron or item the librarian names (the
    kiosk scanned the wrong copy, a card was misread): when it now applies cleanly, the
    loans change, the item leaves the queue, and the correction is recorded; when it does
    not fit (unknown book or student, still not on loan...), nothing changes."""
    if not item_id and not patron_id:
        raise DoesNotFit("nothing_corrected")
    if item_id and not fits(item_id):  # no book has it (and PostgreSQL could not look it up)
        raise DoesNotFit("unknown_item")
    if patron_id and not fits(patron_id):
        raise DoesNotFit("unknown_patron")
    at = db.now()
    with store.writing() as conn:
        review = _open_review(conn, review_id)
        event = _event_of(conn, review)
        if event is None or event.type not in CHANGES_ITEMS:
            raise DoesNotFit("not_correctable")
        if item_id:
            known = conn.execute(select(db.catalogue.c.item_id).where(db.catalogue.c.item_id == item_id,
                                                                      db.catalogue.c.removed.is_(False))).first()
            if known is None:
                raise DoesNotFit("unknown_item")
        if patron_id:
            known = conn.execute(select(db.patrons.c.patron_id).where(db.patrons.c.patron_id == patron_id,
                                                                      db.patrons.c.removed.is_(False))).first()
            if known is None:
                raise DoesNotFit("unknown_patron")
        payload = stored_decoded(event.type, corrected_raw(event.payload, item_id, patron_id))
        if isinstance(payload, Problem):  # what the kiosk recorded fits no column (or its type) still
            raise DoesNotFit(ReviewReason.INVALID_PAYLOAD)
        target = item_of(payload)
        if target is None:
            raise DoesNotFit("not_correctable")
        items = load_items(conn, [target])
        ledger = LoanLedger()
        result = ledger.replay(ReplayEvent(event.event_id, event.kiosk_id, event.seq, event.type, payload, event.time),
                               items)
        if result.outcome is Outcome.NEEDS_REVIEW:
            raise DoesNotFit(result.reason or "needs_review")
        store_items(conn, [items[target]], next_revision(conn))
        ledger.store(conn)
        enqueue_decided(conn, event, payload, at)  # the school's library system gets it too (central.outbox)
        resolution = json.dumps({"decision": "correct", "note": note, "by": who, "at": at.isoformat(),
                                 "item_id": item_id or None, "patron_id": patron_id or None,
                                 "outcome": str(result.outcome), "warnings": list(result.warnings)},
                                ensure_ascii=False)
        conn.execute(update(db.reviews).where(db.reviews.c.review_id == review_id)
                     .values(resolved_at=at, resolution=resolution))
        conn.execute(db.audit_log.insert().values(at=at, who=who, action="review.correct",
                                                  target=f"review:{review_id}", detail=resolution))


def audit(store: db.Store, limit: int = 100) -> Sequence[Any]:
    with store.reading() as conn:
        return conn.execute(select(db.audit_log).order_by(db.audit_log.c.audit_id.desc()).limit(limit)).all()


def record(store: db.Store, who: str, action: str, target: str, detail: dict[str, Any]) -> None:
    with store.writing() as conn:
        conn.execute(db.audit_log.insert().values(at=db.now(), who=who, action=action, target=target,
                                                  detail=json.dumps(detail, ensure_ascii=False)))


SEARCH_LIMIT = 20


@dataclass(frozen=True)
class BookChoice:
    item_id: str
    title: str
    author: str
    barcode: str


def find_items(store: db.Store, query: str) -> list[BookChoice]:
    """Books in the catalogue (not withdrawn from it) whose id or barcode is ``query``, or
    whose title, author or barcode holds it: the choices for a correction."""
    query = query.strip()[:80]
    if not query:
        return []
    wanted, c = query.casefold(), db.catalogue.c
    with store.reading() as conn:
        rows = conn.execute(select(c.item_id, c.data).where(c.removed.is_(False), (c.item_id == query)
                                                            | c.data.icontains(query, autoescape=True))
                            .order_by(c.item_id).limit(SEARCH_LIMIT * 4)).all()
    found = []
    for item_id, data in rows:
        record = json_object(data)
        texts = {k: str(record.get(k) or "") for k in ("title", "author", "barcode")}
        if item_id == query or texts["barcode"] == query or any(wanted in t.casefold() for t in texts.values()):
            found.append(BookChoice(item_id, texts["title"], texts["author"], texts["barcode"]))
    return found[:SEARCH_LIMIT]


@dataclass(frozen=True)
class AuditNames:
    """What an audit page names: titles, people, corners, and each decided case's reason
    and corner (by review id)."""

    titles: dict[str, str]
    people: dict[str, str]
    corners: dict[str, str]
    reviews: dict[int, tuple[str, str]]


def audit_names(store: db.Store, rows: Sequence[Any]) -> AuditNames:
    item_ids: set[str] = set()
    patron_ids: set[str] = set()
    review_ids: set[int] = set()
    for row in rows:
        detail = json_object(row.detail)
        for key, into in (("item_id", item_ids), ("patron_id", patron_ids)):
            if isinstance(detail.get(key), str):
                into.add(detail[key])
        if row.target.startswith("review:") and row.target[7:].isdigit():
            review_ids.add(int(row.target[7:]))
        if row.action == "registers.withdraw":
            item_ids.add(row.target)
    with store.reading() as conn:
        found: dict[int, tuple[str, str]] = {}
        wanted = sorted(i for i in review_ids if i < 2 ** 31)
        for start in range(0, len(wanted), _CHUNK):
            r = db.reviews.c
            found.update((x.review_id, (x.reason, x.kiosk_id)) for x in conn.execute(
                select(r.review_id, r.reason, r.kiosk_id).where(r.review_id.in_(wanted[start:start + _CHUNK]))))
        titles = _names(conn, db.catalogue, db.catalogue.c.item_id, item_ids, "title")
        people = _names(conn, db.patrons, db.patrons.c.patron_id, patron_ids, "name")
        corners = dict(conn.execute(select(db.kiosks.c.kiosk_id, db.kiosks.c.name)).all())
    return AuditNames(titles, people, corners, found)


def card_holder(store: db.Store, card_id: str) -> str | None:
    """Whose card ``card_id`` is (None: no such card in use)."""
    card_id = card_id.strip()
    if not card_id or not fits(card_id):
        return None
    with store.reading() as conn:
        return conn.execute(select(db.cards.c.patron_id).where(db.cards.c.card_id == card_id,
                                                               db.cards.c.removed.is_(False))).scalar()
