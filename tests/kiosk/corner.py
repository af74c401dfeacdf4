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
