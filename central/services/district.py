"""The district's own page (``central.dashboard.district``): every school's figures side by
side and in total, for the district's staff (``kiosks.DISTRICT``), who see figures, never a
child's name, and change nothing.

Each school's figures come from its own tables (``central.schools``): its loans this term
(the school's own calendar says when its term began), the books out now and overdue, the
events waiting for its librarian's review, its kiosks and when the last one was heard from,
its books and pupils. Small counts over indexed columns (``ix_loans_out_at``,
``ix_loans_returned_due``), read on the hot standby when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta, tzinfo

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
        out = conn.execute(select(func.count(), func.count().filter(loans.due < today))
                           .where(loans.returned_at.is_(None))).one()
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


def overview(schools: Schools, today: date, zone: tzinfo, now: datetime | None = None) -> Overview:
    """Every school's figures (on the report store: the hot standby when there is one) and the
    district's totals."""
    now = now or db.now()
    rows = [figures_of(school, schools.reports(school.slug), today, zone, now) for school in schools.listed()]
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
