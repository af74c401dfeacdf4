"""The district's own page (``central.dashboard.district``): every school's figures side by
side and in total, for the district's staff (``kiosks.DISTRICT``), who see figures, never a
child's name, and change nothing.

Each school's figures come from its own tables (``central.schools``): its loans this term
(the school's own calendar says when its term began), the books out now and overdue, the
events waiting for its librarian's review, its kiosks and when the last one was heard from,
its books and pupils. Small counts: the term's loans over ``ix_loans_out_at`` (the term's
partitions only), the books out now from ``item_state`` (one row a book, as replay leaves it:
counting open loans instead read every term's loans partition of every school), read on the hot
standby when there is one.

On PostgreSQL the schools are read ``TOGETHER`` at a time, in one transaction and two
statements: their calendars and names, then their counts, each school's part of a ``UNION
ALL`` naming its own schema (and its own term's start). Asking each school in turn took a
transaction and seven statements a school. All 300 in one transaction does not work: a
transaction locks every table and index it reads until it ends, a school's loans are a dozen
partitions with their indexes, and 300 schools' locks overflowed PostgreSQL's lock table
("out of shared memory", ``max_locks_per_transaction`` 64 by default).
On SQLite, where each school is a file of its own, each school is asked in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.central.schools import School, Schools
from bookcorner.central.services import registers, reports
from bookcorner.central.services.reviews import day_bounds
from bookcorner.central.services.tables import ReportTable
from bookcorner.i18n import _

#: a kiosk not heard from for this long is shown as silent
SILENT_AFTER = timedelta(days=1)


@dataclass
class SchoolFigures:
    slug: str
    name: str
    term_start: date | None = None
    loans_this_term: int = 0
    on_loan: int = 0
    overdue: int = 0
    waiting_review: int = 0
    kiosks: int = 0
    kiosks_silent: int = 0
    last_contact: datetime | None = None
    books: int = 0
    pupils: int = 0


#: the figures that add up over the district
COUNTS = tuple(f.name for f in fields(SchoolFigures) if f.type == "int")


@dataclass
class Overview:
    schools: list[SchoolFigures]
    total: SchoolFigures


def figures_of(school: School, store: db.Store, today: date, zone: tzinfo, now: datetime) -> SchoolFigures:
    start, _end, _name = reports.term_of(store, today)
    since = day_bounds(start, zone)[0]
    loans, k, reviews = db.loans.c, db.kiosks.c, db.reviews.c
    with store.reading() as conn:
        term = conn.execute(select(func.count()).select_from(db.loans).where(loans.out_at >= since)).scalar_one()
        items = db.item_state.c  # (one row a book: on loan now, without reading every term's loans)
        out = conn.execute(select(func.count(), func.count().filter(items.due < today))
                           .where(items.loan_id.is_not(None))).one()
        waiting = conn.execute(select(func.count()).select_from(db.reviews)
                               .where(reviews.resolved_at.is_(None))).scalar_one()
        kiosks = conn.execute(select(func.count(), func.count().filter(
            (k.last_contact.is_(None)) | (k.last_contact < now - SILENT_AFTER)), func.max(k.last_contact))).one()
        books = conn.execute(select(func.count()).select_from(db.catalogue)
                             .where(db.catalogue.c.removed.is_(False))).scalar_one()
        pupils = conn.execute(select(func.count()).select_from(db.patrons)
                              .where(db.patrons.c.removed.is_(False))).scalar_one()
    name = school.name or registers.school_name(store) or _("(the first school)")
    return SchoolFigures(school.slug, name, start, term, out[0], out[1], waiting, kiosks[0], kiosks[1], kiosks[2],
                         books, pupils)


#: schools read in one transaction (about 70 relation locks each: see the module's docstring)
TOGETHER = 20
#: one school's figures in the district's statement (its schema put in place of ``{s}``, its own
#: parameters' names ending in its number in place of ``{n}``)
_COUNTS = """SELECT {n} AS n, t.term, o.on_loan, o.overdue, w.waiting, k.kiosks, k.silent, k.last_contact,
 b.books, p.pupils
