"""The paper registers the dashboard replaces (../shared/DOMAIN.md): overdue chase slips
(催还单) per class, the repair register (form E), the withdrawal register (form F, 注销),
the student-librarian work record (form G), the stock-take checklist (查书/清点), the
retention period after which closed loans stop naming the borrower, and the (opt-in, longer)
one after which the circulation log itself stops naming the child.

Each register is a page (printable) and the same table as CSV and XLSX (``tables``).
Reading functions take the period and "now" as arguments; the routes only ask and show.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

import msgspec
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection

from bookcorner import i18n
from bookcorner.central import db
from bookcorner.central.dashboard import auth, queries
from bookcorner.central.dashboard.queries import day_bounds, json_object, period_bounds, records
from bookcorner.central.dashboard.site import Site
from bookcorner.central.dashboard.tables import FORMATS, ReportTable
from bookcorner.central.ingest import next_revision, upsert
from bookcorner.circulation.events import EventType
from bookcorner.circulation.model import ItemStatus, Role
from bookcorner.circulation.rules import ANONYMOUS
from bookcorner.i18n import _
from bookcorner.protocol.messages import ItemRecord

log = logging.getLogger(__name__)

#: the registers with a page and downloads, in the order the index lists them
REGISTERS = ("overdue", "repairs", "withdrawals", "librarians", "stock-take")
PAGES = ("/registers", "/registers/privacy",
         *(f"/registers/{name}{suffix}" for name in REGISTERS for suffix in ("", ".csv", ".xlsx")))
FORMS = ("/registers/withdrawals", "/registers/privacy", "/registers/privacy/events")

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
#: what an anonymised event's payload carries (compact JSON, as ingest stores payloads), to skip it
ANONYMISED_MARK = '"anonymised":true'
ANONYMISED_ACTOR = "anonymised"
WITHDRAW_ACTION = "registers.withdraw"
APPLIED = ("applied", "applied_with_warning")
#: what a student librarian does as the actor of an event, for the work record
_WORK = (str(EventType.RETURNED), str(EventType.ITEM_DAMAGED), str(EventType.ITEM_LOST),
         str(EventType.ITEM_FOUND), str(EventType.ITEM_REPAIRED))


def _who(patrons: dict[str, dict[str, Any]], patron_id: str | None) -> str:
    if not patron_id:
        return ""
    name = patrons.get(patron_id, {}).get("name")
    return f"{name} ({patron_id})" if name else patron_id


# --- overdue chase slips (催还单) ------------------------------------------------------------------


@dataclass
class OverdueBook:
    item_id: str
    title: str
    due: date
    days: int
    kiosk_id: str


@dataclass
class Slip:
    """One student's overdue books: one slip to take home."""

    class_name: str
    patron_id: str
    name: str
    books: list[OverdueBook] = field(default_factory=list)


def overdue(store: db.Store, today: date) -> dict[str, list[Slip]]:
    """Every book on loan past its due date, as slips per student, grouped by class
    (students without a class, e.g. teachers, under "")."""
    s = db.item_state.c
    with store.reading() as conn:
        rows = conn.execute(select(s.item_id, s.patron_id, s.due, s.loan_kiosk)
                            .where(s.loan_id.is_not(None), s.due < today)).all()
        patrons = records(conn, db.patrons, db.patrons.c.patron_id, {r.patron_id for r in rows if r.patron_id})
        items = records(conn, db.catalogue, db.catalogue.c.item_id, {r.item_id for r in rows})
    slips: dict[str, Slip] = {}
    for row in rows:
        patron = patrons.get(row.patron_id, {})
        slip = slips.get(row.patron_id)
        if slip is None:
            slip = slips[row.patron_id] = Slip(str(patron.get("class_name") or ""), row.patron_id,
                                               str(patron.get("name") or row.patron_id))
        slip.books.append(OverdueBook(row.item_id, str(items.get(row.item_id, {}).get("title") or row.item_id),
                                      row.due, (today - row.due).days, row.loan_kiosk or ""))
    by_class: dict[str, list[Slip]] = defaultdict(list)
    for slip in sorted(slips.values(), key=lambda x: (x.class_name, x.name, x.patron_id)):
        slip.books.sort(key=lambda b: (b.due, b.title))
        by_class[slip.class_name].append(slip)
    return dict(sorted(by_class.items(), key=lambda kv: (kv[0] == "", kv[0])))


