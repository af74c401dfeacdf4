"""The reports the school publishes from its loans (../shared/DOMAIN.md): form I, the
student reading and borrowing statistics per student and per class, for a week or a
term, against the school's targets; the reading stars (十佳读书之星) and the best reading
classes (阳光阅读班级), and the tables they download as (the pages:
``central.dashboard.reports``).

One grouped query over ``loans`` (the period's loans by class and borrower, an index
range) gives every figure; the roster gives names and class sizes. A loan anonymised
by the retention period (no borrower) counts in its class, never as a student.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta, tzinfo
from typing import Any

import msgspec
from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.central.ingest import upsert
from bookcorner.central.services import charts
from bookcorner.central.services.reviews import day_bounds
from bookcorner.central.services.tables import ReportTable
from bookcorner.i18n import _
from bookcorner.protocol.messages import CalendarRecord

TARGETS_KEY = "reports.targets"
#: a term when the calendar names none: the last 20 weeks
DEFAULT_TERM_WEEKS = 20
#: how many reading stars and best classes (more when places are shared)
TOP = 10
STUDENT_ROLES = ("student", "student_librarian")
TABLES = ("classes", "students", "stars", "best-classes")


@dataclass(frozen=True)
class Targets:
    """The school's targets per term (the documents cite 5, 6, 10, 12 or 15 books per
    student, and at least 50 loans per class corner)."""

    books_per_student: int = 10
    class_loans: int = 50


class _Roster(msgspec.Struct):
    name: str = ""
    role: str = "student"
    class_name: str | None = None
    status: str = "active"


_roster = msgspec.json.Decoder(_Roster)


@dataclass
class Student:
    patron_id: str
    name: str
    class_name: str
    loans: int
    below: bool = False
    rank: int = 0


@dataclass
class ClassFigures:
    class_name: str
    #: on the roster now (the borrowers, for a class no longer on it)
    size: int
    loans: int
    borrowers: int
    students: list[Student] = field(default_factory=list)
    below: bool = False
    rank: int = 0
    student_target: float = 0.0

    @property
    def per_student(self) -> float:
        return round(self.loans / self.size, 2) if self.size else 0.0

    @property
    def chart(self) -> charts.BarChart:
        return charts.bar_chart([(s.name or s.patron_id, s.loans) for s in self.students], self.student_target)


@dataclass
class Borrowing:
    """Form I for one period (``end`` included), with the targets scaled to it."""

    start: date
    end: date
    targets: Targets
    term_name: str | None
    #: the period's share of a term: the targets are the term's times this
    share: float
    classes: list[ClassFigures]
    #: loans with no borrower's name any more (anonymised), counted in their classes
    anonymised: int

    @property
    def student_target(self) -> float:
        return round(self.targets.books_per_student * self.share, 1)

    @property
    def class_target(self) -> float:
        return round(self.targets.class_loans * self.share, 1)

    @property
    def loans(self) -> int:
        return sum(c.loans for c in self.classes)

    @property
    def students(self) -> list[Student]:
        return [s for c in self.classes for s in c.students]

    @property
    def below(self) -> int:
        return sum(s.below for s in self.students)

    @property
    def chart(self) -> charts.BarChart:
        return charts.bar_chart([(c.class_name, c.loans) for c in self.classes], self.class_target)

    def stars(self) -> list[Student]:
        """The period's top readers: shared places share a rank, and everyone placed in
        the top ten is a star (so there may be more than ten)."""
        return _ranked([s for s in self.students if s.loans > 0], lambda s: s.loans, lambda s: (s.name, s.patron_id))

    def best_classes(self) -> list[ClassFigures]:
        return _ranked([c for c in self.classes if c.loans > 0], lambda c: c.per_student, lambda c: c.class_name)


def stars_page(report: Borrowing) -> dict:
    """What the stars page shows of a period's figures."""
    stars = report.stars()
    return {"report": report, "stars": stars, "best": report.best_classes(),
            "stars_chart": charts.bar_chart([(s.name or s.patron_id, s.loans) for s in stars])}


