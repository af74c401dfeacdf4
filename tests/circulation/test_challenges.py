from datetime import date, datetime

import pytest

from bookcorner.circulation.challenges import (
    AwardRules,
    Challenge,
    Checkout,
    Reader,
    book_loving,
    counted,
    progress,
    reading_stars,
)

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


def test_counted_goes_past_the_goal_where_the_progress_stops() -> None:
    loans = [_out(item, 2) for item in "abcde"]
    assert (counted(TERM, loans), progress(TERM, loans).done) == (5, 3)


#: goal 3: class A counts 6, 6, 4, 3, 1; class B 3, 3
READERS = [Reader("a1", "A", 6), Reader("a2", "A", 6), Reader("a3", "A", 4), Reader("a4", "A", 3),
           Reader("a5", "A", 1), Reader("b1", "B", 3), Reader("b2", "B", 3)]


@pytest.mark.parametrize(("rules", "stars"), [
    (AwardRules(), {"a1", "a2", "a3", "a4", "b1", "b2"}),  # the goal reached
    (AwardRules(star_at_least=5), {"a1", "a2"}),
    (AwardRules(stars_per_class=1), {"a1", "a2", "b1", "b2"}),  # ties at the first place share it
    (AwardRules(stars_per_class=2), {"a1", "a2", "b1", "b2"}),
    (AwardRules(stars_per_class=3), {"a1", "a2", "a3", "b1", "b2"}),  # places 1, 1, 3
    (AwardRules(star_at_least=4, stars_per_class=3), {"a1", "a2", "a3"}),
])
def test_reading_stars_follow_the_least_number_and_the_per_class_cap(rules, stars) -> None:
    assert reading_stars(3, rules, READERS) == stars


@pytest.mark.parametrize(("rules", "classes"), [
    (AwardRules(), set()),  # no share set: no class award
    (AwardRules(class_share=80), {"A", "B"}),  # A: 4 of 5 is 80%
    (AwardRules(class_share=81), {"B"}),
    (AwardRules(class_share=100, class_average=4), set()),  # B averages 3
    (AwardRules(class_share=50, class_average=4), {"A"}),  # A: 20 books / 5 = 4
])
def test_book_loving_classes_need_the_share_at_the_goal_and_the_average(rules, classes) -> None:
    assert book_loving(3, rules, READERS) == classes