def school_name(store: db.Store) -> str:
    """The school's name as the librarian loaded it (heads each slip), or ""."""
    with store.reading() as conn:
        text = conn.execute(select(db.settings.c.data).where(db.settings.c.name == "school")).scalar()
    name = msgspec.json.decode(text) if text else ""
    return name if isinstance(name, str) else ""


def overdue_table(by_class: dict[str, list[Slip]]) -> ReportTable:
    return ReportTable(_("Overdue books"), [_("Class"), _("Student"), _("Student id"), _("Title"), _("Book id"),
                                             _("Due"), _("Days overdue"), _("Kiosk")],
                       [(s.class_name, s.name, s.patron_id, b.title, b.item_id, b.due, b.days, b.kiosk_id)
                        for slips in by_class.values() for s in slips for b in s.books])


# --- repair register (form E) -------------------------------------------------------------------


@dataclass
class Repair:
    reported: datetime
    item_id: str
    title: str
    reported_by: str
    kiosk_id: str
    note: str
    back: datetime | None


def repairs(store: db.Store, start: date, end: date, zone: tzinfo) -> list[Repair]:
    """Books reported damaged in the period, each with the first repair recorded after it
    (None: still in repair)."""
    first, last = period_bounds(start, end, zone)
    e = db.events.c
    with store.reading() as conn:
        damaged = conn.execute(select(e.time, e.actor, e.kiosk_id, e.payload)
                               .where(e.type == str(EventType.ITEM_DAMAGED), e.time >= first, e.time < last,
                                      e.outcome.in_(APPLIED)).order_by(e.time, e.kiosk_id, e.seq)).all()
        repaired = conn.execute(select(e.time, e.payload)
                                .where(e.type == str(EventType.ITEM_REPAIRED), e.time >= first,
                                       e.outcome.in_(APPLIED)).order_by(e.time)).all() if damaged else []
        payloads = [json_object(row.payload) for row in damaged]
        patrons = records(conn, db.patrons, db.patrons.c.patron_id,
                           {str(p.get("handled_by") or row.actor) for row, p in zip(damaged, payloads, strict=True)})
        items = records(conn, db.catalogue, db.catalogue.c.item_id, {str(p.get("item_id")) for p in payloads})
    back_times: dict[str, list[datetime]] = defaultdict(list)
    for repair in repaired:
        back_times[str(json_object(repair.payload).get("item_id"))].append(repair.time)
    out = []
    for row, p in zip(damaged, payloads, strict=True):
        item_id = str(p.get("item_id") or "")
        back = next((t for t in back_times.get(item_id, ()) if t >= row.time), None)
        out.append(Repair(row.time.astimezone(zone), item_id, str(items.get(item_id, {}).get("title") or item_id),
                          _who(patrons, str(p.get("handled_by") or row.actor)), row.kiosk_id, str(p.get("note") or ""),
                          back.astimezone(zone) if back else None))
    return out


def repairs_table(rows: list[Repair]) -> ReportTable:
    return ReportTable(_("Repair register"), [_("Reported"), _("Book id"), _("Title"), _("Reported by"), _("Kiosk"),
                                              _("Note"), _("Back from repair")],
                       [(r.reported, r.item_id, r.title, r.reported_by, r.kiosk_id, r.note,
                         r.back if r.back else _("still in repair")) for r in rows])


# --- withdrawal register (form F, 注销) -------------------------------------------------------------


class WithdrawRefused(Exception):
    """Why a book cannot be withdrawn (a code: unknown_item, already_withdrawn, on_loan)."""


