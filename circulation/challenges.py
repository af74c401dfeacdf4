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


def counted(challenge: Challenge, checkouts: Iterable[Checkout]) -> int:
    """A child's checkouts in the period, not capped at the goal: each book once; categories
    once each (a book without a category counts for no category)."""
    inside = [c for c in checkouts if challenge.start <= c.at.date() <= challenge.end]
    if challenge.by_category:
        return len({c.category for c in inside if c.category})
    return len({c.item for c in inside})


def progress(challenge: Challenge, checkouts: Iterable[Checkout]) -> Progress:
    """A child's progress towards the goal (``counted``, capped at the goal: "3 of 3")."""
    return Progress(done=min(counted(challenge, checkouts), challenge.goal), goal=challenge.goal)


# -- the school's award rules -----------------------------------------------------------------


@dataclass(frozen=True)
class AwardRules:
    """The school's own rules for a challenge's awards. 阅读之星 (reading star): a child who
    reached the goal and, if set, counted at least ``star_at_least`` (books or categories, as
    the goal); at most ``stars_per_class`` per class if set (the most first; ties share the
    place, so a tie at the last place awards them all). 书香班级 (book-loving class): only if
    ``class_share`` is set, a class where at least that percentage of its children reached
    the goal and, if set, its children counted ``class_average`` on average."""

    star_at_least: int | None = None
    stars_per_class: int | None = None
    class_share: int | None = None
    class_average: int | None = None


@dataclass(frozen=True)
class Reader:
    """A child taking part: ``counted`` books (or categories) in the period."""

    key: str
    class_name: str
    counted: int


def reading_stars(goal: int, rules: AwardRules, readers: Iterable[Reader]) -> set[str]:
    """The keys of the children the rules make reading stars."""
    least = max(goal, rules.star_at_least or 0)
    by_class: dict[str, list[Reader]] = {}
    for reader in readers:
        if reader.counted >= least:
            by_class.setdefault(reader.class_name, []).append(reader)
    stars = set()
    for eligible in by_class.values():
        for reader in eligible:
            place = 1 + sum(other.counted > reader.counted for other in eligible)
            if rules.stars_per_class is None or place <= rules.stars_per_class:
                stars.add(reader.key)
    return stars


def book_loving(goal: int, rules: AwardRules, readers: Iterable[Reader]) -> set[str]:
    """The classes the rules make book-loving classes (none when no share is set)."""
    if rules.class_share is None:
        return set()
    children: dict[str, int] = {}
    reached: dict[str, int] = {}
    total: dict[str, int] = {}
    for reader in readers:
        children[reader.class_name] = children.get(reader.class_name, 0) + 1
        reached[reader.class_name] = reached.get(reader.class_name, 0) + (reader.counted >= goal)
        total[reader.class_name] = total.get(reader.class_name, 0) + reader.counted
    return {class_name for class_name, n in children.items()
            if reached[class_name] * 100 >= rules.class_share * n
            and (rules.class_average is None or total[class_name] >= rules.class_average * n)}
