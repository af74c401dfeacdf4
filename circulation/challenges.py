"""Reading challenges: a child's progress towards a goal over a period (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Challenge:
    """A goal of ``goal`` books (or ``goal`` different categories if ``by_category``)
    borrowed from ``start`` to ``end`` inclusive."""

    name: str
    start: date
    end: date
    goal: int
    by_category: bool = False
    challenge_id: str = ""
    #: the classes taking part (empty: every class)
    class_names: frozenset[str] = frozenset()

    def is_for(self, class_name: str | None) -> bool:
        return not self.class_names or class_name in self.class_names

    def __post_init__(self) -> None:
        if self.goal < 1:
            raise ValueError(f"challenge {self.name!r}: the goal must be at least 1, not {self.goal}")
        if self.end < self.start:
            raise ValueError(f"challenge {self.name!r}: it ends ({self.end}) before it starts ({self.start})")

    def running(self, now: datetime) -> bool:
        return self.start <= now.date() <= self.end


@dataclass(frozen=True)
class Checkout:
    item: str
    category: str
    at: datetime


@dataclass(frozen=True)
class Progress:
    done: int
    goal: int

    @property
    def reached(self) -> bool:
        return self.done >= self.goal


def category_of(call_number: str | None) -> str:
    """A book's category for a challenge: the main class of its Chinese Library Classification
    call number ("I287.5/12" is I, literature); "" when it has none."""
    head = (call_number or "").strip()[:1].upper()
    return head if "A" <= head <= "Z" else ""


def progress(challenge: Challenge, checkouts: Iterable[Checkout]) -> Progress:
    """Count a child's checkouts in the period: each book once; categories once each (a
    book without a category counts for no category)."""
    inside = [c for c in checkouts if challenge.start <= c.at.date() <= challenge.end]
    if challenge.by_category:
        keys = {c.category for c in inside if c.category}
    else:
        keys = {c.item for c in inside}
    return Progress(done=min(len(keys), challenge.goal), goal=challenge.goal)
