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

The page does not count: at 300 schools that took 0.8-1.2 s however it was asked (PostgreSQL
planning and executing six small counts in each of 300 schemas). A job (``FiguresKeeper``, one
a school, gone round by ``jobs.EverySchool`` with the other jobs: at server start and every
``Settings.district_every_s``, never on the push path) counts each school's figures as above
and keeps them as one row in ``district_figures``, a table of the district's beside its
registry in the implicit school's database (``central.schools``): one table the page reads in
one statement, where rows in each school's own schema would again be 300 tables to read. The
page shows when its figures were counted, and counts live the schools whose row is missing (a
school just added), older than ``fresh_for`` or counted for another day (a term or an overdue
count that a new day changes): so no school is blank and nothing is silently stale.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from bookcorner.central import db
from bookcorner.central.ingest import upsert
from bookcorner.central.jobs import PeriodicJob
from bookcorner.central.schools import School, Schools, district_figures
from bookcorner.central.services import registers, reports
from bookcorner.central.services.reviews import day_bounds
from bookcorner.central.services.tables import ReportTable
from bookcorner.central.zone import school_zone
from bookcorner.i18n import _

#: a kiosk not heard from for this long is shown as silent
SILENT_AFTER = timedelta(days=1)
#: how often each school's figures are counted again for the page (``Settings.district_every_s``)
COUNT_EVERY_S = 300.0
#: kept figures older than this are counted again live when the page is asked (at least three
#: of the job's rounds: a round late or failed once does not make the page count)
FRESH_FOR = timedelta(minutes=15)


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
    #: when these figures were counted (by the job, or live for the page)
    counted_at: datetime | None = None


#: the figures that add up over the district
COUNTS = tuple(f.name for f in fields(SchoolFigures) if f.type == "int")


@dataclass
class Overview:
    schools: list[SchoolFigures]
    total: SchoolFigures
    #: the oldest school's figures were counted then (the page's "figures as of")
    as_of: datetime | None = None


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
    name = school.name or registers.school_name(store) or ""
    return SchoolFigures(school.slug, name, start, term, out[0], out[1], waiting, kiosks[0], kiosks[1], kiosks[2],
                         books, pupils, now)


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
        rows.append(SchoolFigures(school.slug, school.name or names[n] or "", terms[n][0],
                                  c.term, c.on_loan, c.overdue, c.waiting, c.kiosks, c.silent, contact,
                                  c.books, c.pupils, now))
    return rows


def counted(listed: list[School], stores: list[db.Store], today: date, zone: tzinfo,
            now: datetime) -> list[SchoolFigures]:
    """The figures of the ``listed`` schools (``stores`` theirs, in order) counted now."""
    if not listed:
        return []
    if stores[0].sqlite:
        return [figures_of(school, store, today, zone, now) for school, store in zip(listed, stores, strict=True)]
    return figures_together(listed, stores, today, zone, now)


def kept(schools: Schools) -> dict[str, SchoolFigures]:
    """Every school's figures as the job last kept them, by slug (on the report store)."""
    try:
        with schools.reports_root.reading() as conn:
            rows = conn.execute(select(district_figures)).all()
    except DBAPIError:  # (a hot standby the registry's new table has not reached yet): all counted live
        return {}
    names = [f.name for f in fields(SchoolFigures)]
    return {row.slug: SchoolFigures(**{name: getattr(row, name) for name in names}) for row in rows}


def keep(schools: Schools, figures: SchoolFigures) -> None:
    """A school's figures kept for the page (its row replaced)."""
    values = {f.name: getattr(figures, f.name) for f in fields(SchoolFigures)}
    with schools.root.writing() as conn:
        upsert(conn, district_figures, ["slug"], [values])


def freshness(every_s: float) -> timedelta:
    """How old kept figures may be on the page when the job counts every ``every_s`` seconds."""
    return max(FRESH_FOR, timedelta(seconds=3 * every_s))


def overview(schools: Schools, today: date, zone: tzinfo, now: datetime | None = None,
             fresh_for: timedelta = FRESH_FOR) -> Overview:
    """Every school's figures and the district's totals: as the job kept them, or counted now
    (on the report store: the hot standby when there is one) for a school whose kept figures
    are missing, older than ``fresh_for`` or of another day."""
    now = now or db.now()
    listed = schools.listed()
    found = kept(schools)
    rows: dict[str, SchoolFigures] = {}
    for school in listed:
        row = found.get(school.slug)
        if row is not None and row.counted_at is not None and row.counted_at >= now - fresh_for \
                and row.counted_at.astimezone(zone).date() == today:
            row.name = school.name or row.name
            rows[school.slug] = row
    missing = [school for school in listed if school.slug not in rows]
    for row in counted(missing, [schools.reports(school.slug) for school in missing], today, zone, now):
        rows[row.slug] = row
    return totalled([rows[school.slug] for school in listed])


def totalled(rows: list[SchoolFigures]) -> Overview:
    total = SchoolFigures("", _("All schools"))
    for name in COUNTS:
        setattr(total, name, sum(getattr(row, name) for row in rows))
    contacts = [row.last_contact for row in rows if row.last_contact]
    total.last_contact = max(contacts) if contacts else None
    times = [row.counted_at for row in rows if row.counted_at]
    return Overview(rows, total, min(times) if times else None)


class FiguresKeeper(PeriodicJob):
    """Counts one school's figures for the district's page and keeps them, every ``every``
    seconds and once at server start (``jobs.EverySchool`` goes round the schools)."""

    name = "bookcorner-district-figures"

    def __init__(self, store: db.Store, schools: Schools, every: float = COUNT_EVERY_S) -> None:
        super().__init__(every)
        self.store, self.schools = store, schools

    def once(self, now: datetime | None = None) -> SchoolFigures:
        now = now or db.now()
        zone = school_zone(self.schools.root)  # (the district's page's zone, as it counts live)
        today = now.astimezone(zone).date()
        slug = self.store.school
        figures = figures_of(School(slug, ""), self.schools.reports(slug), today, zone, now)
        keep(self.schools, figures)
        return figures

    def round(self) -> float:
        self.once()
        return self.every


def table(seen: Overview, zone: tzinfo) -> ReportTable:
    """The page's table as a download (CSV, XLSX), the totals last; each school's row says when
    its figures were counted (the totals': the oldest of them)."""
    def when(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""

    def row(f: SchoolFigures, counted_at: datetime | None) -> tuple:
        return (f.slug, f.name or _("(the first school)"), f.term_start or "", f.loans_this_term, f.on_loan,
                f.overdue, f.waiting_review, f.kiosks, f.kiosks_silent, when(f.last_contact), f.books, f.pupils,
                when(counted_at))

    return ReportTable(_("The district's schools"),
                       [_("School id"), _("School"), _("Term began"), _("Loans this term"), _("On loan now"),
                        _("Overdue"), _("Waiting for review"), _("Kiosks"), _("Kiosks silent for a day"),
                        _("Last heard from"), _("Books"), _("Pupils"), _("Counted at")],
                       [*(row(f, f.counted_at) for f in seen.schools), row(seen.total, seen.as_of)])
