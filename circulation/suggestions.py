"""What to read next: up to three books on this corner's shelf, for one child, now.

Pure: the reference (with its reading guide: the librarian's lists and the co-reading
counts the central server computed), the circulation state, the child, what they have
read and "now" come in; a list of books goes out. Nothing here names a child: the guide
is counts per grade and book, and the child's own history is the caller's to pass.

A *book* is a title, not a copy: its ISBN-13 when it has one (copies of one edition are
one book), else its item id (``item:<id>``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from bookcorner.circulation.challenges import Challenge
from bookcorner.circulation.model import Item, ItemStatus, Patron, Role

if TYPE_CHECKING:
    from bookcorner.circulation.reference import Reference
    from bookcorner.circulation.state import CirculationState

#: at most this many suggestions on the screen
LIMIT = 3
#: a co-reading count is worth this many list places (a pair several children read beats a list's order)
_CO_READ_WEIGHT = 10.0
#: what followed the books the child read before counts too, for less than what followed this one
_EARLIER_WEIGHT = 0.2
#: and, below a list's place, what the grade reads next most, after anything
_GRADE_WEIGHT = 0.001
_GRADE = re.compile(r"^\s*(\d{1,2})")
_CHINESE_GRADE = re.compile(r"^\s*([一二三四五六七八九])年级")
_CHINESE_DIGITS = {c: i for i, c in enumerate("一二三四五六七八九", start=1)}


@dataclass(frozen=True, slots=True)
class ReadingList:
    """One of the librarian's lists: the school's for a grade, a festival's, a teacher's."""

    list_id: str
    name: str
    #: books (see ``book_key``) in the list's order
    books: tuple[str, ...]
    #: the grades it is for (empty: every grade)
    grades: frozenset[int] = frozenset()
    #: the classes it is for (empty: every class of its grades)
    class_names: frozenset[str] = frozenset()

    def is_for(self, grade: int | None, class_name: str | None) -> bool:
        if self.class_names:
            return class_name in self.class_names
        return not self.grades or grade in self.grades


@dataclass(frozen=True, slots=True)
class ReadingGuide:
    lists: tuple[ReadingList, ...] = ()
    #: per grade, per book: the books children of that grade borrowed next, with how many
    #: children did, most first (counts only: no child is named)
    next_books: Mapping[int, Mapping[str, tuple[tuple[str, int], ...]]] = field(
        default_factory=lambda: MappingProxyType({}))
    #: the reading challenges the kiosks show a child's progress in
    challenges: tuple[Challenge, ...] = ()


NO_GUIDE = ReadingGuide()


def book_key(item: Item) -> str:
    return item.isbn13 or f"item:{item.item_id}"


def grade_of(class_name: str | None) -> int | None:
    """The grade a class name starts with: "3-2", "3年级2班", "三年级二班" are grade 3."""
    if not class_name:
        return None
    found = _GRADE.match(class_name)
    if found:
        return int(found.group(1))
    chinese = _CHINESE_GRADE.match(class_name)
    return _CHINESE_DIGITS[chinese.group(1)] if chinese else None


def on_shelf(reference: Reference, state: CirculationState, patron: Patron,
             shelf: Collection[str] | None = None) -> dict[str, Item]:
    """One copy of each book the child could take from the shelf now: not on loan, not in
    repair, lost or withdrawn, loanable to them, and (with ``shelf``) at home in one of
    those corners. By book, the first copy by item id."""
    found: dict[str, Item] = {}
    policy = reference.policy
    for item_id in sorted(reference.items):
        item = reference.items[item_id]
        if shelf is not None and item.home_corner is not None and item.home_corner not in shelf:
            continue
        if state.loan_of(item_id) is not None or state.status_of(item) is not ItemStatus.AVAILABLE:
            continue
        if not policy.rule(patron.role, item.item_type).loanable:
            continue
        found.setdefault(book_key(item), item)
    return found


def _scores(guide: ReadingGuide, grade: int | None, class_name: str | None,
            just: Iterable[str], read: Iterable[str] = ()) -> dict[str, float]:
    scores: dict[str, float] = {}
    for reading_list in guide.lists:
        if not reading_list.is_for(grade, class_name):
            continue
        size = len(reading_list.books)
        for place, book in enumerate(reading_list.books):
            scores[book] = max(scores.get(book, 0.0), 1.0 - place / (size + 1))
    by_book = guide.next_books.get(grade, {}) if grade is not None else {}
    for pairs in by_book.values():  # last of all: what the grade goes on to read most, whatever came before
        for following, count in pairs:
            scores[following] = scores.get(following, 0.0) + _GRADE_WEIGHT * count
    for seeds, weight in ((just, _CO_READ_WEIGHT), (read, _CO_READ_WEIGHT * _EARLIER_WEIGHT)):
        for book in seeds:
            for following, count in by_book.get(book, ()):
                scores[following] = scores.get(following, 0.0) + weight * count
    return scores


def suggest(reference: Reference, state: CirculationState, patron: Patron, now: datetime,
            just: Iterable[str] = (), read: Collection[str] = (), shelf: Collection[str] | None = None,
            limit: int = LIMIT) -> list[Item]:
    """Up to ``limit`` books for ``patron`` after they borrowed or returned the books
    ``just`` (book keys): what children of their grade went on to read after those (and,
    for less, after the books they read before), then their grade's and class's lists; never a book in ``read`` (theirs) or one they hold
    now. Ties go the same way every time (the book key), with the week of ``now`` turning
    a list's order so that one list does not show the same three books all term."""
    just = tuple(just)
    grade = grade_of(patron.class_name)
    scores = _scores(reference.reading, grade, patron.class_name, just, read)
    if not scores:
        return []
    holding = {book_key(reference.items[loan.item_id]) for loan in state.loans_of(patron.patron_id)
               if loan.item_id in reference.items}
    excluded = set(read) | holding | set(just)
    shelf_books = on_shelf(reference, state, patron, shelf)
    week = now.isocalendar().week
    ranked = sorted((book for book in scores if book in shelf_books and book not in excluded),
                    key=lambda book: (-scores[book], (hash_of(book) + week) % 997, book))
    return [shelf_books[book] for book in ranked[:limit]]