def _ranked(rows: list, score: Callable, order: Callable) -> list:
    rows = sorted(rows, key=lambda r: (-score(r), order(r)))
    placed: list = []
    for index, row in enumerate(rows):
        row.rank = placed[-1].rank if placed and score(placed[-1]) == score(row) else index + 1
        if row.rank > TOP:
            break
        placed.append(row)
    return placed


# --- reading ----------------------------------------------------------------------------------


def this_week(today: date) -> tuple[date, date]:
    monday = today - timedelta(days=today.weekday())
    return monday, monday + timedelta(days=6)


def _calendar(conn) -> CalendarRecord | None:
    return calendar_of(conn.execute(select(db.settings.c.data).where(db.settings.c.name == "calendar")).scalar())


def calendar_of(text: str | None) -> CalendarRecord | None:
    """The school's calendar from its stored setting (None: none, or unreadable)."""
    if not text:
        return None
    try:
        return msgspec.json.decode(text, type=CalendarRecord)
    except msgspec.DecodeError:
        return None


def _targets(conn) -> Targets:
    text = conn.execute(select(db.meta.c.value).where(db.meta.c.key == TARGETS_KEY)).scalar()
    if not text:
        return Targets()
    try:
        return Targets(**json.loads(text))
    except (ValueError, TypeError):
        return Targets()


def targets(store: db.Store) -> Targets:
    with store.reading() as conn:
        return _targets(conn)


def term_of(store: db.Store, today: date) -> tuple[date, date, str | None]:
    """The term ``today`` is in (or the last one begun) from the calendar; else the 20 weeks to this Sunday."""
    with store.reading() as conn:
        return term_in(_calendar(conn), today)


def term_in(calendar: CalendarRecord | None, today: date) -> tuple[date, date, str | None]:
    """``term_of`` for a calendar already read (``calendar_of`` its stored text)."""
    begun = sorted((t for t in (calendar.terms if calendar else []) if t.start <= today), key=lambda t: t.start)
    if begun:
        return begun[-1].start, begun[-1].end, begun[-1].name
    sunday = this_week(today)[1]
    return sunday - timedelta(weeks=DEFAULT_TERM_WEEKS) + timedelta(days=1), sunday, None


def terms(store: db.Store) -> list:
    with store.reading() as conn:
        calendar = _calendar(conn)
    return sorted(calendar.terms, key=lambda t: t.start, reverse=True) if calendar else []


def borrowing(store: db.Store, start: date, end: date, zone: tzinfo) -> Borrowing:
    """Form I for ``start``..``end`` (days in the school's zone, both included)."""
    since, until = day_bounds(start, zone)[0], day_bounds(end, zone)[1]
    loans = db.loans.c
    with store.reading() as conn:
        counts = conn.execute(
            select(loans.class_name, loans.patron_id, func.count())
            .where(loans.out_at >= since, loans.out_at < until, loans.class_name.is_not(None))
            .group_by(loans.class_name, loans.patron_id)).all()
        # the whole roster, through the driver (a thousand rows and more, every page)
        people = conn.exec_driver_sql("SELECT patron_id, data, removed FROM patrons").all()
        chosen, calendar = _targets(conn), _calendar(conn)
    term = next((t for t in (calendar.terms if calendar else []) if t.start <= start <= t.end), None)
    term_days = (term.end - term.start).days + 1 if term else DEFAULT_TERM_WEEKS * 7
    share = ((end - start).days + 1) / term_days
    roster = _roster_of(people)
    classes, placed = _classes_on_roster(roster)
    anonymised = _count_loans(counts, roster, classes, placed)
    result = Borrowing(start, end, chosen, term.name if term else None, share, [], anonymised)
    for figures in sorted(classes.values(), key=lambda c: _class_order(c.class_name)):
        figures.size = figures.size or figures.borrowers
        figures.student_target = result.student_target
        figures.below = figures.loans < result.class_target
        figures.students.sort(key=lambda s: (s.name, s.patron_id))
        for student in figures.students:
            student.below = student.loans < result.student_target
        result.classes.append(figures)
    return result


def _class_named(classes: dict[str, ClassFigures], name: str) -> ClassFigures:
    figures = classes.get(name)
    if figures is None:
        figures = classes[name] = ClassFigures(name, 0, 0, 0)
    return figures