def withdraw(store: db.Store, item_id: str, reason: str, who: str, at: datetime) -> None:
    """Take a book out of stock: its catalogue record says "withdrawn" under a new revision
    (so every kiosk learns it at its next pull), with the reason in the audit log, in one
    transaction. A book on loan must come back (or be reported lost) first."""
    with store.writing() as conn:
        row = conn.execute(select(db.catalogue.c.data).where(db.catalogue.c.item_id == item_id,
                                                             db.catalogue.c.removed.is_(False))).first()
        if row is None:
            raise WithdrawRefused("unknown_item")
        record = msgspec.json.decode(row.data, type=ItemRecord)
        state = conn.execute(select(db.item_state.c.status, db.item_state.c.loan_id)
                             .where(db.item_state.c.item_id == item_id)).first()
        if record.status == ItemStatus.WITHDRAWN or (state is not None and state.status == ItemStatus.WITHDRAWN):
            raise WithdrawRefused("already_withdrawn")
        if state is not None and state.loan_id is not None:
            raise WithdrawRefused("on_loan")
        was = (state.status if state is not None and state.status else None) or record.status
        record.status = str(ItemStatus.WITHDRAWN)
        rev = next_revision(conn)
        conn.execute(update(db.catalogue).where(db.catalogue.c.item_id == item_id)
                     .values(data=msgspec.json.encode(record).decode("utf-8"), rev=rev))
        if state is not None:  # the librarian's word on the status overrides replay's (as a catalogue load does)
            conn.execute(update(db.item_state).where(db.item_state.c.item_id == item_id).values(status=None, rev=rev))
        conn.execute(db.audit_log.insert().values(
            at=at, who=who, action=WITHDRAW_ACTION, target=item_id,
            detail=json.dumps({"reason": reason, "title": record.title, "was": was,
                               "call_number": record.call_number}, ensure_ascii=False)))


@dataclass
class Withdrawal:
    #: None: marked withdrawn in a catalogue the librarian loaded (no date known)
    at: datetime | None
    item_id: str
    title: str
    call_number: str
    reason: str
    who: str


def withdrawals(store: db.Store, start: date, end: date, zone: tzinfo) -> list[Withdrawal]:
    """Books withdrawn from the dashboard in the period (from the audit log), then books the
    loaded catalogue says are withdrawn with no withdrawal recorded here."""
    first, last = period_bounds(start, end, zone)
    a = db.audit_log.c
    with store.reading() as conn:
        done = conn.execute(select(a.at, a.who, a.target, a.detail).where(a.action == WITHDRAW_ACTION, a.at >= first,
                                                                          a.at < last).order_by(a.at)).all()
        recorded = set(conn.execute(select(a.target).where(a.action == WITHDRAW_ACTION)).scalars())
        marked = conn.execute(select(db.catalogue.c.item_id, db.catalogue.c.data)
                              .where(db.catalogue.c.removed.is_(False),
                                     db.catalogue.c.data.contains('"status":"withdrawn"'))).all()
        items = records(conn, db.catalogue, db.catalogue.c.item_id, {row.target for row in done})
    out = []
    for row in done:
        detail, item = json_object(row.detail), items.get(row.target, {})
        out.append(Withdrawal(row.at.astimezone(zone), row.target, str(item.get("title") or detail.get("title") or ""),
                              str(item.get("call_number") or ""), str(detail.get("reason") or ""), row.who))
    for mark in sorted(marked, key=lambda r: r.item_id):
        item = json_object(mark.data)
        if mark.item_id not in recorded and item.get("status") == ItemStatus.WITHDRAWN:
            out.append(Withdrawal(None, mark.item_id, str(item.get("title") or ""), str(item.get("call_number") or ""),
                                  "", ""))
    return out


def withdrawals_table(rows: list[Withdrawal]) -> ReportTable:
    return ReportTable(_("Withdrawal register"), [_("Withdrawn"), _("Book id"), _("Title"), _("Call number"),
                                                  _("Reason"), _("By")],
                       [(w.at if w.at else _("in the loaded catalogue"), w.item_id, w.title, w.call_number, w.reason,
                         w.who) for w in rows])


