"""Privacy: the retention period after which closed loans stop naming the borrower, and
the (opt-in, longer) period after which the circulation log itself stops naming the child.

A service: the dashboard's privacy page sets the periods and applies them at once,
``bookcorner central anonymise`` applies them from the command line, and
``RetentionKeeper`` applies them on a schedule from the server's lifespan
(``central.app``). Functions take the store and "now" as arguments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.central.ingest import upsert
from bookcorner.central.jobs import PeriodicJob
from bookcorner.central.payloads import ANONYMISED_MARK, anonymised, stored
from bookcorner.circulation.events import loan_id_of
from bookcorner.circulation.rules import ANONYMOUS
from bookcorner.i18n import _

log = logging.getLogger(__name__)

RETENTION_KEY = "registers.retention_days"
DEFAULT_RETENTION_DAYS = 365
MAX_RETENTION_DAYS = 36500
#: how often the server applies the retention period (and once at start-up)
RETENTION_EVERY_S = 6 * 3600
#: loans anonymised per write transaction (kiosk pushes wait for the write lock meanwhile)
ANONYMISE_BATCH = 500
EVENTS_RETENTION_KEY = "registers.events_retention_days"
#: the circulation log is the evidence behind the review queue and the exports: never shorter
MIN_EVENTS_RETENTION_DAYS = 90
ANONYMISED_ACTOR = "anonymised"


def retention_days(conn: Connection) -> int:
    """Days after its return that a loan still names its borrower (0: for ever)."""
    text = conn.execute(select(db.meta.c.value).where(db.meta.c.key == RETENTION_KEY)).scalar()
    try:
        days = int(json.loads(text)) if text else DEFAULT_RETENTION_DAYS
    except (ValueError, TypeError):
        return DEFAULT_RETENTION_DAYS
    return min(max(days, 0), MAX_RETENTION_DAYS)


def set_retention(store: db.Store, days: int, who: str, at: datetime) -> None:
    with store.writing() as conn:
        before = retention_days(conn)
        upsert(conn, db.meta, ["key"], [{"key": RETENTION_KEY, "value": json.dumps(days)}])
        conn.execute(db.audit_log.insert().values(at=at, who=who, action="registers.retention", target=RETENTION_KEY,
                                                  detail=json.dumps({"days": days, "before": before})))


def anonymise(store: db.Store, now: datetime, who: str = "bookcorner", batch: int = ANONYMISE_BATCH,
              stopping: Callable[[], bool] = lambda: False) -> int:
    """Closed loans returned longer ago than the retention period stop naming the borrower
    (their class stays, so class totals stay right). In batches of short write
    transactions, until done or ``stopping()``; the audit entry goes with the last one.
    Returns how many changed."""
    total = 0
    while True:
        with store.writing() as conn:
            days = retention_days(conn)
            if days == 0:
                return 0
            cutoff = now - timedelta(days=days)
            lo = db.loans.c
            chosen = conn.execute(select(lo.loan_id, lo.out_at).where(
                lo.returned_at.is_not(None), lo.returned_at < cutoff, lo.anonymised_at.is_(None)).limit(batch)).all()
            ids = [row.loan_id for row in chosen]
            if conn.dialect.name == "postgresql":  # (loans partitioned by out_at: each looked for in its own term's
                # partition; by loan_id alone PostgreSQL searches every term's, holding the write lock meanwhile)
                db.bulk_update_located(conn, db.loans, "loan_id", "out_at", ["patron_id", "anonymised_at"],
                                       [(row.loan_id, None, now, row.out_at) for row in chosen])
            elif ids:
                conn.execute(update(db.loans).where(lo.loan_id.in_(ids)).values(patron_id=None, anonymised_at=now))
            total += len(ids)
            if len(ids) < batch or stopping():
                if total:
                    conn.execute(db.audit_log.insert().values(
                        at=now, who=who, action="registers.anonymise", target="loans",
                        detail=json.dumps({"loans": total, "returned_before": cutoff.isoformat(),
                                           "retention_days": days})))
                return total


@dataclass
class Retention:
    days: int
    cutoff: datetime | None
    kept: int
    due_now: int
    anonymised: int


def retention(store: db.Store, now: datetime) -> Retention:
    lo = db.loans.c
    with store.reading() as conn:
        days = retention_days(conn)
        cutoff = now - timedelta(days=days) if days else None

        def count(*where) -> int:
            return conn.execute(select(func.count()).select_from(db.loans).where(*where)).scalar_one()

        closed = (lo.returned_at.is_not(None), lo.anonymised_at.is_(None))
        return Retention(days, cutoff, count(*closed),
                         count(*closed, lo.returned_at < cutoff) if cutoff else 0, count(lo.anonymised_at.is_not(None)))


def events_retention_days(conn: Connection) -> int:
    """Days an event of the circulation log keeps the child's id, card and name as actor
    (0, the default: for ever)."""
    text = conn.execute(select(db.meta.c.value).where(db.meta.c.key == EVENTS_RETENTION_KEY)).scalar()
    try:
        days = int(json.loads(text)) if text else 0
    except (ValueError, TypeError):
        return 0
    return min(max(days, 0), MAX_RETENTION_DAYS)


def events_retention_refusal(days: int, loan_days: int) -> str | None:
    """Why the circulation log's period cannot be ``days`` while loans keep names for
    ``loan_days`` (None: it can). The log never forgets before the loans do."""
    if days == 0:
        return None
    if days > MAX_RETENTION_DAYS:
        return _("The circulation log's period is a number of days from 0 to {most}.").format(most=MAX_RETENTION_DAYS)
    if days < MIN_EVENTS_RETENTION_DAYS:
        return _("The circulation log's period is at least {least} days (or 0: keep names).").format(
            least=MIN_EVENTS_RETENTION_DAYS)
    if loan_days == 0:
        return _("Loans keep their borrower's name for ever (retention period 0): set a retention period for "
                 "loans first.")
    if days < loan_days:
        return _("The circulation log's period cannot be shorter than the loans' retention period ({days} "
                 "days).").format(days=loan_days)
    return None


def set_events_retention(store: db.Store, days: int, who: str, at: datetime) -> str | None:
    """Save the circulation log's period (audited), or say why not (checked against the
    loans' period in the same transaction)."""
    with store.writing() as conn:
        refusal = events_retention_refusal(days, retention_days(conn))
        if refusal is not None:
            return refusal
        before = events_retention_days(conn)
        upsert(conn, db.meta, ["key"], [{"key": EVENTS_RETENTION_KEY, "value": json.dumps(days)}])
        conn.execute(db.audit_log.insert().values(
            at=at, who=who, action="registers.events_retention", target=EVENTS_RETENTION_KEY,
            detail=json.dumps({"days": days, "before": before})))
    return None


