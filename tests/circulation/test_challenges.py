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


def test_a_books_category_is_its_clc_main_class_and_a_book_without_one_counts_for_none() -> None:
    from bookcorner.circulation.challenges import category_of

    assert [category_of(c) for c in ("I287.5/12", "tp311", " K82", None, "", "123")] == ["I", "T", "K", "", "", ""]
    by_cat = Challenge("Mix", date(2026, 3, 1), date(2026, 3, 31), goal=3, by_category=True)
    got = progress(by_cat, [_out("a", 2, ""), _out("b", 3, "I"), _out("c", 4, "")])
    assert got.done == 1


def test_a_challenge_for_some_classes_is_only_for_them() -> None:
    some = Challenge("3s", date(2026, 3, 1), date(2026, 3, 31), goal=3, class_names=frozenset({"3-1", "3-2"}))
    assert some.is_for("3-2") and not some.is_for("4-1") and not some.is_for(None)
    assert TERM.is_for("4-1") and TERM.is_for(None)