# --- student-librarian work record (form G) ---------------------------------------------------------


@dataclass
class Work:
    patron_id: str
    name: str
    class_name: str
    returns: int = 0
    damaged: int = 0
    other_reports: int = 0
    days: set[date] = field(default_factory=set)


def librarians_work(store: db.Store, start: date, end: date, zone: tzinfo) -> list[Work]:
    """What each student librarian did in the period, as the kiosks recorded them as the
    actor: returns taken for other students, damaged books reported, other reports (lost,
    found, repaired) and the days they worked (a slot a day at most)."""
    first, last = period_bounds(start, end, zone)
    e = db.events.c
    with store.reading() as conn:
        candidates = conn.execute(select(db.patrons.c.patron_id, db.patrons.c.data)
                                  .where(db.patrons.c.removed.is_(False),
                                         db.patrons.c.data.contains(f'"role":"{Role.STUDENT_LIBRARIAN}"'))).all()
        team: dict[str, Work] = {}
        for patron_id, data in candidates:
            patron = json_object(data)
            if patron.get("role") == Role.STUDENT_LIBRARIAN:
                team[patron_id] = Work(patron_id, str(patron.get("name") or patron_id),
                                       str(patron.get("class_name") or ""))
        rows = conn.execute(select(e.time, e.type, e.actor, e.payload)
                            .where(e.type.in_(_WORK), e.time >= first, e.time < last, e.outcome != "duplicate",
                                   db.key_in(conn, e.actor, sorted(team)))).all() if team else []
    for row in rows:
        payload = json_object(row.payload)
        work = team[row.actor]
        if row.type == EventType.RETURNED:
            if payload.get("patron_id") == row.actor:
                continue  # their own book: borrowing, not work
            work.returns += 1
        elif row.type == EventType.ITEM_DAMAGED:
            work.damaged += 1
        else:
            work.other_reports += 1
        work.days.add(row.time.astimezone(zone).date())
    return sorted(team.values(), key=lambda w: (w.class_name, w.name, w.patron_id))


def librarians_table(rows: list[Work]) -> ReportTable:
    return ReportTable(_("Student librarians' work record"), [
        _("Class"), _("Student librarian"), _("Student id"), _("Returns handled"), _("Damaged books reported"),
        _("Other reports (lost, found, repaired)"), _("Days on duty")],
        [(w.class_name, w.name, w.patron_id, w.returns, w.damaged, w.other_reports, len(w.days)) for w in rows])


# --- stock-take (查书/清点) --------------------------------------------------------------------------


@dataclass
class Unseen:
    shelf: str
    call_number: str
    title: str
    item_id: str
    barcode: str
    #: "shelf" | "on_loan" | "in_repair" | "lost": where the book should be
    where: str
    due: date | None
    last_seen: date | None


def stock_take(store: db.Store, since: date, zone: tzinfo) -> list[Unseen]:
    """Books no event has touched since ``since`` (or never), withdrawn ones left out,
    in shelf and call-number order: what to look for on the shelves."""
    first = day_bounds(since, zone)[0]
    c, s = db.catalogue.c, db.item_state.c
    with store.reading() as conn:
        rows = conn.execute(select(c.item_id, c.data, s.status, s.loan_id, s.due, s.changed_time)
                            .select_from(db.catalogue.outerjoin(db.item_state, s.item_id == c.item_id))
                            .where(c.removed.is_(False), or_(s.changed_time.is_(None), s.changed_time < first))).all()
    out = []
    for row in rows:
        item = json_object(row.data)
        status = row.status or item.get("status") or ItemStatus.AVAILABLE
        if status == ItemStatus.WITHDRAWN:
            continue
        where = "on_loan" if row.loan_id else status if status in (ItemStatus.IN_REPAIR, ItemStatus.LOST) else "shelf"
        out.append(Unseen(str(item.get("home_corner") or ""), str(item.get("call_number") or ""),
                          str(item.get("title") or row.item_id), row.item_id, str(item.get("barcode") or ""), where,
                          row.due if row.loan_id else None,
                          row.changed_time.astimezone(zone).date() if row.changed_time else None))
    out.sort(key=lambda u: (u.shelf == "", u.shelf, u.call_number == "", u.call_number, u.title, u.item_id))
    return out


