"""The demo school: a whole primary school's roster, cards, catalogue, calendar and timetable.

It lets the kiosk run, be shown and be tested with no server and no real data, and it is
built to exercise the rules: suspended and departed students, a lost card with its
replacement, unlabelled copies sharing one ISBN, an ISBN-10 book, reference books and
magazines. ``build_demo_school(today)`` is deterministic: every draw comes from a
``random.Random`` seeded with a fixed string, never the global generator.

The people and books do not depend on ``today`` beyond the school year: a child keeps
their patron id and card as they move up a grade (ids carry the enrolment year), so the
"try these" codes a newcomer noted down keep working.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time

from stdnum import isbn as stdnum_isbn

from bookcorner.circulation.calendar import SchoolCalendar
from bookcorner.circulation.model import Card, CardStatus, Item, ItemType, Patron, PatronStatus, Role
from bookcorner.circulation.policy import DEFAULT_POLICY, Policy
from bookcorner.circulation.reference import Reference, build_reference
from bookcorner.circulation.timetable import RotationSlot, Timetable
from bookcorner.demo import names
from bookcorner.demo.catalogue import Catalogue, build_catalogue
from bookcorner.demo.holidays import academic_year, build_calendar
from bookcorner.i18n import N_

SEED = "bookcorner-demo-school"

SCHOOL_NAME_ZH = "柳溪路小学"
SCHOOL_NAME_EN = "Liuxi Road Primary School"

GRADES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
CLASSES_PER_GRADE = 2
CLASS_NAMES: tuple[str, ...] = tuple(f"{g}-{c}" for g in GRADES for c in range(1, CLASSES_PER_GRADE + 1))
CLASS_SIZE = (22, 30)
#: student librarians (小图书管理员) are chosen from these grades, 2-3 per class
LIBRARIAN_GRADES = frozenset({3, 4, 5, 6})

#: each class's weekly borrowing slot is one half of a lunch break or an after-school hour;
#: halves, because twelve classes do not fit in five lunches and five afternoons
SLOT_TIMES: tuple[tuple[time, time], ...] = (
    (time(12, 0), time(12, 25)),
    (time(15, 40), time(16, 15)),
    (time(12, 25), time(12, 50)),
    (time(16, 15), time(16, 50)),
)
SCHOOL_DAYS = 5

#: EM4100 card numbers: school cards are bought in boxes of consecutive numbers
CARD_NUMBER_RANGE = (1_000_000, 16_000_000)


@dataclass(frozen=True, slots=True)
class DemoHint:
    """Something for a newcomer to scan. ``what`` is marked with ``N_`` (show it with
    ``_()``); ``detail`` is data, shown as is: the card holder and class, or the title."""

    code: str
    what: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DemoSchool:
    #: Chinese and English, for screens in either language
    name: str
    patrons: tuple[Patron, ...]
    cards: tuple[Card, ...]
    items: tuple[Item, ...]
    calendar: SchoolCalendar
    policy: Policy
    timetable: Timetable
    #: "try these": cards to tap and codes to scan, one for each case worth seeing
    hints: tuple[DemoHint, ...]
    name_zh: str = SCHOOL_NAME_ZH
    name_en: str = SCHOOL_NAME_EN

    def reference(self) -> Reference:
        """The snapshot a kiosk decides with (no loans yet)."""
        return build_reference(self.patrons, self.cards, self.items, self.policy, self.calendar, self.timetable)


# --- roster -----------------------------------------------------------------------------


def grade_of(class_name: str) -> int:
    return int(class_name.split("-")[0])


def student_id(cohort: int, class_no: int, seat: int) -> str:
    """S + enrolment year + class + seat (S2023-02-07): stable while the child moves up."""
    return f"S{cohort}-{class_no:02d}-{seat:02d}"


def _class_students(cohort: int, class_no: int, class_name: str) -> list[Patron]:
    rng = random.Random(f"{SEED}:class:{cohort}-{class_no}")
    size = rng.randint(*CLASS_SIZE)
    full_names: list[tuple[str, str]] = []
    while len(full_names) < size:
        drawn = names.child_name(rng)
        if drawn[0] not in (n for n, _ in full_names):
            full_names.append(drawn)
    # drawn after the names, so the same children stay librarians year after year
    librarians: set[int] = set()
    if grade_of(class_name) in LIBRARIAN_GRADES:
        librarians = set(rng.sample(range(size), rng.choice((2, 3))))
    return [
        Patron(
            patron_id=student_id(cohort, class_no, seat + 1),
            name=name,
            given_name=given,
            role=Role.STUDENT_LIBRARIAN if seat in librarians else Role.STUDENT,
            class_name=class_name,
        )
        for seat, (name, given) in enumerate(full_names)
    ]


def _roster(year: int) -> list[Patron]:
    patrons = [Patron("L001", names.adult_name(random.Random(f"{SEED}:librarian")), Role.LIBRARIAN)]
    for index, class_name in enumerate(CLASS_NAMES):
        grade, class_no = (int(part) for part in class_name.split("-"))
        teacher = names.adult_name(random.Random(f"{SEED}:teacher:{class_name}"))
        patrons.append(Patron(f"T{index + 1:03d}", teacher, Role.TEACHER, class_name=class_name))
        patrons += _class_students(year - grade + 1, class_no, class_name)
    return _with_statuses(patrons, year)


def _with_statuses(patrons: list[Patron], year: int) -> list[Patron]:
    """Two suspended students (grades 3-6, where overdue chasing happens) and one who left."""
    rng = random.Random(f"{SEED}:status:{year}")
    ordinary = [i for i, p in enumerate(patrons) if p.role is Role.STUDENT]
    upper = [i for i in ordinary if grade_of(patrons[i].class_name or "0") in LIBRARIAN_GRADES]
    suspended = rng.sample(upper, 2)
    left = rng.choice([i for i in ordinary if i not in suspended])
    result = list(patrons)
    for i in suspended:
        result[i] = _replace_status(result[i], PatronStatus.SUSPENDED)
    result[left] = _replace_status(result[left], PatronStatus.LEFT)
    return result


def _replace_status(patron: Patron, status: PatronStatus) -> Patron:
    return Patron(patron.patron_id, patron.name, patron.role, patron.class_name, patron.given_name, status)


# --- cards ------------------------------------------------------------------------------


def card_id(number: int) -> str:
    """What the card readers produce: the EM4100 32-bit number, 10 zero-padded digits."""
    return f"{number:010d}"


class _CardBox:
    """Consecutive card numbers from one box, skipping spoiled cards, numbers already
    issued, and numbers that happen to be valid ISBN-10s (a scanned card must never
    look like a book)."""

    def __init__(self, seed: str, used: set[str], low: int = CARD_NUMBER_RANGE[0], high: int = CARD_NUMBER_RANGE[1]) -> None:
        self.rng = random.Random(seed)
        self.number = self.rng.randrange(low, high)
        self.used = used

    def take(self) -> str:
        while True:
            self.number += self.rng.choice((1, 1, 1, 1, 1, 2, 3))
            text = card_id(self.number)
            if text not in self.used and not stdnum_isbn.is_valid(text):
                self.used.add(text)
                return text


def _cards(patrons: Iterable[Patron], lost_for: str) -> list[Card]:
    """One active card each; the students of one enrolment year share a box, as they got
    their cards together. ``lost_for`` also has a lost card, replaced from a later box."""
    used: set[str] = set()
    boxes: dict[str, _CardBox] = {}
    cards: list[Card] = []
    for patron in patrons:
        batch = patron.patron_id.split("-")[0] if patron.patron_id.startswith("S") else "staff"
        box = boxes.setdefault(batch, _CardBox(f"{SEED}:cards:{batch}", used))
        if patron.patron_id == lost_for:
            cards.append(Card(box.take(), patron.patron_id, CardStatus.LOST))
            replacement = _CardBox(f"{SEED}:cards:replacement", used, 16_000_000, 17_000_000)
            cards.append(Card(replacement.take(), patron.patron_id))
        else:
            cards.append(Card(box.take(), patron.patron_id))
    return cards


# --- timetable --------------------------------------------------------------------------


def _timetable() -> Timetable:
    """Classes in order across the week: the youngest get the first lunch halves."""
    slots = []
    for index, class_name in enumerate(CLASS_NAMES):
        start, end = SLOT_TIMES[index // SCHOOL_DAYS]
        slots.append(RotationSlot(index % SCHOOL_DAYS, start, end, class_name))
    return Timetable(tuple(slots))


# --- hints ------------------------------------------------------------------------------


def _patron_hint(card: Card, patron: Patron, what: str) -> DemoHint:
    detail = f"{patron.name} {patron.class_name}" if patron.class_name else patron.name
    return DemoHint(card.card_id, what, detail)


def _hints(patrons: list[Patron], cards: list[Card], catalogue: Catalogue, lost_for: str) -> tuple[DemoHint, ...]:
    by_id = {p.patron_id: p for p in patrons}
    active_card = {c.patron_id: c for c in cards if c.status is CardStatus.ACTIVE}

    def first(role: Role, class_name: str | None = None, status: PatronStatus = PatronStatus.ACTIVE) -> Patron:
        return next(
            p for p in patrons
            if p.role is role and p.status is status and p.patron_id != lost_for
            and (class_name is None or p.class_name == class_name)
        )

    student = first(Role.STUDENT, "3-1")
    helper = first(Role.STUDENT_LIBRARIAN, "5-1")
    teacher = first(Role.TEACHER, "3-1")
    librarian = first(Role.LIBRARIAN)
    suspended = first(Role.STUDENT, status=PatronStatus.SUSPENDED)
    lost = next(c for c in cards if c.status is CardStatus.LOST)

    items = {i.item_id: i for i in catalogue.items}
    labelled = next(i for i in catalogue.items if i.title == "草房子" and i.barcode)
    # the biggest class set whose edition has no labelled copy elsewhere
    isbn_copies = Counter(i.isbn13 for i in catalogue.items if i.isbn13)
    pure_sets = [s for s in catalogue.class_sets if isbn_copies[items[s[0]].isbn13 or ""] == len(s)]
    shared = items[max(pure_sets, key=len)[0]]
    old = items[catalogue.old_editions[0]]
    dictionary = next(i for i in catalogue.items if i.item_type is ItemType.REFERENCE and i.barcode)
    assert labelled.barcode and shared.isbn13 and old.isbn10 and dictionary.barcode

    return (
        _patron_hint(active_card[student.patron_id], student, N_("Student card")),
        _patron_hint(active_card[helper.patron_id], helper, N_("Student librarian card")),
        _patron_hint(active_card[teacher.patron_id], teacher, N_("Class teacher card")),
        _patron_hint(active_card[librarian.patron_id], librarian, N_("Teacher-librarian card")),
        _patron_hint(active_card[suspended.patron_id], suspended, N_("Card of a suspended student (borrowing refused)")),
        _patron_hint(lost, by_id[lost.patron_id], N_("Lost card (refused; the student has a new one)")),
        DemoHint(labelled.barcode, N_("Book with a library label"), labelled.title),
        DemoHint(shared.isbn13, N_("Shared ISBN: several unlabelled copies"), shared.title),
        DemoHint(old.isbn10, N_("Old book with an ISBN-10 barcode"), old.title),
        DemoHint(dictionary.barcode, N_("Reference book: in-room use only"), dictionary.title),
        DemoHint(catalogue.unknown_isbn13, N_("Unknown ISBN: not in the catalogue")),
    )


# --- the school -------------------------------------------------------------------------


def build_demo_school(today: date) -> DemoSchool:
    """The demo school as it is on ``today``: the roster of that school year, the terms and
    holidays around it. Same ``today``, same school."""
    year = academic_year(today)
    patrons = _roster(year)
    rng = random.Random(f"{SEED}:lost-card:{year}")
    lost_for = rng.choice([p.patron_id for p in patrons if p.role is Role.STUDENT and p.status is PatronStatus.ACTIVE])
    cards = _cards(patrons, lost_for)
    catalogue = build_catalogue(CLASS_NAMES, today, f"{SEED}:catalogue")
    return DemoSchool(
        name=f"{SCHOOL_NAME_ZH} {SCHOOL_NAME_EN}",
        patrons=tuple(patrons),
        cards=tuple(cards),
        items=catalogue.items,
        calendar=build_calendar(today),
        policy=DEFAULT_POLICY,
        timetable=_timetable(),
        hints=_hints(patrons, cards, catalogue, lost_for),
    )
