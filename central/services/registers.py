"""The paper registers the dashboard replaces (../shared/DOMAIN.md): overdue chase slips
(催还单) per class, the repair register (form E), the withdrawal register (form F, 注销),
the student-librarian work record (form G), the stock-take checklist (查书/清点): read
from the central database, and each as the table it downloads as (``tables``). Reading
functions take the period and "now" as arguments; the dashboard's routes
(``central.dashboard.registers``) only ask and show.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

import msgspec
from sqlalchemy import or_, select, update

from bookcorner.central import db
from bookcorner.central.ingest import next_revision
from bookcorner.central.payloads import stored
from bookcorner.central.services.reviews import day_bounds, json_object, period_bounds, records
from bookcorner.central.services.sip2 import circulation_state
from bookcorner.central.services.tables import ReportTable
from bookcorner.circulation.events import (
    EventType,
    ItemDamaged,
    Payload,
    StocktakeFinished,
    StocktakeScanned,
    StocktakeStarted,
    item_id_of,
    patron_id_of,
)
from bookcorner.circulation.model import Item, ItemStatus, Patron, Role
from bookcorner.circulation.reference import Reference, build_reference
from bookcorner.circulation.state import CirculationState
from bookcorner.circulation.stocktake import StocktakeResult, reconcile
from bookcorner.i18n import _
from bookcorner.protocol.messages import ItemRecord

log = logging.getLogger(__name__)

#: the registers with a page and downloads, in the order the index lists them
REGISTERS = ("overdue", "repairs", "withdrawals", "librarians", "stock-take")

WITHDRAW_ACTION = "registers.withdraw"
APPLIED = ("applied", "applied_with_warning")
#: what a student librarian does as the actor of an event, for the work record
_WORK = (str(EventType.CHECKED_IN), str(EventType.ITEM_DAMAGED), str(EventType.ITEM_LOST),
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
    return _slips(store, today, db.item_state.c.due < today)


def due_between(store: db.Store, today: date, first: date, last: date) -> dict[str, list[Slip]]:
    """Books on loan due from ``first`` to ``last``, as ``overdue`` gives them (``days``
    overdue is then 0 or less): the books due this week of a class teacher's notice."""
    s = db.item_state.c
    return _slips(store, today, s.due >= first, s.due <= last)


def _slips(store: db.Store, today: date, *where: Any) -> dict[str, list[Slip]]:
    s = db.item_state.c
    with store.reading() as conn:
        rows = conn.execute(select(s.item_id, s.patron_id, s.due, s.loan_kiosk)
                            .where(s.loan_id.is_not(None), *where)).all()
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
        return name_of(conn.execute(select(db.settings.c.data).where(db.settings.c.name == "school")).scalar())


def name_of(text: str | None) -> str:
    """The school's name from its stored setting, or ""."""
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
        reports = [_damage_report(row.actor, stored(EventType.ITEM_DAMAGED, row.payload)) for row in damaged]
        patrons = records(conn, db.patrons, db.patrons.c.patron_id, {who for _item, who, _note in reports})
        items = records(conn, db.catalogue, db.catalogue.c.item_id, {item_id for item_id, _who, _note in reports})
    back_times: dict[str, list[datetime]] = defaultdict(list)
    for repair in repaired:
        back_times[item_id_of(stored(EventType.ITEM_REPAIRED, repair.payload)) or ""].append(repair.time)
    out = []
    for row, (item_id, who, note) in zip(damaged, reports, strict=True):
        back = next((t for t in back_times.get(item_id, ()) if t >= row.time), None)
        out.append(Repair(row.time.astimezone(zone), item_id, str(items.get(item_id, {}).get("title") or item_id),
                          _who(patrons, who), row.kiosk_id, note, back.astimezone(zone) if back else None))
    return out