def hash_of(book: str) -> int:
    """A stable small number for a book (Python's ``hash`` differs from run to run)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(book[-8:]))


def weekly_picks(reference: Reference, state: CirculationState, class_name: str, now: datetime,
                 shelf: Collection[str] | None = None, limit: int = LIMIT) -> list[Item]:
    """"This week's picks" for a class at the idle screen: its lists' books on the shelf
    now, a different stretch of the lists each week (no child's history: it is the whole
    class's screen)."""
    someone = Patron("picks", "picks", role=Role.STUDENT, class_name=class_name)
    grade = grade_of(class_name)
    books: list[str] = []
    for reading_list in reference.reading.lists:
        if reading_list.is_for(grade, class_name):
            books += [book for book in reading_list.books if book not in books]
    shelf_books = on_shelf(reference, state, someone, shelf)
    there = [book for book in books if book in shelf_books]
    if not there:
        return []
    start = (now.isocalendar().week * limit) % len(there)
    turned = there[start:] + there[:start]
    return [shelf_books[book] for book in turned[:limit]]


# -- the co-reading counts (computed on the central server, and by the bench) --------------

#: a pair of books shipped only when at least this many children read one after the other:
#: a count of one would point at a child
MIN_CHILDREN = 2
#: the books after a book that count as "went on to borrow": the next ones, within a while
FOLLOWING = 3
FOLLOWING_DAYS = 45
#: what a kiosk gets per book (the most read next)
TOP_NEXT = 8


@dataclass(frozen=True, slots=True)
class PastLoan:
    """One loan as the co-reading counts see it: a child (any opaque key, never shipped),
    their grade when they borrowed, the book, when."""

    child: str
    grade: int
    book: str
    out_at: datetime


def co_reading_counts(loans: Iterable[PastLoan], min_children: int = MIN_CHILDREN,
                      top: int = TOP_NEXT) -> dict[int, dict[str, tuple[tuple[str, int], ...]]]:
    """For each grade and book, the books children of that grade borrowed next (up to
    ``FOLLOWING`` books within ``FOLLOWING_DAYS``), counted once per child, pairs fewer
    than ``min_children`` children made left out. ``loans`` in any order."""
    by_child: dict[str, list[PastLoan]] = {}
    for loan in loans:
        by_child.setdefault(loan.child, []).append(loan)
    pairs: dict[tuple[int, str, str], int] = {}
    for history in by_child.values():
        history.sort(key=lambda loan: (loan.out_at, loan.book))
        seen: set[tuple[int, str, str]] = set()
        for index, loan in enumerate(history):
            for later in _following(history, index):
                seen.add((loan.grade, loan.book, later.book))
        for pair in seen:
            pairs[pair] = pairs.get(pair, 0) + 1
    out: dict[int, dict[str, list[tuple[str, int]]]] = {}
    for (grade, book, following), count in pairs.items():
        if count >= min_children:
            out.setdefault(grade, {}).setdefault(book, []).append((following, count))
    return {grade: {book: tuple(sorted(nexts, key=lambda p: (-p[1], p[0]))[:top]) for book, nexts in by_book.items()}
            for grade, by_book in out.items()}


def _following(history: list[PastLoan], index: int) -> Iterator[PastLoan]:
    loan, taken, names = history[index], 0, {history[index].book}
    for later in history[index + 1:]:
        if taken >= FOLLOWING or (later.out_at - loan.out_at).days > FOLLOWING_DAYS:
            return
        if later.book in names:
            continue
        names.add(later.book)
        taken += 1
        yield later
