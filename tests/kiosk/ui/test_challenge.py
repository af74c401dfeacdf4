"""A child's reading-challenge progress on the banner after a borrow ("7 of 10"), counted
from the kiosk's own journal, with a cheer when the goal is reached; offline."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from bookcorner import i18n
from bookcorner.circulation.challenges import Challenge
from bookcorner.circulation.codes import Source
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import DataPaths
from bookcorner.kiosk.widgets.banner import Banner
from tests.kiosk.corner import reading_guide, school_reference
from tests.kiosk.ui.conftest import desk_for, make_app, scan, settings, started, tap
from tests.school import CARDS, MONDAY, TEACHER, XIAOMING, XIYOUJI


def _challenge_school(root, goal: int, classes: frozenset[str] = frozenset({"3-2"})):
    november = Challenge("读书月", date(2026, 11, 1), date(2026, 11, 30), goal, challenge_id="nov",
                         class_names=classes)
    guide = replace(reading_guide(), challenges=(november,))
    ReferenceStore(DataPaths(root).reference).save(replace(school_reference(), reading=guide), "test-1", "Test")
    return root


def _banner(app) -> str:
    return str(app.screen.query_one(Banner).render())


async def _borrow_after_one_earlier_book(root, language: str) -> str:
    clock = FixedClock(MONDAY)
    with desk_for(root, clock) as desk:  # 小明 read 安徒生童话 earlier this month (returned since)
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        desk.checkout(ming, "9787020024759")
        desk.checkin("9787020024759", ming)
    i18n.use_language(language)
    app = make_app(root, clock=clock, config_=settings(kiosk={"language": language}))
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)
        return _banner(app)


async def test_the_banner_shows_two_of_three_after_a_borrow_in_both_languages(tmp_path):
    banner = await _borrow_after_one_earlier_book(_challenge_school(tmp_path / "data", goal=3), "en")
    assert "读书月: 2 of 3 books" in banner
    assert "读书月：第2本，共3本" in banner  # the Chinese line (from the catalogue, see the report)
    assert "Goal reached" not in banner


async def test_reaching_the_goal_shows_the_cheer(tmp_path):
    banner = await _borrow_after_one_earlier_book(_challenge_school(tmp_path / "data", goal=2), "en")
    assert "读书月: 2 of 2 books" in banner
    assert "★ Goal reached! Well done! ★" in banner


@pytest.mark.parametrize(("classes", "who"), [(frozenset({"5-1"}), XIAOMING), (frozenset({"3-2"}), TEACHER)])
async def test_a_class_not_taking_part_or_a_teacher_sees_no_challenge(tmp_path, classes, who):
    root = _challenge_school(tmp_path / "data", goal=3, classes=classes)
    app = make_app(root, clock=FixedClock(MONDAY), config_=settings(kiosk={"language": "en"}))
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[who])
        await scan(pilot, XIYOUJI.barcode)
        assert app.screen.query_one(Banner).shown and "Borrowed" in _banner(app)
        assert "of 3 books" not in _banner(app)
        assert app.screen.query_one(Banner).feedback.challenge == ()


async def test_the_idle_screen_shows_how_many_of_the_class_on_duty_reached_the_goal(tmp_path):
    """12:05 on a Monday is class 3-2's borrowing time; of its four students (the one who
    left the school does not count), 小明 read two books this month."""
    from tests.kiosk.ui.conftest import until

    root = _challenge_school(tmp_path / "data", goal=2)
    clock = FixedClock(MONDAY)
    with desk_for(root, clock) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        for isbn in ("9787020024759", "9787020002207"):
            desk.checkout(ming, isbn)
            desk.checkin(isbn, ming)
    app = make_app(root, clock=clock, config_=settings(kiosk={"language": "en"}))
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot)
        await until(pilot, lambda: app.controller.class_challenges("3-2") != ())
        app.screen.show_slot()
        await pilot.pause()
        shown = str(app.screen.query_one("#class-challenge").render())
        assert "读书月: 1 of 4 in class 3-2 reached the goal" in shown


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_the_checkout_banner_with_the_challenge_progress_line(snap_compare, tmp_path, language):
    """SVG snapshot (see test_snapshots.py): 小明 borrows his second book of a three-book
    challenge; the banner's progress line in each language (CJK takes two cells a character)."""
    root = _challenge_school(tmp_path / "data", goal=3)
    clock = FixedClock(MONDAY)
    with desk_for(root, clock) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        desk.checkout(ming, "9787020024759")
        desk.checkin("9787020024759", ming)
    app = make_app(root, clock=clock, config_=settings(kiosk={"language": language}))

    async def borrow(pilot) -> None:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)

    assert snap_compare(app, terminal_size=(100, 30), run_before=borrow)
