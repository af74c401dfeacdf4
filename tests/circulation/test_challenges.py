from datetime import date, datetime

import pytest

from bookcorner.circulation.challenges import Challenge, Checkout, progress

TERM = Challenge("Spring", date(2026, 3, 1), date(2026, 3, 31), goal=3)


def _out(item: str, day: int, category: str = "I247", month: int = 3) -> Checkout:
    return Checkout(item, category, datetime(2026, month, day, 10))


def test_counts_each_book_once_inside_the_period_only() -> None:
    loans = [_out("a", 1), _out("a", 5), _out("b", 31), _out("c", 28, month=2)]
    got = progress(TERM, loans)
    assert (got.done, got.goal, got.reached) == (2, 3, False)


def test_categories_goal_counts_distinct_categories_and_caps_at_goal() -> None:
    by_cat = Challenge("Mix", date(2026, 3, 1), date(2026, 3, 31), goal=2, by_category=True)
    loans = [_out("a", 2, "I247"), _out("b", 3, "I247"), _out("c", 4, "K"), _out("d", 5, "N")]
    got = progress(by_cat, loans)
    assert (got.done, got.reached) == (2, True)


def test_running_and_bad_challenges_are_refused_with_a_reason() -> None:
    assert TERM.running(datetime(2026, 3, 31, 23, 59))
    assert not TERM.running(datetime(2026, 4, 1, 0, 0))
    with pytest.raises(ValueError, match="goal must be at least 1"):
        Challenge("x", date(2026, 3, 1), date(2026, 3, 2), goal=0)
    with pytest.raises(ValueError, match="ends"):
        Challenge("x", date(2026, 3, 2), date(2026, 3, 1), goal=1)