def _must_keep(conn: Connection, rows: Sequence[Any], loans: list[str | None]) -> set[str]:
    """The events among ``rows`` that must keep their names: a loan still open (its
    checkout, whose id is the loan's, or an event naming it as its loan: ``loans``) and an
    event a review still waits on."""
    loan_ids = sorted({row.event_id for row in rows} | {loan for loan in loans if loan})
    s, lo, r = db.item_state.c, db.loans.c, db.reviews.c
    open_loans = set(conn.execute(select(s.loan_id).where(db.key_in(conn, s.loan_id, loan_ids))).scalars())
    open_loans.update(conn.execute(select(lo.loan_id).where(db.key_in(conn, lo.loan_id, loan_ids),
                                                            lo.returned_at.is_(None))).scalars())
    reviewed = set(conn.execute(select(r.event_id).where(db.key_in(conn, r.event_id, [row.event_id for row in rows]),
                                                         r.resolved_at.is_(None))).scalars())
    return {row.event_id for row, loan in zip(rows, loans, strict=True)
            if row.event_id in open_loans or str(loan) in open_loans or row.event_id in reviewed}


def _anonymised(row) -> tuple[str, str, str]:
    """(event_id, payload, actor) with the child's id and card gone; a kiosk's own acts
    (no card shown) keep their actor."""
    actor = row.actor if row.actor in (ANONYMOUS, row.kiosk_id) else ANONYMISED_ACTOR
    return row.event_id, anonymised(row.payload), actor