def _damage_report(actor: str, payload: Payload) -> tuple[str, str, str]:
    """A damage report's book, who reported it (a student librarian taking it in for someone
    else, or the actor) and its note."""
    if isinstance(payload, ItemDamaged):
        return payload.item_id, payload.handled_by or actor, payload.note or ""
    return item_id_of(payload) or "", actor, ""


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
        work = team[row.actor]
        if row.type == EventType.CHECKED_IN:
            if patron_id_of(stored(row.type, row.payload)) == row.actor:
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
    """Books no event has touched since ``since`` (or never) and no stock-take by scanning
    found on a shelf since, withdrawn ones left out, in shelf and call-number order: what to
    look for on the shelves."""
    first = day_bounds(since, zone)[0]
    c, s = db.catalogue.c, db.item_state.c
    with store.reading() as conn:
        rows = conn.execute(select(c.item_id, c.data, s.status, s.loan_id, s.due, s.changed_time)
                            .select_from(db.catalogue.outerjoin(db.item_state, s.item_id == c.item_id))
                            .where(c.removed.is_(False), or_(s.changed_time.is_(None), s.changed_time < first))).all()
        scanned = _scanned_at_stocktakes(conn, zone) if rows else {}
    out = []
    for row in rows:
        item = json_object(row.data)
        status = row.status or item.get("status") or ItemStatus.AVAILABLE
        if status == ItemStatus.WITHDRAWN or (row.item_id in scanned and scanned[row.item_id] >= first):
            continue
        where = "on_loan" if row.loan_id else status if status in (ItemStatus.IN_REPAIR, ItemStatus.LOST) else "shelf"
        seen = max(t for t in (row.changed_time, scanned.get(row.item_id)) if t is not None) if (
            row.changed_time or row.item_id in scanned) else None
        out.append(Unseen(str(item.get("home_corner") or ""), str(item.get("call_number") or ""),
                          str(item.get("title") or row.item_id), row.item_id, str(item.get("barcode") or ""), where,
                          row.due if row.loan_id else None, seen.astimezone(zone).date() if seen else None))
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


# --- stock-take by scanning the shelf (清点): the kiosks' and the handheld scanner's -----------------

STOCKTAKE_LOST_ACTION = "registers.stocktake.lost"
LOST_ACTION = "registers.lost"
#: a stock-take's state: scanning still (or given up without a word), done, given up
RUNNING, FINISHED, CANCELLED = "running", "finished", "cancelled"
_STOCKTAKE_TYPES = (str(EventType.STOCKTAKE_STARTED), str(EventType.STOCKTAKE_SCANNED),
                    str(EventType.STOCKTAKE_FINISHED))
#: what a scan file may hold, and what one code may be
MAX_SCAN_LINES = 20000
MAX_CODE = 80
_HEADINGS = frozenset({"code", "codes", "barcode", "barcodes", "isbn", "scan", "scans", "data", "条码", "条形码",
                       "编码", "代码", "条码号"})


class ScanFileRefused(Exception):
    """A scan file that is not a list of codes: ``code`` (binary, encoding, empty, too_many,
    bad_code), the line it was found on (0: the whole file) and what was there."""

    def __init__(self, code: str, line: int = 0, value: str = "") -> None:
        super().__init__(code, line, value)
        self.code, self.line, self.value = code, line, value


class MarkLostRefused(Exception):
    """Why a stock-take's missing books cannot be marked lost (unknown, running, cancelled)."""


