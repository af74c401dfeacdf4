"""What to read next, as a pure function: books on the shelf now, never one the child read
or holds, never a reference-only book; lists by grade or class; co-reading counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from bookcorner.circulation.model import Item, ItemStatus, ItemType, Patron, Role
from bookcorner.circulation.reference import build_reference
from bookcorner.circulation.state import CirculationState, Loan
from bookcorner.circulation.suggestions import (
    PastLoan,
    ReadingGuide,
    ReadingList,
    book_key,
    co_reading_counts,
    grade_of,
    suggest,
    weekly_picks,
)

NOW = datetime(2026, 11, 23, 12, 5, tzinfo=timezone.utc)
CHILD = Patron("S1", "王小明", Role.STUDENT, "3-2", "小明")
BOOKS = [Item(f"I{n}", f"Book {n}", isbn13=None, home_corner="3-2" if n < 8 else "5-1") for n in range(10)]
DICTIONARY = Item("I20", "新华字典", item_type=ItemType.REFERENCE, home_corner="3-2")
LOST = Item("I21", "Lost book", status=ItemStatus.LOST, home_corner="3-2")
KEYS = {item.item_id: book_key(item) for item in [*BOOKS, DICTIONARY, LOST]}


def guide(*lists: ReadingList, after: dict | None = None) -> ReadingGuide:
    return ReadingGuide(lists, MappingProxyType(after or {}))


def reference(reading: ReadingGuide):
    return build_reference([CHILD], [], [*BOOKS, DICTIONARY, LOST], reading=reading)


GRADE3 = ReadingList("g3", "Grade 3", tuple(KEYS[i] for i in ("I20", "I21", "I1", "I2", "I3", "I4", "I9")),
                     frozenset({3}))


def titles(items):
    return [item.title for item in items]


def test_grades_from_class_names():
    assert [grade_of(n) for n in ("3-2", "3年级2班", "三年级二班", "12.1", "Year", None, "")] == [
        3, 3, 3, 12, None, None, None]


def test_the_grade_list_minus_reference_only_lost_and_other_corners():
    ref = reference(guide(GRADE3))
    got = suggest(ref, CirculationState(), CHILD, NOW, shelf={"3-2"})
    assert titles(got) == ["Book 1", "Book 2", "Book 3"]
    # no shelf given: every corner's books (Book 9 is 5-1's) may come up, still in list order
    assert titles(suggest(ref, CirculationState(), CHILD, NOW, limit=10)) == [
        "Book 1", "Book 2", "Book 3", "Book 4", "Book 9"]


def test_never_a_book_read_held_or_on_loan_to_another_child():
    ref = reference(guide(GRADE3))
    mine = Loan("L1", "I2", "S1", NOW.date(), NOW)
    theirs = Loan("L2", "I3", "S9", NOW.date(), NOW)
    state = CirculationState(loans={"I2": mine, "I3": theirs}, by_patron={"S1": ("I2",), "S9": ("I3",)})
    assert titles(suggest(ref, state, CHILD, NOW, read={KEYS["I1"]}, shelf={"3-2"})) == ["Book 4"]


def test_a_book_sent_to_repair_here_is_not_on_the_shelf():
    ref = reference(guide(GRADE3))
    state = CirculationState(item_status={"I1": ItemStatus.IN_REPAIR})
    assert titles(suggest(ref, state, CHILD, NOW, shelf={"3-2"})) == ["Book 2", "Book 3", "Book 4"]


def test_what_the_grade_read_next_comes_before_the_lists():
    after = {3: {KEYS["I5"]: ((KEYS["I6"], 3), (KEYS["I7"], 2), (KEYS["I20"], 9))}, 4: {KEYS["I5"]: ((KEYS["I4"], 9),)}}
    ref = reference(guide(GRADE3, after=after))
    assert titles(suggest(ref, CirculationState(), CHILD, NOW, just=[KEYS["I5"]], shelf={"3-2"})) == [
        "Book 6", "Book 7", "Book 1"]


def test_lists_for_another_grade_or_class_do_not_apply():
    other = ReadingList("c", "5-1's", (KEYS["I1"],), frozenset({5}), frozenset({"5-1"}))
    mine = ReadingList("m", "3-2's teacher", (KEYS["I4"],), frozenset(), frozenset({"3-2"}))
    fest = ReadingList("f", "Festival", (KEYS["I5"],))
    ref = reference(guide(other, mine, fest))
    assert set(titles(suggest(ref, CirculationState(), CHILD, NOW))) == {"Book 4", "Book 5"}
    assert suggest(reference(guide()), CirculationState(), CHILD, NOW) == []
    assert titles(weekly_picks(ref, CirculationState(), "5-1", NOW)) == ["Book 1", "Book 5"]


def test_the_same_answer_every_time_and_fast():
    import time

    many = [Item(f"M{n}", f"M{n}", isbn13=None) for n in range(3000)]
    big = guide(ReadingList("g3", "big", tuple(f"item:M{n}" for n in range(0, 3000, 7)), frozenset({3})))
    ref = build_reference([CHILD], [], many, reading=big)
    first = suggest(ref, CirculationState(), CHILD, NOW)
    start = time.perf_counter()
    for _ in range(20):
        assert suggest(ref, CirculationState(), CHILD, NOW) == first
    assert (time.perf_counter() - start) / 20 < 0.05


def test_co_reading_counts_once_per_child_and_only_pairs_several_children_made():
    t = NOW

    def loans(child, grade, *books, gap=7):
        return [PastLoan(child, grade, b, t + timedelta(days=gap * i)) for i, b in enumerate(books)]

    history = (loans("a", 3, "X", "Y", "X", "Y") + loans("b", 3, "X", "Y", "Z") + loans("c", 3, "X", "Z")
               + loans("d", 4, "X", "Y") + loans("e", 3, "X", "W", gap=60))
    counts = co_reading_counts(history)
    # a's X→Y twice counts once; Y→X (a) and Y→Z (b) were one child each; e's W came too late
    assert counts == {3: {"X": (("Y", 2), ("Z", 2))}}
    every = co_reading_counts(history, min_children=1)
    assert every[4] == {"X": (("Y", 1),)} and every[3]["Y"] == (("X", 1), ("Z", 1))
    assert "W" not in {b for pairs in every[3].values() for b, _n in pairs}


@pytest.mark.parametrize("status", [ItemStatus.WITHDRAWN, ItemStatus.IN_REPAIR])
def test_withdrawn_or_in_repair_in_the_snapshot(status):
    books = [replace(BOOKS[1], status=status), *BOOKS[2:]]
    ref = build_reference([CHILD], [], books, reading=guide(GRADE3))
    assert "Book 1" not in titles(suggest(ref, CirculationState(), CHILD, NOW))


def test_this_weeks_picks_turn_with_the_week_and_cover_the_list():
    ref = reference(guide(GRADE3))
    seen, weekly = set(), []
    for week in range(4):
        picks = titles(weekly_picks(ref, CirculationState(), "3-2", NOW + timedelta(weeks=week), shelf={"3-2"}))
        assert len(picks) == 3 and picks == titles(weekly_picks(ref, CirculationState(), "3-2",
                                                               NOW + timedelta(weeks=week, days=2), shelf={"3-2"}))
        weekly.append(picks)
        seen |= set(picks)
    assert seen == {"Book 1", "Book 2", "Book 3", "Book 4"}  # the grade's list on the shelf, over the weeks
    assert weekly[0] != weekly[1]