def where_text(unseen: Unseen) -> str:
    return {"shelf": _("on the shelf"), "in_repair": _("in repair"), "lost": _("reported lost")}.get(
        unseen.where) or _("on loan, due {due}").format(due=unseen.due)


def stock_take_table(rows: list[Unseen]) -> ReportTable:
    return ReportTable(_("Stock-take"), [_("Shelf"), _("Call number"), _("Title"), _("Book id"), _("Barcode"),
                                         _("Should be"), _("Last seen")],
                       [(u.shelf, u.call_number, u.title, u.item_id, u.barcode, where_text(u),
                         u.last_seen if u.last_seen else _("never")) for u in rows])


# --- privacy: the retention period -----------------------------------------------------------------


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
            ids = conn.execute(select(lo.loan_id).where(lo.returned_at.is_not(None), lo.returned_at < cutoff,
                                                        lo.anonymised_at.is_(None)).limit(batch)).scalars().all()
            if ids:
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


def _held(conn: Connection, rows: Sequence[Any], payloads: list[dict[str, Any]]) -> set[str]:
    """The events among ``rows`` that must keep their names: a loan still open (its
    checkout, whose id is the loan's, or an event naming it as its loan) and an event
    a review still waits on."""
    loan_ids = sorted({row.event_id for row in rows} | {str(p["loan_id"]) for p in payloads if p.get("loan_id")})
    s, lo, r = db.item_state.c, db.loans.c, db.reviews.c
    open_loans = set(conn.execute(select(s.loan_id).where(db.key_in(conn, s.loan_id, loan_ids))).scalars())
    open_loans.update(conn.execute(select(lo.loan_id).where(db.key_in(conn, lo.loan_id, loan_ids),
                                                            lo.returned_at.is_(None))).scalars())
    reviewed = set(conn.execute(select(r.event_id).where(db.key_in(conn, r.event_id, [row.event_id for row in rows]),
                                                         r.resolved_at.is_(None))).scalars())
    return {row.event_id for row, p in zip(rows, payloads, strict=True)
            if row.event_id in open_loans or str(p.get("loan_id")) in open_loans or row.event_id in reviewed}


def _anonymised(row, payload: dict[str, Any]) -> tuple[str, str, str]:
    """(event_id, payload, actor) with the child's id and card gone; a kiosk's own acts
    (no card shown) keep their actor."""
    payload = {**payload, "patron_id": None, "card_id": None, "anonymised": True}
    actor = row.actor if row.actor in (ANONYMOUS, row.kiosk_id) else ANONYMISED_ACTOR
    return row.event_id, json.dumps(payload, ensure_ascii=False, separators=(",", ":")), actor


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
                rows = conn.execute(select(e.event_id, e.kiosk_id, e.actor, e.payload).where(
                    db.key_in(conn, e.event_id, [row.event_id for row in chosen]),
                    e.payload.not_like(f"%{ANONYMISED_MARK}%"))).all()
                payloads = [json_object(row.payload) for row in rows]
                held = _held(conn, rows, payloads) if rows else set()
                changed = [_anonymised(row, p) for row, p in zip(rows, payloads, strict=True) if row.event_id not in held]
                db.bulk_update(conn, db.events, "event_id", ["payload", "actor"], changed)
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