def _roster_of(people: Sequence[Any]) -> dict[str, _Roster]:
    """The roster's records by student id (one that no longer decodes left out; one removed: "left")."""
    roster: dict[str, _Roster] = {}
    for patron_id, data, removed in people:
        try:
            record = _roster.decode(data)
        except msgspec.DecodeError:
            continue
        record.status = "left" if removed else record.status
        roster[patron_id] = record
    return roster


def _classes_on_roster(roster: dict[str, _Roster]) -> tuple[dict[str, ClassFigures], dict[tuple[str, str], Student]]:
    """Every class of the roster's active students, each student in it with no loans yet
    (and the students by (class, student id))."""
    classes: dict[str, ClassFigures] = {}
    placed: dict[tuple[str, str], Student] = {}  # (class, borrower)
    for patron_id, record in roster.items():
        if record.role in STUDENT_ROLES and record.status == "active" and record.class_name:
            figures = _class_named(classes, record.class_name)
            figures.size += 1
            student = placed[record.class_name, patron_id] = Student(patron_id, record.name, record.class_name, 0)
            figures.students.append(student)
    return classes, placed


def _count_loans(counts: Sequence[Any], roster: dict[str, _Roster], classes: dict[str, ClassFigures],
                 placed: dict[tuple[str, str], Student]) -> int:
    """Adds the period's loans (per class and borrower) to the classes and students; how many
    loans had no borrower any more (anonymised)."""
    anonymised = 0
    for class_name, patron_id, count in counts:
        if patron_id in roster and roster[patron_id].role not in STUDENT_ROLES:
            continue  # a teacher the roster places in a class borrows for herself, not for it
        figures = _class_named(classes, class_name)
        figures.loans += count
        if patron_id is None:
            anonymised += count
            continue
        figures.borrowers += 1
        student = placed.get((class_name, patron_id))
        if student is None:  # moved to another class since, or no longer on the roster
            known = roster.get(patron_id)
            student = Student(patron_id, known.name if known else "", class_name, 0)
            figures.students.append(student)
        student.loans = count
    return anonymised


def _class_order(name: str) -> tuple:
    """Classes as a school lists them: "2.10" after "2.9"."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in name.replace("-", ".").replace("班", "").split("."))


# --- writing ----------------------------------------------------------------------------------


def save_targets(store: db.Store, who: str, chosen: Targets) -> None:
    """The librarian's new targets, with an audit record in the same transaction."""
    text = json.dumps(asdict(chosen))
    with store.writing() as conn:
        upsert(conn, db.meta, ["key"], [{"key": TARGETS_KEY, "value": text}])
        conn.execute(db.audit_log.insert().values(at=db.now(), who=who, action="reports.targets",
                                                  target=TARGETS_KEY, detail=text))


# --- the tables behind the downloads ----------------------------------------------------------


def table(report: Borrowing, name: str) -> ReportTable:
    period = f"{report.start.isoformat()}..{report.end.isoformat()}"
    if name == "classes":
        return ReportTable(_("Borrowing per class") + f" {period}", [
            _("Class"), _("Students"), _("Loans"), _("Borrowers"), _("Loans per student"), _("Class target"),
            _("Below target")],
            [[c.class_name, c.size, c.loans, c.borrowers, c.per_student, report.class_target,
              _("yes") if c.below else ""] for c in report.classes])
    if name == "students":
        return ReportTable(_("Borrowing per student") + f" {period}", [
            _("Class"), _("Student"), _("Student id"), _("Loans"), _("Target"), _("Below target")],
            [[s.class_name, s.name, s.patron_id, s.loans, report.student_target, _("yes") if s.below else ""]
             for s in report.students])
    if name == "stars":
        return ReportTable(_("Reading stars") + f" {period}", [
            _("Place"), _("Student"), _("Student id"), _("Class"), _("Loans")],
            [[s.rank, s.name, s.patron_id, s.class_name, s.loans] for s in report.stars()])
    return ReportTable(_("Best reading classes") + f" {period}", [
        _("Place"), _("Class"), _("Loans per student"), _("Loans"), _("Students")],
        [[c.rank, c.class_name, c.per_student, c.loans, c.size] for c in report.best_classes()])
