"""The demo school is what newcomers, screenshots and other tests run on: its data must be
valid by the standards the kiosk speaks (ISBN, library barcodes, card ids), realistic in
shape, and must actually exercise the rules it claims to."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from stdnum import isbn, luhn

from bookcorner.circulation.calendar import due_date
from bookcorner.circulation.codes import CodeKind, LibraryBarcode, classify, library_barcode_kind
from bookcorner.circulation.model import CardStatus, ItemType, PatronStatus, Role
from bookcorner.circulation.policy import DEFAULT_POLICY
from bookcorner.circulation.rules import Identified, Reason, checkout, identify
from bookcorner.circulation.state import initial_state
from bookcorner.demo.catalogue import INSTITUTION
from bookcorner.demo.school import CLASS_NAMES, DemoSchool, build_demo_school

TODAY = date(2026, 11, 23)  # a Monday in the autumn term
#: in the autumn term, in the spring term, in the summer holiday, in the winter holiday
TODAYS = (TODAY, date(2026, 4, 15), date(2026, 8, 10), date(2027, 2, 1))


@pytest.fixture(scope="module")
def school() -> DemoSchool:
    return build_demo_school(TODAY)


@pytest.fixture(scope="module")
def schools() -> dict[date, DemoSchool]:
    return {day: build_demo_school(day) for day in TODAYS}


def students(school: DemoSchool, class_name: str | None = None):
    return [
        p for p in school.patrons
        if p.role in (Role.STUDENT, Role.STUDENT_LIBRARIAN) and (class_name is None or p.class_name == class_name)
    ]


# --- determinism ------------------------------------------------------------------------


def test_same_day_same_school_whatever_the_global_random_state(school: DemoSchool) -> None:
    random.seed(1)
    first = build_demo_school(TODAY)
    random.seed(2)
    random.random()
    second = build_demo_school(TODAY)
    assert first == second == school


def test_children_keep_their_id_name_and_card_as_they_move_up(schools: dict[date, DemoSchool]) -> None:
    this_year, next_year = schools[date(2026, 4, 15)], schools[TODAY]
    before = {p.patron_id: p for p in students(this_year)}
    after = {p.patron_id: p for p in students(next_year)}
    staying = set(before) & set(after)
    assert len(staying) > 200  # everyone but the leavers of grade 6 and the new grade 1
    for pid in staying:
        assert before[pid].name == after[pid].name
        assert int(after[pid].class_name[0]) == int(before[pid].class_name[0]) + 1
    card = lambda s: {c.patron_id: c.card_id for c in s.cards if c.status is CardStatus.ACTIVE}  # noqa: E731
    same = sum(card(this_year)[pid] == card(next_year)[pid] for pid in staying)
    assert same >= len(staying) - 2  # only the students whose card was lost get a new one
    assert [i.barcode for i in this_year.items] == [i.barcode for i in next_year.items]


# --- catalogue --------------------------------------------------------------------------


def test_every_isbn_is_valid_and_normalised(school: DemoSchool) -> None:
    books = [i for i in school.items if i.item_type is not ItemType.PERIODICAL]
    for item in books:
        assert item.isbn13 is not None, item
        assert re.fullmatch(r"97[89][0-9]{10}", item.isbn13), item
        assert isbn.is_valid(item.isbn13) and isbn.isbn_type(item.isbn13) == "ISBN13"
        assert isbn.to_isbn13(isbn.compact(item.isbn13)) == item.isbn13
        if item.isbn13.startswith("978"):
            assert item.isbn10 == isbn.to_isbn10(item.isbn13)
            assert isbn.is_valid(item.isbn10) and isbn.to_isbn13(item.isbn10) == item.isbn13
        else:
            assert item.isbn10 is None
    chinese = sum(i.isbn13.startswith("9787") for i in books)
    assert chinese >= 0.95 * len(books)
    for item in school.items:
        if item.item_type is ItemType.PERIODICAL:
            assert item.isbn13 is None and item.isbn10 is None and item.barcode


def test_library_barcodes_are_luhn_valid_item_barcodes(school: DemoSchool) -> None:
    barcodes = [i.barcode for i in school.items if i.barcode]
    assert len(barcodes) == len(set(barcodes))
    for code in barcodes:
        assert re.fullmatch(r"3[0-9]{13}", code)
        assert code[1:5] == INSTITUTION
        assert luhn.is_valid(code)
        assert library_barcode_kind(code) is LibraryBarcode.ITEM


def test_catalogue_shape(school: DemoSchool) -> None:
    items = school.items
    assert 300 <= len(items) <= 400
    assert len({i.item_id for i in items}) == len(items)
    types = Counter(i.item_type for i in items)
    assert 8 <= types[ItemType.REFERENCE] <= 12
    assert 8 <= types[ItemType.PERIODICAL] <= 12
    isbn_only = [i for i in items if i.barcode is None]
    assert all(i.isbn13 for i in isbn_only)
    assert 0.10 <= len(isbn_only) / len(items) <= 0.20
    assert all(i.home_corner in CLASS_NAMES for i in items)
    for item in items:
        assert item.title
        if item.item_type is not ItemType.PERIODICAL:
            assert item.author and re.fullmatch(r"[A-Z][A-Z0-9.\-]*/[0-9]+", item.call_number or ""), item
    # the dictionaries are there and are reference books
    dictionaries = [i for i in items if i.title.startswith("新华字典")]
    assert dictionaries and all(i.item_type is ItemType.REFERENCE for i in dictionaries)


def test_class_sets_share_one_printed_isbn(school: DemoSchool) -> None:
    by_isbn: dict[str, list] = {}
    for item in school.items:
        if item.isbn13:
            by_isbn.setdefault(item.isbn13, []).append(item)
    unlabelled_sets = [copies for copies in by_isbn.values() if len(copies) >= 2 and all(c.barcode is None for c in copies)]
    assert len(unlabelled_sets) >= 2
    assert max(len(c) for c in unlabelled_sets) >= 3
    # copies of one edition are one record: same title, author and call number
    for copies in by_isbn.values():
        assert len({(c.title, c.author, c.call_number) for c in copies}) == 1


# --- roster and cards -------------------------------------------------------------------


def test_every_class_has_students_a_teacher_and_librarians_from_grade_3(school: DemoSchool) -> None:
    assert len(CLASS_NAMES) == 12
    for class_name in CLASS_NAMES:
        pupils = students(school, class_name)
        assert 20 <= len(pupils) <= 30, class_name
        helpers = [p for p in pupils if p.role is Role.STUDENT_LIBRARIAN]
        grade = int(class_name.split("-")[0])
        assert (2 <= len(helpers) <= 3) if grade >= 3 else not helpers, class_name
        teachers = [p for p in school.patrons if p.role is Role.TEACHER and p.class_name == class_name]
        assert len(teachers) == 1
    assert sum(p.role is Role.LIBRARIAN for p in school.patrons) == 1
    assert 250 <= len(students(school)) <= 400


def test_names_are_chinese_with_the_given_name_to_greet_by(school: DemoSchool) -> None:
    ids = [p.patron_id for p in school.patrons]
    assert len(ids) == len(set(ids))
    for patron in school.patrons:
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", patron.name), patron
        if patron.role in (Role.STUDENT, Role.STUDENT_LIBRARIAN):
            assert re.fullmatch(r"S20[0-9]{2}-0[12]-[0-3][0-9]", patron.patron_id)
            assert patron.given_name and 1 <= len(patron.given_name) <= 2
            assert patron.name.endswith(patron.given_name) and len(patron.name) > len(patron.given_name)
            assert patron.greeting_name == patron.given_name


def test_some_students_are_suspended_and_one_has_left(school: DemoSchool) -> None:
    statuses = Counter(p.status for p in school.patrons)
    assert statuses[PatronStatus.SUSPENDED] == 2
    assert statuses[PatronStatus.LEFT] == 1
    assert all(p.role is Role.STUDENT for p in school.patrons if p.status is not PatronStatus.ACTIVE)


def test_cards_are_reader_ids_that_never_look_like_a_book(school: DemoSchool) -> None:
    ids = [c.card_id for c in school.cards]
    assert len(ids) == len(set(ids))
    for card_id in ids:
        assert re.fullmatch(r"[0-9]{10}", card_id)
        assert int(card_id) < 1 << 32
        assert not isbn.is_valid(card_id)
    patrons = {p.patron_id for p in school.patrons}
    assert all(c.patron_id in patrons for c in school.cards)
    active = Counter(c.patron_id for c in school.cards if c.status is CardStatus.ACTIVE)
    assert set(active) == patrons and set(active.values()) == {1}
    lost = [c for c in school.cards if c.status is CardStatus.LOST]
    assert len(lost) == 1 and lost[0].patron_id in active
    assert not {c.card_id for c in school.cards} & {i.barcode for i in school.items}


# --- hints ------------------------------------------------------------------------------


def test_every_hint_classifies_as_described(school: DemoSchool) -> None:
    reference = school.reference()
    hints = {h.what: h for h in school.hints}
    assert len(hints) == len(school.hints) == 11

    def card(what: str):
        scanned = classify(hints[what].code, reference)
        assert scanned.kind is CodeKind.CARD, what
        card = reference.cards[scanned.card_id]
        return card, reference.patrons[card.patron_id]

    def item(what: str):
        scanned = classify(hints[what].code, reference)
        assert scanned.kind is CodeKind.ITEM, what
        return scanned, reference.copies(scanned.item_ids)

    c, p = card("Student card")
    assert c.status is CardStatus.ACTIVE and p.role is Role.STUDENT and p.status is PatronStatus.ACTIVE
    assert hints["Student card"].detail == f"{p.name} {p.class_name}"
    assert card("Student librarian card")[1].role is Role.STUDENT_LIBRARIAN
    c, p = card("Class teacher card")
    assert p.role is Role.TEACHER and p.class_name
    assert card("Teacher-librarian card")[1].role is Role.LIBRARIAN
    c, p = card("Card of a suspended student (borrowing refused)")
    assert c.status is CardStatus.ACTIVE and p.status is PatronStatus.SUSPENDED
    c, p = card("Lost card (refused; the student has a new one)")
    assert c.status is CardStatus.LOST
    assert any(o.patron_id == p.patron_id and o.status is CardStatus.ACTIVE for o in school.cards)

    scanned, copies = item("Book with a library label")
    assert len(copies) == 1 and copies[0].barcode == scanned.text
    assert copies[0].item_type is ItemType.CIRCULATING

    scanned, copies = item("Shared ISBN: several unlabelled copies")
    assert len(copies) >= 2 and all(c.barcode is None for c in copies)
    assert scanned.isbn13 == hints["Shared ISBN: several unlabelled copies"].code

    code = hints["Old book with an ISBN-10 barcode"].code
    assert len(code) == 10 and isbn.is_valid(code)
    scanned, copies = item("Old book with an ISBN-10 barcode")
    assert len(copies) == 1 and copies[0].isbn10 == code and copies[0].barcode is None

    scanned, copies = item("Reference book: in-room use only")
    assert all(c.item_type is ItemType.REFERENCE for c in copies)

    code = hints["Unknown ISBN: not in the catalogue"].code
    assert isbn.is_valid(code) and code.startswith("9787")
    assert classify(code, reference).kind is CodeKind.UNKNOWN_ITEM


def test_hints_exercise_the_rules(school: DemoSchool) -> None:
    reference = school.reference()
    state = initial_state(reference)
    now = datetime.combine(TODAY, time(12, 10), tzinfo=ZoneInfo("Asia/Shanghai"))
    hints = {h.what: h for h in school.hints}

    def who(what: str) -> Identified:
        found = identify(reference, classify(hints[what].code, reference))
        assert isinstance(found, Identified), found
        return found

    def try_checkout(card_hint: str, book_hint: str):
        return checkout(reference, state, who(card_hint), classify(hints[book_hint].code, reference), now)

    done = try_checkout("Student card", "Book with a library label")
    assert done.ok and done.result.due == TODAY + timedelta(days=7)
    assert try_checkout("Student card", "Shared ISBN: several unlabelled copies").ok
    assert try_checkout("Student card", "Old book with an ISBN-10 barcode").ok
    assert try_checkout("Student card", "Reference book: in-room use only").result.reason is Reason.REFERENCE_ONLY
    assert try_checkout("Student card", "Unknown ISBN: not in the catalogue").result.reason is Reason.ITEM_UNKNOWN
    suspended = try_checkout("Card of a suspended student (borrowing refused)", "Book with a library label")
    assert suspended.result.reason is Reason.PATRON_SUSPENDED
    lost = identify(reference, classify(hints["Lost card (refused; the student has a new one)"].code, reference))
    assert lost.result.reason is Reason.CARD_NOT_ACTIVE


# --- calendar ---------------------------------------------------------------------------


def test_policy_is_the_default(school: DemoSchool) -> None:
    assert school.policy is DEFAULT_POLICY


@pytest.mark.parametrize("today", TODAYS)
def test_terms_around_today(schools: dict[date, DemoSchool], today: date) -> None:
    calendar = schools[today].calendar
    term = calendar.term_on(today)
    in_term = today in (TODAY, date(2026, 4, 15))
    assert (term is not None) is in_term
    if term is not None:
        assert str(today.year) in term.name
    # the terms follow each other, a holiday between each two, and cover today's surroundings
    assert calendar.terms[0].start < today < calendar.terms[-1].end
    for before, after in zip(calendar.terms, calendar.terms[1:]):
        assert before.end < after.start
        gap = range(1, (after.start - before.end).days)
        assert all(not calendar.is_open(before.end + timedelta(days=n)) for n in gap)
    for term in calendar.terms:
        assert calendar.is_open(term.start) and calendar.is_open(term.end)
        assert term.start.weekday() == 0 or term.start.month == 9
        assert term.end.weekday() == 4
        if term.start.month >= 8:
            assert term.start.month == 9 and term.start.day <= 3
            assert term.end.month == 1 and 8 <= term.end.day <= 18
        else:
            assert (term.start.month, term.start.day) >= (2, 15) and term.start.month <= 3
            assert term.end.month == 7 and term.end.day <= 7
        open_days = calendar.open_days_between(term.start - timedelta(days=1), term.end)
        assert 75 <= open_days <= 100, term


def test_public_holidays_are_closed(school: DemoSchool) -> None:
    calendar = school.calendar
    for year in (2026, 2027):
        assert all(not calendar.is_open(date(year, 10, d)) for d in range(1, 8))
        assert all(not calendar.is_open(date(year, 5, d)) for d in range(1, 6))
        assert not calendar.is_open(date(year, 1, 1))
    assert not calendar.is_open(date(2027, 4, 5))  # Qingming, a Monday
    assert not calendar.is_open(date(2027, 6, 9))  # Dragon Boat, a Wednesday
    assert not calendar.is_open(date(2026, 9, 25))  # Mid-Autumn, a Friday
    assert calendar.is_open(date(2026, 11, 23))


def test_holiday_loans_are_lent_at_the_end_of_term_and_due_when_school_starts(school: DemoSchool) -> None:
    calendar = school.calendar
    assert len(calendar.holiday_loans) >= 4
    for window in calendar.holiday_loans:
        term = calendar.term_on(window.checkout_from)
        assert term is not None and window.checkout_until == term.end
        assert 7 <= (term.end - window.checkout_from).days <= 16
        assert calendar.is_open(window.due) and window.due > term.end
        following = [t for t in calendar.terms if t.start > term.end]
        if following:
            assert window.due == following[0].start
        else:
            assert window.due.month == 9
        assert ("寒假" if term.end.month == 1 else "暑假") in window.name


@pytest.mark.parametrize("today", TODAYS)
def test_due_dates_are_open_days_within_term_for_every_day_of_every_term(
    schools: dict[date, DemoSchool], today: date
) -> None:
    calendar = schools[today].calendar
    starts = sorted(t.start for t in calendar.terms)
    for term in calendar.terms:
        next_start = next((s for s in starts if s > term.end), None)
        day = term.start
        while day <= term.end:
            for loan_days in (7, 14, 28):
                for holiday_loans in (True, False):
                    due = due_date(calendar, day, loan_days, holiday_loans)
                    assert due is not None, (day, loan_days)
                    assert calendar.is_open(due), (day, loan_days, due)
                    assert due >= day
                    window = calendar.holiday_loan_on(day) if holiday_loans else None
                    if window is None:
                        assert due <= term.end
                    elif next_start is not None:
                        assert due == next_start
            day += timedelta(days=1)


# --- timetable --------------------------------------------------------------------------


def test_each_class_has_one_weekly_slot_at_lunch_or_after_school(school: DemoSchool) -> None:
    slots = school.timetable.slots
    assert sorted(s.class_name for s in slots) == sorted(CLASS_NAMES)
    lunch, after_school = (time(12, 0), time(12, 50)), (time(15, 40), time(16, 50))
    for slot in slots:
        assert 0 <= slot.weekday <= 4
        assert any(lo <= slot.start < slot.end <= hi for lo, hi in (lunch, after_school)), slot
    assert len({s.weekday for s in slots}) == 5
    for a in slots:
        for b in slots:
            if a is not b and a.weekday == b.weekday:
                assert a.end <= b.start or b.end <= a.start, (a, b)
    monday = TODAY  # a Monday
    for slot in slots:
        moment = datetime.combine(monday + timedelta(days=slot.weekday), slot.start)
        assert school.timetable.slot_at(moment) == slot
    assert school.timetable.slot_at(datetime.combine(monday, time(10, 0))) is None