class RetentionKeeper:
    """Applies the retention period at start-up and every ``every`` seconds after, on a
    daemon thread of its own (stopped with the server)."""

    def __init__(self, store: db.Store, every: float = RETENTION_EVERY_S,
                 clock: Callable[[], datetime] = db.now) -> None:
        self.store, self.every, self.clock = store, every, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bookcorner-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread (within one batch's time)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                changed = anonymise(self.store, self.clock(), "bookcorner (retention period)",
                                    stopping=self._stop.is_set)
                if changed:
                    log.info("retention period: %d closed loans anonymised", changed)
                if not self._stop.is_set():
                    changed = anonymise_events(self.store, self.clock(), "bookcorner (retention period)",
                                               stopping=self._stop.is_set)
                    if changed:
                        log.info("circulation log's period: %d events anonymised", changed)
            except Exception:  # busy, unreachable, not migrated yet: try again next time
                log.exception("applying the retention period failed")
            if self._stop.wait(self.every):
                return


# --- the pages --------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _refusal_text(code: str) -> str:
    return {"unknown_item": _("No book with that id in the catalogue."),
            "already_withdrawn": _("That book is already withdrawn."),
            "on_loan": _("That book is on loan: it must come back (or be reported lost) first."),
            "no_reason": _("Withdrawing a book needs a reason.")}.get(code, code)


def _bilingual(message: str) -> str:
    zh, en = i18n.bilingual(message)
    return zh if zh == en else f"{zh} / {en}"