def anonymise_events(store: db.Store, now: datetime, who: str = "bookcorner", batch: int = ANONYMISE_BATCH,
                     stopping: Callable[[], bool] = lambda: False) -> int:
    """Events of the circulation log older than its period stop naming the child: the
    payload's student and card become null (``"anonymised": true`` added, every other
    field kept) and a student actor becomes "anonymised". Events of a loan still open or
    with an open review are left as they are (picked up by a later run once closed).
    In (time, event_id) order from a cursor: each batch is chosen in a read transaction
    (anonymised events filtered out by their mark) and written in a short write
    transaction that checks again; the audit entry goes with the last one. Returns how
    many changed."""
    with store.reading() as conn:
        days, loan_days = events_retention_days(conn), retention_days(conn)
    if days == 0 or loan_days == 0:  # (a loans' period set to 0 later than this one: names are kept)
        return 0
    cutoff = now - timedelta(days=max(days, loan_days))
    e = db.events.c
    total, after = 0, None
    while True:
        query = select(e.event_id, e.time).where(e.time < cutoff, e.payload.not_like(f"%{ANONYMISED_MARK}%"))
        if after is not None:
            query = query.where(e.time >= after[0], or_(e.time > after[0], e.event_id > after[1]))  # (an index range)
        with store.reading() as conn:
            chosen = conn.execute(query.order_by(e.time, e.event_id).limit(batch)).all()
        if chosen:
            after = (chosen[-1].time, chosen[-1].event_id)
            with store.writing() as conn:  # again under the write lock: another run, a review, a loan may have moved
                rows = conn.execute(select(e.event_id, e.kiosk_id, e.type, e.actor, e.payload, e.received_at).where(
                    db.event_id_in(conn, [row.event_id for row in chosen]),
                    e.payload.not_like(f"%{ANONYMISED_MARK}%"))).all()
                loans = [loan_id_of(stored(row.type, row.payload)) for row in rows]
                kept = _must_keep(conn, rows, loans) if rows else set()
                changed = [row for row in rows if row.event_id not in kept]
                if conn.dialect.name == "postgresql":  # (events partitioned by received_at: each in its partition)
                    when = db.time_param(conn)
                    db.bulk_update_located(conn, db.events, "event_id", "received_at", ["payload", "actor"],
                                           [(*_anonymised(row), when(row.received_at)) for row in changed])
                else:
                    db.bulk_update(conn, db.events, "event_id", ["payload", "actor"], [_anonymised(r) for r in changed])
                total += len(changed)
        if len(chosen) < batch or stopping():
            if total:
                with store.writing() as conn:
                    conn.execute(db.audit_log.insert().values(
                        at=now, who=who, action="registers.anonymise_events", target="events",
                        detail=json.dumps({"events": total, "before": cutoff.isoformat(), "retention_days": days})))
            return total


@dataclass
class EventsRetention:
    days: int
    cutoff: datetime | None


def events_retention(store: db.Store, now: datetime) -> EventsRetention:
    with store.reading() as conn:
        days = events_retention_days(conn)
    return EventsRetention(days, now - timedelta(days=days) if days else None)


class RetentionKeeper(PeriodicJob):
    """Applies the retention period at start-up and every ``every`` seconds after, on a
    daemon thread of its own (stopped with the server, within one batch's time)."""

    name = "bookcorner-retention"
    stop_timeout_s = 10.0

    def __init__(self, store: db.Store, every: float = RETENTION_EVERY_S,
                 clock: Callable[[], datetime] = db.now,
                 after: Callable[[datetime], object] | None = None) -> None:
        super().__init__(every)
        self.store, self.clock = store, clock
        #: what else runs each time, once the retention period is applied (the co-reading
        #: counts, recomputed without the loans it anonymised)
        self.after = after

    def round(self) -> float:
        changed = anonymise(self.store, self.clock(), "bookcorner (retention period)", stopping=self.stopping)
        if changed:
            log.info("retention period: %d closed loans anonymised", changed)
        if not self.stopping():
            changed = anonymise_events(self.store, self.clock(), "bookcorner (retention period)",
                                       stopping=self.stopping)
            if changed:
                log.info("circulation log's period: %d events anonymised", changed)
        if self.after is not None and not self.stopping():
            self.after(self.clock())
        return self.every