def read_scan_file(data: bytes) -> list[str]:
    """The codes of a handheld scanner's export: text or CSV, one code a line (the first
    field of a CSV line, a heading line first allowed), blank lines skipped."""
    if b"\x00" in data:
        raise ScanFileRefused("binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScanFileRefused("encoding") from None
    lines = text.splitlines()
    if len(lines) > MAX_SCAN_LINES:
        raise ScanFileRefused("too_many", MAX_SCAN_LINES + 1)
    codes: list[str] = []
    for number, line in enumerate(lines, start=1):
        field_text = line.replace("\t", ",").replace(";", ",").split(",", 1)[0].strip().strip('"').strip()
        if not field_text:
            continue
        if not codes and field_text.casefold() in _HEADINGS:
            continue  # the heading of the scanner's CSV
        if len(field_text) > MAX_CODE or any(not ch.isprintable() or ch.isspace() for ch in field_text):
            raise ScanFileRefused("bad_code", number, field_text[:40])
        codes.append(field_text)
    if not codes:
        raise ScanFileRefused("empty")
    return codes


@dataclass
class Stocktake:
    """One stock-take: a kiosk's (its stocktake.* events) or an uploaded scan file's."""

    stocktake_id: str
    #: "kiosk" | "upload"
    source: str
    #: the kiosk that scanned, or "" for an upload
    kiosk_id: str
    #: the kiosk's name, or the uploaded file's
    where: str
    started: datetime
    finished: datetime | None
    state: str
    #: the corners whose books stand on the shelf (None: every book of the catalogue)
    shelf: tuple[str, ...] | None
    #: who started it: a patron id at a kiosk, the librarian's name for an upload
    by: str
    codes: list[str] = field(default_factory=list)
    #: when the missing books were marked lost, by whom, which (None: not yet)
    marked_at: datetime | None = None
    marked_by: str = ""
    marked: tuple[str, ...] = ()


@dataclass
class StocktakeView:
    """A stock-take with its result now, and what the tables show of each book."""

    stocktake: Stocktake
    result: StocktakeResult
    items: dict[str, Item]
    #: the borrower's class and id of each book on loan but on the shelf
    borrowers: dict[str, tuple[str, str]]


def _school(conn: Any) -> tuple[Reference, CirculationState]:
    """The catalogue and the roster as the rules' reference data, and the loans and statuses
    replay keeps, as the server has them now."""
    items = [msgspec.convert(msgspec.json.decode(data), Item, strict=False)
             for data in conn.execute(select(db.catalogue.c.data).where(db.catalogue.c.removed.is_(False))).scalars()]
    patrons = [msgspec.convert(msgspec.json.decode(data), Patron, strict=False)
               for data in conn.execute(select(db.patrons.c.data).where(db.patrons.c.removed.is_(False))).scalars()]
    return build_reference(patrons=patrons, cards=[], items=items), circulation_state(conn)


def _kiosk_stocktakes(conn: Any, zone: tzinfo, only: str | None = None) -> list[Stocktake]:
    e = db.events.c
    rows = conn.execute(select(e.kiosk_id, e.seq, e.time, e.actor, e.type, e.payload)
                        .where(e.type.in_(_STOCKTAKE_TYPES), e.outcome != "duplicate")
                        .order_by(e.kiosk_id, e.seq)).all()
    names = dict(conn.execute(select(db.kiosks.c.kiosk_id, db.kiosks.c.name)).all())
    found: dict[tuple[str, str], Stocktake] = {}
    for row in rows:
        payload = stored(row.type, row.payload)
        if not isinstance(payload, StocktakeStarted | StocktakeScanned | StocktakeFinished) or (
                only is not None and payload.stocktake_id != only):
            continue
        key = (row.kiosk_id, payload.stocktake_id)
        take = found.get(key)
        if isinstance(payload, StocktakeStarted):
            if take is None:
                found[key] = Stocktake(payload.stocktake_id, "kiosk", row.kiosk_id,
                                       str(names.get(row.kiosk_id) or row.kiosk_id), row.time.astimezone(zone),
                                       None, RUNNING, payload.shelf, payload.patron_id or row.actor)
        elif take is None:
            continue  # its start was never pushed (or forgotten): nothing to say what shelf it was
        elif isinstance(payload, StocktakeScanned):
            take.codes.append(payload.code)
        else:
            take.finished = row.time.astimezone(zone)
            take.state = CANCELLED if payload.cancelled else FINISHED
    return list(found.values())


def _uploaded(conn: Any, zone: tzinfo, only: str | None = None) -> list[Stocktake]:
    u = db.stocktake_uploads.c
    query = select(db.stocktake_uploads)
    if only is not None:
        query = query.where(u.stocktake_id == only)
    out = []
    for row in conn.execute(query).all():
        shelf = json.loads(row.shelf) if row.shelf else None
        codes = json.loads(row.codes)
        at = row.at.astimezone(zone)
        out.append(Stocktake(row.stocktake_id, "upload", "", row.filename, at, at, FINISHED,
                             tuple(str(s) for s in shelf) if isinstance(shelf, list) else None, row.who,
                             [str(c) for c in codes] if isinstance(codes, list) else []))
    return out


def _with_marks(conn: Any, takes: list[Stocktake], zone: tzinfo) -> None:
    a = db.audit_log.c
    ids = [t.stocktake_id for t in takes]
    marks = {row.target: row for row in conn.execute(
        select(a.at, a.who, a.target, a.detail).where(a.action == STOCKTAKE_LOST_ACTION,
                                                      db.key_in(conn, a.target, ids)))} if ids else {}
    for take in takes:
        mark = marks.get(take.stocktake_id)
        if mark is not None:
            items = json_object(mark.detail).get("items")
            take.marked_at, take.marked_by = mark.at.astimezone(zone), mark.who
            take.marked = tuple(str(i) for i in items) if isinstance(items, list) else ()


def _scanned_at_stocktakes(conn: Any, zone: tzinfo) -> dict[str, datetime]:
    """When each book was last found on a shelf by a stock-take by scanning (its start)."""
    takes = _kiosk_stocktakes(conn, zone) + _uploaded(conn, zone)
    if not takes:
        return {}
    reference, state = _school(conn)
    seen: dict[str, datetime] = {}
    for take in takes:
        result = reconcile(reference, state, take.codes, take.shelf)
        for item_id in (*result.present, *result.misplaced, *result.on_loan_on_shelf, *result.gone_but_found):
            if item_id not in seen or seen[item_id] < take.started:
                seen[item_id] = take.started
    return seen


def stocktakes(store: db.Store, zone: tzinfo) -> list[tuple[Stocktake, StocktakeResult]]:
    """Every stock-take, the kiosks' and the uploaded ones, newest first, each with its
    result against the catalogue and the loans now."""
    with store.reading() as conn:
        takes = _kiosk_stocktakes(conn, zone) + _uploaded(conn, zone)
        _with_marks(conn, takes, zone)
        reference, state = _school(conn) if takes else (None, None)
    takes.sort(key=lambda t: (t.started, t.stocktake_id), reverse=True)
    if reference is None or state is None:
        return []
    return [(t, reconcile(reference, state, t.codes, t.shelf)) for t in takes]


def _find(conn: Any, stocktake_id: str, zone: tzinfo) -> Stocktake | None:
    takes = _uploaded(conn, zone, stocktake_id) or _kiosk_stocktakes(conn, zone, stocktake_id)
    _with_marks(conn, takes, zone)
    return takes[0] if takes else None


def stocktake(store: db.Store, stocktake_id: str, zone: tzinfo) -> StocktakeView | None:
    """One stock-take's result now (None: no such stock-take)."""
    with store.reading() as conn:
        take = _find(conn, stocktake_id, zone)
        if take is None:
            return None
        reference, state = _school(conn)
    result = reconcile(reference, state, take.codes, take.shelf)
    borrowers = {}
    for item_id in result.on_loan_on_shelf:
        loan = state.loan_of(item_id)
        patron = reference.patrons.get(loan.patron_id) if loan is not None else None
        borrowers[item_id] = (patron.class_name or "" if patron is not None else "",
                              _named(reference, loan.patron_id) if loan is not None else "")
    if take.source == "kiosk":
        take.by = _named(reference, take.by)
    return StocktakeView(take, result, dict(reference.items), borrowers)


def _named(reference: Reference, patron_id: str) -> str:
    patron = reference.patrons.get(patron_id)
    return f"{patron.name} ({patron_id})" if patron is not None and patron.name else patron_id


def upload_stocktake(store: db.Store, who: str, filename: str, shelf: tuple[str, ...] | None, codes: list[str],
                     at: datetime) -> str:
    """Keeps an uploaded scan file's codes as a stock-take of ``shelf``; its id."""
    stocktake_id = f"upload-{uuid.uuid4().hex[:12]}"
    with store.writing() as conn:
        conn.execute(db.stocktake_uploads.insert().values(
            stocktake_id=stocktake_id, at=at, who=who, filename=filename[:255],
            shelf=json.dumps(list(shelf), ensure_ascii=False) if shelf is not None else None,
            codes=json.dumps(codes, ensure_ascii=False)))
        conn.execute(db.audit_log.insert().values(
            at=at, who=who, action="registers.stocktake.upload", target=stocktake_id,
            detail=json.dumps({"filename": filename, "shelf": list(shelf) if shelf is not None else None,
                               "codes": len(codes)}, ensure_ascii=False)))
    return stocktake_id


def corners(store: db.Store) -> list[str]:
    """The home corners the catalogue names (the shelves a scan file can be of)."""
    with store.reading() as conn:
        found = {msgspec.convert(msgspec.json.decode(data), Item, strict=False).home_corner
                 for data in conn.execute(select(db.catalogue.c.data).where(db.catalogue.c.removed.is_(False)))
                 .scalars()}
    return sorted(c for c in found if c)


def mark_missing_lost(store: db.Store, stocktake_id: str, who: str, at: datetime, zone: tzinfo) -> list[str]:
    """Marks lost every book a finished stock-take found missing, once: each book's catalogue
    record says "lost" under a new revision (the kiosks learn it at their next pull) with a
    line in the audit log, and the stock-take's marking is recorded. A second time changes
    nothing (and returns no books); a book lent or marked since is left as it is."""
    with store.writing() as conn:
        take = _find(conn, stocktake_id, zone)
        if take is None:
            raise MarkLostRefused("unknown")
        if take.marked_at is not None:
            return []
        if take.state != FINISHED:
            raise MarkLostRefused(take.state)
        reference, state = _school(conn)
        result = reconcile(reference, state, take.codes, take.shelf)
        rev = next_revision(conn) if result.missing else None
        marked = []
        for item_id in result.missing:
            row = conn.execute(select(db.catalogue.c.data).where(db.catalogue.c.item_id == item_id)).first()
            if row is None or rev is None:
                continue
            record = msgspec.json.decode(row.data, type=ItemRecord)
            was = state.status_of(reference.items[item_id])
            record.status = str(ItemStatus.LOST)
            conn.execute(update(db.catalogue).where(db.catalogue.c.item_id == item_id)
                         .values(data=msgspec.json.encode(record).decode("utf-8"), rev=rev))
            conn.execute(update(db.item_state).where(db.item_state.c.item_id == item_id).values(status=None, rev=rev))
            conn.execute(db.audit_log.insert().values(
                at=at, who=who, action=LOST_ACTION, target=item_id,
                detail=json.dumps({"stocktake": stocktake_id, "title": record.title, "was": str(was)},
                                  ensure_ascii=False)))
            marked.append(item_id)
        conn.execute(db.audit_log.insert().values(
            at=at, who=who, action=STOCKTAKE_LOST_ACTION, target=stocktake_id,
            detail=json.dumps({"items": marked, "where": take.where}, ensure_ascii=False)))
    return marked


def state_text(take: Stocktake) -> str:
    return {RUNNING: _("running"), FINISHED: _("finished"), CANCELLED: _("cancelled")}.get(take.state, take.state)


def shelf_text(shelf: tuple[str, ...] | None) -> str:
    return "、".join(shelf) if shelf else _("every book")


def stocktake_table(view: StocktakeView) -> ReportTable:
    """Every book the stock-take concerns, one a row, with what it found of it."""
    result, items = view.result, view.items

    def book(item_id: str) -> tuple[str, str, str, str]:
        item = items.get(item_id)
        return (item_id, item.title if item else "", item.call_number or "" if item else "",
                item.home_corner or "" if item else "")

    rows: list[Sequence[Any]] = []
    for kind, ids in ((_("present"), result.present), (_("missing"), result.missing),
                      (_("misplaced"), result.misplaced), (_("reported lost or withdrawn, found"),
                                                           result.gone_but_found)):
        rows += [(kind, *book(i), "", "") for i in ids]
    rows += [(_("on loan but on the shelf"), *book(i), *view.borrowers.get(i, ("", ""))) for i in
             result.on_loan_on_shelf]
    rows += [(_("unknown code"), code, "", "", "", "", "") for code in result.unknown]
    return ReportTable(_("Stock-take result"),
                       [_("Found"), _("Book id"), _("Title"), _("Call number"), _("Home corner"),
                        _("Borrower's class"), _("Borrower")], rows)
