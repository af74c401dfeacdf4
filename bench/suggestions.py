"""What to read next, evaluated offline: do children borrow what the kiosk suggests?

    python -m bench.suggestions [--weeks 18] [--train-weeks 12] [--seed bench] [--timing-runs 3]

A term of the demo school's loans (its roster and catalogue, ``demo.school``) is
simulated with a seeded generator: each class borrows in its weekly slot, one or two
books a child (some children read more), returned the next week. Children pick books
the way classroom reading goes: at their grade's level mostly, from the kinds of books
they like, the next volume of a series they are in, a book a friend (two or three
classmates each) read lately, and popular books more than others. Only a book with a
copy free that day can be taken, never one the child read before.

The co-reading counts are trained (``circulation.suggestions.co_reading_counts``, as the
central server computes them, pairs fewer than two children made left out) on the first
``--train-weeks``; then for every borrow after them the kiosk's suggestions are computed
(``suggest``: the grade's recommended list and the counts, books on the shelf now, not
read, not held) and so is the baseline, "most borrowed this month" (the 30 days' most
borrowed books, with the same filters). A suggestion is a hit when the child borrows
that book within the next two weeks. The children in the simulation never see the
suggestions: this measures how well each predicts what they go on to read.

Printed: the share of suggestions borrowed within two weeks (and the share of borrows
with at least one hit) for both, their ratio, and the time to compute one child's
suggestions at the kiosk (p50/p99, goal under 20 ms). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType

from bench import conclude
from bench.store import summary

TARGET_MS = 20.0
HORIZON = timedelta(days=14)
MONTH = timedelta(days=30)
START = date(2026, 9, 7)  # a Monday in the autumn term


@dataclass
class Child:
    patron_id: str
    class_name: str
    grade: int
    #: books a week: 1 or 2, a few read more
    appetite: float
    tastes: dict[str, float]
    friends: list[str] = field(default_factory=list)
    read: set[str] = field(default_factory=set)
    last: str | None = None


@dataclass
class Library:
    """The catalogue as the simulation sees it: books (ISBN-13 or item key), their copies, level, kind, series."""

    copies: dict[str, list[str]]
    level: dict[str, tuple[int, int]]
    kind: dict[str, str]
    series: dict[str, tuple[str, int]]
    series_books: dict[str, list[str]]
    appeal: dict[str, float]


def _library(school, rng: random.Random) -> Library:
    from bookcorner.circulation.model import ItemType
    from bookcorner.circulation.suggestions import book_key
    from bookcorner.demo import catalogue as demo

    levels = {title: level for title, _a, _c, level in (*demo.WORKS, *demo.OLD_EDITIONS)}
    copies: dict[str, list[str]] = defaultdict(list)
    level, kind, series = {}, {}, {}
    series_books: dict[str, list[str]] = defaultdict(list)
    for item in school.items:
        if item.item_type is not ItemType.CIRCULATING:
            continue
        book = book_key(item)
        if book not in level:
            first, last = (int(g) for g in levels.get(item.title, "3-6").split("-"))
            level[book] = (first, last)
            kind[book] = (item.call_number or "I")[:2]
            if "·" in item.title:
                name = item.title.split("·")[0]
                series[book] = (name, len(series_books[name]))
                series_books[name].append(book)
        copies[book].append(item.item_id)
    appeal = {book: rng.paretovariate(1.6) for book in sorted(copies)}
    return Library(dict(copies), level, kind, series, dict(series_books), appeal)


def _children(school, library: Library, rng: random.Random) -> list[Child]:
    from bookcorner.circulation.model import Role
    from bookcorner.circulation.suggestions import grade_of

    kinds = sorted(set(library.kind.values()))
    children = []
    for patron in school.patrons:
        grade = grade_of(patron.class_name)
        if patron.role not in (Role.STUDENT, Role.STUDENT_LIBRARIAN) or grade is None:
            continue
        liked = rng.sample(kinds, min(2, len(kinds)))
        tastes = {k: (4.0 if k in liked else 1.0) for k in kinds}
        appetite = rng.choices((1.0, 1.5, 2.0), weights=(55, 30, 15))[0]
        children.append(Child(patron.patron_id, patron.class_name, grade, appetite, tastes))
    by_class: dict[str, list[Child]] = defaultdict(list)
    for child in children:
        by_class[child.class_name].append(child)
    for classmates in by_class.values():
        for child in classmates:
            others = [c.patron_id for c in classmates if c is not child]
            child.friends = rng.sample(others, min(len(others), rng.choice((2, 3))))
    return children


@dataclass
class Term:
    """What happened: every loan (child, book, when), and the shelf as the days went."""

    loans: list[tuple[str, str, datetime]] = field(default_factory=list)
    by_child: dict[str, list[tuple[datetime, str]]] = field(default_factory=lambda: defaultdict(list))


class Simulation:
    def __init__(self, school, seed: str) -> None:
        self.rng = random.Random(seed)
        self.library = _library(school, self.rng)
        self.children = _children(school, self.library, self.rng)
        self.by_id = {c.patron_id: c for c in self.children}
        self.out: dict[str, str] = {}  # item id -> patron id
        self.holding: dict[str, list[str]] = defaultdict(list)  # patron -> item ids
        self.term = Term()

    def free_copy(self, book: str) -> str | None:
        return next((i for i in self.library.copies[book] if i not in self.out), None)

    def _weight(self, child: Child, book: str) -> float:
        first, last = self.library.level[book]
        fit = 1.0 if first <= child.grade <= last else 0.12 if abs(child.grade - (first + last) / 2) <= 2 else 0.01
        return self.library.appeal[book] * fit * child.tastes.get(self.library.kind[book], 1.0)

    def _next_in_series(self, child: Child) -> str | None:
        if child.last is None or child.last not in self.library.series:
            return None
        name, _place = self.library.series[child.last]
        return next((b for b in self.library.series_books[name] if b not in child.read and self.free_copy(b)), None)

    def _from_friends(self, child: Child, now: datetime) -> str | None:
        recent = [b for f in child.friends for when, b in self.term.by_child[f][-3:] if now - when < timedelta(days=21)]
        recent = [b for b in recent if b not in child.read and self.free_copy(b)]
        return self.rng.choice(recent) if recent else None

    def choose(self, child: Child, now: datetime) -> str | None:
        roll = self.rng.random()
        if roll < 0.45:
            book = self._next_in_series(child)
            if book:
                return book
        if roll < 0.75:
            book = self._from_friends(child, now)
            if book:
                return book
        options = [b for b in self.library.copies if b not in child.read and self.free_copy(b)]
        if not options:
            return None
        return self.rng.choices(options, weights=[self._weight(child, b) for b in options])[0]

    def visit(self, child: Child, now: datetime, on_borrow: Callable[[Child, str, datetime], None]) -> None:
        for item_id in self.holding.pop(child.patron_id, []):
            self.out.pop(item_id, None)
        wanted = int(child.appetite) + (self.rng.random() < child.appetite % 1)
        for _ in range(wanted):
            book = self.choose(child, now)
            if book is None:
                return
            item_id = self.free_copy(book)
            assert item_id is not None
            self.out[item_id] = child.patron_id
            self.holding[child.patron_id].append(item_id)
            child.read.add(book)
            child.last = book
            self.term.loans.append((child.patron_id, book, now))
            self.term.by_child[child.patron_id].append((now, book))
            on_borrow(child, book, now)
            now += timedelta(seconds=40)

    def run(self, weeks: int, on_borrow: Callable[[Child, str, datetime], None]) -> None:
        classes = sorted({c.class_name for c in self.children})
        for week in range(weeks):
            for index, class_name in enumerate(classes):
                day = START + timedelta(weeks=week, days=index % 5)
                now = datetime(day.year, day.month, day.day, 4, 0, tzinfo=timezone.utc) + timedelta(
                    minutes=10 * (index // 5))
                members = [c for c in self.children if c.class_name == class_name]
                self.rng.shuffle(members)
                for child in members:
                    self.visit(child, now, on_borrow)
                    now += timedelta(minutes=1)


def _grade_lists(library: Library, rng: random.Random):
    """The school's recommended list per grade: 15 well-liked books of the grade's level."""
    from bookcorner.circulation.suggestions import ReadingList

    lists = []
    for grade in range(1, 7):
        fitting = sorted((b for b, (f, l) in library.level.items() if f <= grade <= l),
                         key=lambda b: -library.appeal[b] * rng.uniform(0.5, 1.5))
        lists.append(ReadingList(f"g{grade}", f"{grade}年级推荐书目", tuple(fitting[:15]), frozenset({grade})))
    return tuple(lists)


@dataclass
class Scores:
    shown: int = 0
    hits: int = 0
    borrows: int = 0
    borrows_with_hit: int = 0

    def figures(self) -> dict[str, float]:
        return {"suggestions": self.shown, "borrowed_within_2_weeks": self.hits,
                "share": round(self.hits / self.shown, 4) if self.shown else 0.0,
                "borrows": self.borrows,
                "borrows_with_a_hit": round(self.borrows_with_hit / self.borrows, 4) if self.borrows else 0.0}


def _score(scores: Scores, shown: list[str], later: set[str]) -> None:
    scores.borrows += 1
    scores.shown += len(shown)
    hits = sum(1 for b in shown if b in later)
    scores.hits += hits
    scores.borrows_with_hit += hits > 0


def evaluate(args) -> dict[str, object]:
    from bookcorner.circulation.model import Patron, Role
    from bookcorner.circulation.state import CirculationState
    from bookcorner.circulation.suggestions import LIMIT, PastLoan, ReadingGuide, co_reading_counts, suggest
    from bookcorner.demo.school import build_demo_school

    school = build_demo_school(START)
    sim = Simulation(school, args.seed)
    train_end = datetime.combine(START + timedelta(weeks=args.train_weeks), datetime.min.time(), timezone.utc)
    pending: list[tuple[str, datetime, list[str], list[str]]] = []
    timings: list[float] = []
    counts: dict | None = None
    reference = school.reference()
    lists = _grade_lists(sim.library, random.Random(args.seed + ":lists"))

    def on_borrow(child: Child, book: str, now: datetime) -> None:
        nonlocal counts, reference
        if now < train_end:
            return
        if counts is None:  # the first borrow after training: the server's counts as the kiosk gets them
            counts = co_reading_counts(PastLoan(c, sim.by_id[c].grade, b, t) for c, b, t in sim.term.loans
                                       if t < train_end)
            guide = ReadingGuide(lists, MappingProxyType({g: MappingProxyType(v) for g, v in counts.items()}))
            reference = replace(reference, reading=guide)
        state = CirculationState(loans=_loans(sim), by_patron={p: tuple(i) for p, i in sim.holding.items()})
        patron = Patron(child.patron_id, child.patron_id, Role.STUDENT, child.class_name)
        read = child.read - {book}
        started = time.perf_counter()
        shown = [_key(item) for item in suggest(reference, state, patron, now, (book,), read)]
        timings.append(time.perf_counter() - started)
        popular = _most_borrowed(sim, now, child, state, reference, patron, book)[:LIMIT]
        pending.append((child.patron_id, now, shown, popular))

    sim.run(args.weeks, on_borrow)
    end = datetime.combine(START + timedelta(weeks=args.weeks), datetime.min.time(), timezone.utc)
    ours, baseline = Scores(), Scores()
    for patron_id, now, shown, popular in pending:
        if now + HORIZON > end:
            continue  # the term ends before two weeks are seen
        later = {b for when, b in sim.term.by_child[patron_id] if now < when <= now + HORIZON}
        _score(ours, shown, later)
        _score(baseline, popular, later)
    return {"loans": len(sim.term.loans), "children": len(sim.children), "books": len(sim.library.copies),
            "train_weeks": args.train_weeks, "weeks": args.weeks,
            "pairs": sum(len(v) for by_book in (counts or {}).values() for v in by_book.values()),
            "suggestions": ours.figures(), "baseline_most_borrowed_this_month": baseline.figures(),
            "timing": summary(timings) if timings else {}}


def _key(item) -> str:
    from bookcorner.circulation.suggestions import book_key

    return book_key(item)


def _loans(sim: Simulation):
    from bookcorner.circulation.state import Loan

    return {item_id: Loan(f"L{item_id}", item_id, patron, START, datetime(2026, 9, 1, tzinfo=timezone.utc))
            for item_id, patron in sim.out.items()}


def _most_borrowed(sim: Simulation, now: datetime, child: Child, state, reference, patron, book: str) -> list[str]:
    """The baseline: the month's most borrowed books (ties by key), with the kiosk's filters."""
    from bookcorner.circulation.suggestions import on_shelf

    month = Counter(b for _c, b, when in sim.term.loans if now - MONTH <= when <= now)
    shelf = on_shelf(reference, state, patron)
    held = {_key(reference.items[i]) for i in sim.holding.get(child.patron_id, [])}
    excluded = (child.read - {book}) | held | {book}
    return [b for b, _n in sorted(month.items(), key=lambda p: (-p[1], p[0])) if b in shelf and b not in excluded]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suggestions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, default=18)
    parser.add_argument("--train-weeks", type=int, default=12)
    parser.add_argument("--seed", default="bench-suggestions")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = evaluate(args)
    ours, base = results["suggestions"], results["baseline_most_borrowed_this_month"]
    assert isinstance(ours, dict) and isinstance(base, dict)
    results["ratio_to_baseline"] = round(ours["share"] / base["share"], 2) if base["share"] else None
    results["seconds"] = round(time.perf_counter() - started, 1)
    timing = results["timing"]
    assert isinstance(timing, dict)
    print(f"a term of the demo school: {results['loans']} loans by {results['children']} children of "
          f"{results['books']} books; counts trained on weeks 1-{args.train_weeks} ({results['pairs']} pairs)")
    print(f"suggestions borrowed within two weeks: {ours['share']:.1%} of {ours['suggestions']} "
          f"({ours['borrows_with_a_hit']:.1%} of borrows had one)")
    print(f"baseline, most borrowed this month: {base['share']:.1%} of {base['suggestions']} "
          f"({base['borrows_with_a_hit']:.1%} of borrows had one)")
    print(f"ratio to the baseline: {results['ratio_to_baseline']}x")
    print(f"time to suggest at the kiosk, per child: p50 {timing.get('p50_ms')} ms, p99 {timing.get('p99_ms')} ms")
    verdicts = [("suggestions borrowed more often than the month's most borrowed", ours["share"] > base["share"]),
                (f"suggestions p99 under {TARGET_MS:.0f} ms", timing.get("p99_ms", 1e9) < TARGET_MS)]
    conclude(verdicts, results, verdict_file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