def mount(site: Site) -> None:
    site.globals.update(register_cell=_cell, where_text=where_text, bilingual=_bilingual)
    keeper, served = RetentionKeeper(site.store), site.app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        """The server's own start-up and shutdown, with the retention keeper around them."""
        keeper.start()
        try:
            async with served(app) as state:
                yield state
        finally:
            keeper.stop()

    site.app.router.lifespan_context = lifespan

    def chosen_period(request: Request) -> tuple[date, date] | None:
        today = site.today()  # a month up to today, unless asked otherwise
        return site.period(request, (today - timedelta(days=29), today))

    def since_day(request: Request) -> date | None:
        return site.day(request, "since", site.today() - timedelta(days=90))

    async def gather(request: Request, name: str) -> dict[str, Any] | Response:
        """The register's values for its page, with ``table`` (its download) and ``file`` (a name)."""
        if name == "overdue":
            today = site.today()
            by_class = await site.run(overdue, site.store, today)
            return {"by_class": by_class, "today": today, "table": overdue_table(by_class), "file": today.isoformat(),
                    "school_name": await site.run(school_name, site.store)}
        if name == "stock-take":
            since = since_day(request)
            if since is None:
                return site.refused(request, 422, error=_("Choose a valid date."))
            rows = await site.run(stock_take, site.store, since, site.zone)
            shelves: dict[str, list[Unseen]] = defaultdict(list)
            for row in rows:
                shelves[row.shelf].append(row)
            return {"since": since, "shelves": shelves, "count": len(rows), "table": stock_take_table(rows),
                    "file": f"since-{since}"}
        period = chosen_period(request)
        if period is None:
            return site.refused(request, 422, error=_("Choose a valid period (from, to)."))
        start, end = period
        registers: dict[str, tuple[Callable[..., Any], Callable[[Any], ReportTable]]] = {
            "repairs": (repairs, repairs_table), "withdrawals": (withdrawals, withdrawals_table),
            "librarians": (librarians_work, librarians_table)}
        read, build = registers[name]
        rows = await site.run(read, site.store, start, end, site.zone)
        return {"start": start, "end": end, "table": build(rows), "file": f"{start}-{end}"}

    def show(request: Request, name: str, who, values: dict[str, Any], status: int = 200, **extra: Any) -> Response:
        template = {"overdue": "registers_overdue.html", "stock-take": "registers_stock_take.html"}.get(
            name, "registers_table.html")
        return site.page(request, template, status, who=who, register=name, query=request.url.query,
                         **values, **extra)

    def add_register(name: str) -> None:
        @site.page_route(f"/registers/{name}")
        async def register_page(request: Request, who: auth.Session) -> Response:
            values = await gather(request, name)
            if isinstance(values, Response):
                return values
            return show(request, name, who, values, done=request.query_params.get("done"))

        for form in FORMATS:
            add_download(name, form)

    def add_download(name: str, form: str) -> None:
        @site.page_route(f"/registers/{name}.{form}")
        async def register_download(request: Request, who: auth.Session) -> Response:
            values = await gather(request, name)
            if isinstance(values, Response):
                return values
            body, media = values["table"].render(form)
            filename = f"bookcorner-{name}-{values['file']}.{form}"
            await site.run(queries.record, site.store, who.name, f"registers.download.{form}", filename,
                           dict(request.query_params))
            return site.download(body, filename, media)

    for name in REGISTERS:
        add_register(name)

    @site.page_route("/registers")
    async def index(request: Request, who: auth.Session) -> Response:
        return site.page(request, "registers.html", who=who)

    @site.form_route("/registers/withdrawals")
    async def withdraw_book(request: Request, who: auth.Session, fields: dict[str, str]) -> Response:
        item_id, reason = fields.get("item_id", "").strip()[:80], " ".join(fields.get("reason", "").split())[:400]
        try:
            if not reason:
                raise WithdrawRefused("no_reason")
            await site.run(withdraw, site.store, item_id, reason, who.name, db.now())
        except WithdrawRefused as refused:
            values, error = await gather(request, "withdrawals"), _refusal_text(str(refused))
            if isinstance(values, Response):
                return values
            return show(request, "withdrawals", who, values, 422, error=error, item_id=item_id, reason=reason)
        return site.redirect(f"/registers/withdrawals?done={quote(item_id)}")

    async def privacy_page(request: Request, who: auth.Session, status: int = 200, **values: Any) -> Response:
        now = db.now()
        state = await site.run(retention, site.store, now)
        log_state = await site.run(events_retention, site.store, now)
        values = {"saved": request.query_params.get("saved"), "events_saved": request.query_params.get("events_saved"),
                  **values}
        return site.page(request, "registers_privacy.html", status, who=who, state=state, log_state=log_state,
                         **values)

    @site.page_route("/registers/privacy")
    async def privacy(request: Request, who: auth.Session) -> Response:
        return await privacy_page(request, who)

    @site.form_route("/registers/privacy")
    async def set_privacy(request: Request, who: auth.Session, fields: dict[str, str]) -> Response:
        text = fields.get("days", "").strip()
        if not text.isdigit() or int(text) > MAX_RETENTION_DAYS:
            error = _("The retention period is a number of days from 0 to {most}.").format(most=MAX_RETENTION_DAYS)
            return await privacy_page(request, who, 422, saved=None, events_saved=None, error=error)
        log_days = (await site.run(events_retention, site.store, db.now())).days
        if log_days and (int(text) == 0 or int(text) > log_days):
            error = _("The circulation log forgets names after {days} days: the loans' retention period must be "
                      "from 1 to {days} days (or set the log's period to 0 first).").format(days=log_days)
            return await privacy_page(request, who, 422, saved=None, events_saved=None, error=error)
        now = db.now()
        await site.run(set_retention, site.store, int(text), who.name, now)
        changed = await site.run(anonymise, site.store, now, who.name)
        return site.redirect(f"/registers/privacy?saved={changed}")

    @site.form_route("/registers/privacy/events")
    async def set_events_privacy(request: Request, who: auth.Session, fields: dict[str, str]) -> Response:
        text = fields.get("events_days", "").strip()
        now = db.now()
        refusal = (_("The circulation log's period is a number of days from 0 to {most}.").format(
            most=MAX_RETENTION_DAYS) if not text.isdigit() or len(text) > 6
            else await site.run(set_events_retention, site.store, int(text), who.name, now))
        if refusal is not None:
            return await privacy_page(request, who, 422, saved=None, events_saved=None, events_error=refusal)
        changed = await site.run(anonymise_events, site.store, now, who.name)
        return site.redirect(f"/registers/privacy?events_saved={changed}")
