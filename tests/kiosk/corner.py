"""The test school (tests/school.py) as a kiosk's corner sees it: plus its librarian, her
card and PIN, and a card and a book the school does not know; and the kiosk's monotonic
clock, moved on by the test. Plain values and helpers: the fixtures built from them are in
tests/kiosk/conftest.py and tests/kiosk/ui/conftest.py."""

from __future__ import annotations

from bookcorner.circulation.model import Card, Patron, Role
from bookcorner.circulation.reference import Reference, build_reference
from bookcorner.kiosk.pin import hash_pin
from tests.school import reference

LIBRARIAN = Patron("L99", "薛老师", Role.LIBRARIAN)
LIBRARIAN_CARD = "0001000077"
PIN = "2468"
#: a cheap hash (scrypt n=2**10) keeps the PIN tests fast; the kiosk reads n from the hash
PIN_HASH = hash_pin(PIN, n=1 << 10)
UNKNOWN_CARD = "0005550001"
UNKNOWN_ISBN = "9787544253994"


class Ticker:
    """The kiosk's monotonic clock for session timeouts, moved on by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def school_reference() -> Reference:
    base = reference()
    return build_reference([*base.patrons.values(), LIBRARIAN], [*base.cards.values(), Card(LIBRARIAN_CARD, "L99")],
                           base.items.values(), base.policy, base.calendar, base.timetable)


def reading_guide():
    """Grade 3's list (a reference-only dictionary on it too) and what grade 3 read after 西游记."""
    from types import MappingProxyType

    from bookcorner.circulation.suggestions import ReadingGuide, ReadingList
    from tests.school import DICTIONARY, HONGLOUMENG, OLD_BOOK, SHUIHU, XIYOUJI

    grade3 = ReadingList("g3", "三年级推荐书目", (HONGLOUMENG.isbn13, DICTIONARY.isbn13, "9787020024759",
                                              OLD_BOOK.isbn13, XIYOUJI.isbn13), frozenset({3}))
    after = MappingProxyType({3: MappingProxyType({XIYOUJI.isbn13: ((SHUIHU.isbn13, 4), (HONGLOUMENG.isbn13, 2))})})
    return ReadingGuide((grade3,), after)


def reading_reference() -> Reference:
    """The test school with reading lists and co-reading counts."""
    from dataclasses import replace

    return replace(school_reference(), reading=reading_guide())