FROM (SELECT count(*) AS term FROM {s}loans WHERE out_at >= %(since{n})s) AS t,
 (SELECT count(*) AS on_loan, count(*) FILTER (WHERE due < %(today)s) AS overdue
  FROM {s}item_state WHERE loan_id IS NOT NULL) AS o,
 (SELECT count(*) AS waiting FROM {s}reviews WHERE resolved_at IS NULL) AS w,
 (SELECT count(*) AS kiosks, count(*) FILTER (WHERE last_contact IS NULL OR last_contact < %(silent)s) AS silent,
  max(last_contact) AS last_contact FROM {s}kiosks) AS k,
 (SELECT count(*) AS books FROM {s}catalogue WHERE NOT removed) AS b,
 (SELECT count(*) AS pupils FROM {s}patrons WHERE NOT removed) AS p"""
_SETTINGS = """SELECT {n} AS n, (SELECT data FROM {s}settings WHERE name = 'calendar') AS calendar,
 (SELECT data FROM {s}settings WHERE name = 'school') AS name"""


def _schema(store: db.Store) -> str:
    """How the school's tables are named in the district's statement: qualified by its schema
    (checked when the store was made), or as they are for the implicit school."""
    return f"{store.schema}." if store.schema else ""


def figures_together(listed: list[School], stores: list[db.Store], today: date, zone: tzinfo,
                     now: datetime) -> list[SchoolFigures]:
    """Every school's figures, ``TOGETHER`` schools a transaction of two statements (PostgreSQL, where
    the schools are schemas of one database); ``stores`` are the schools' (on one database), in
    ``listed``'s order."""
    prefixes = [_schema(store) for store in stores]
    terms: dict[int, tuple[date, date, str | None]] = {}
    names: dict[int, str] = {}
    counts: dict[int, Any] = {}
    for first in range(0, len(prefixes), TOGETHER):
        batch = list(enumerate(prefixes))[first:first + TOGETHER]
        with stores[0].reading() as conn:
            settings = conn.exec_driver_sql(" UNION ALL ".join(_SETTINGS.format(n=n, s=s) for n, s in batch)).all()
            terms.update({row.n: reports.term_in(reports.calendar_of(row.calendar), today) for row in settings})
            names.update({row.n: registers.name_of(row.name) for row in settings})
            values: dict[str, object] = {"today": today, "silent": now - SILENT_AFTER}
            values.update({f"since{n}": day_bounds(terms[n][0], zone)[0] for n, _s in batch})
            counts.update({row.n: row for row in conn.exec_driver_sql(" UNION ALL ".join(
                _COUNTS.format(n=n, s=s) for n, s in batch), values)})
    rows = []
    for n, school in enumerate(listed):
        c = counts[n]
        contact = c.last_contact.astimezone(UTC) if c.last_contact else None  # (as db.UTCDateTime gives it)
        rows.append(SchoolFigures(school.slug, school.name or names[n] or _("(the first school)"), terms[n][0],
                                  c.term, c.on_loan, c.overdue, c.waiting, c.kiosks, c.silent, contact,
                                  c.books, c.pupils))
    return rows


def overview(schools: Schools, today: date, zone: tzinfo, now: datetime | None = None) -> Overview:
    """Every school's figures (on the report store: the hot standby when there is one) and the
    district's totals."""
    now = now or db.now()
    listed = schools.listed()
    stores = [schools.reports(school.slug) for school in listed]
    if stores[0].sqlite:
        rows = [figures_of(school, store, today, zone, now) for school, store in zip(listed, stores, strict=True)]
    else:
        rows = figures_together(listed, stores, today, zone, now)
    total = SchoolFigures("", _("All schools"))
    for name in COUNTS:
        setattr(total, name, sum(getattr(row, name) for row in rows))
    contacts = [row.last_contact for row in rows if row.last_contact]
    total.last_contact = max(contacts) if contacts else None
    return Overview(rows, total)


def table(seen: Overview, zone: tzinfo) -> ReportTable:
    """The page's table as a download (CSV, XLSX), the totals last."""
    def row(f: SchoolFigures) -> tuple:
        contact = f.last_contact.astimezone(zone).strftime("%Y-%m-%d %H:%M") if f.last_contact else ""
        return (f.slug, f.name, f.term_start or "", f.loans_this_term, f.on_loan, f.overdue, f.waiting_review,
                f.kiosks, f.kiosks_silent, contact, f.books, f.pupils)

    return ReportTable(_("The district's schools"),
                       [_("School id"), _("School"), _("Term began"), _("Loans this term"), _("On loan now"),
                        _("Overdue"), _("Waiting for review"), _("Kiosks"), _("Kiosks silent for a day"),
                        _("Last heard from"), _("Books"), _("Pupils")],
                       [*(row(f) for f in seen.schools), row(seen.total)])
