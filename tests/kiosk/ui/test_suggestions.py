"""What to read next, on the child's screen after a borrow or a return, offline: books on
the shelf now, from their grade's list and what their grade read next; titles only."""

from __future__ import annotations

from bookcorner import i18n
from bookcorner.circulation.codes import Source
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import DataPaths
from tests.kiosk.corner import reading_reference
from tests.kiosk.ui.conftest import desk_for, make_app, scan, screen_text, settings, started, tap
from tests.school import CARDS, MONDAY, XIAOHONG, XIAOMING, XIYOUJI


def _reading_school(root):
    ReferenceStore(DataPaths(root).reference).save(reading_reference(), "test-1", "Test school")
    return root


async def test_after_a_borrow_the_child_sees_three_books_on_the_shelf_in_english(tmp_path):
    root = _reading_school(tmp_path / "data")
    app = make_app(root, config_=settings(kiosk={"language": "en"}))
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        assert "Read next" not in screen_text(app)  # nothing before a borrow or a return
        await scan(pilot, XIYOUJI.barcode)
        text = screen_text(app)
        assert "Read next, on the shelf now:" in text
        # what grade 3 read after 西游记 first, then the grade's list; never the dictionary
        # (reference-only) nor 西游记 itself
        assert app.screen.view.suggestions == ("水浒传", "红楼梦", "安徒生童话")
        for title in ("水浒传", "红楼梦", "安徒生童话"):
            assert f"• {title}" in text
        assert "• 新华字典" not in text


async def test_the_same_in_chinese_and_never_a_book_the_child_read_or_that_is_out(tmp_path):
    root = _reading_school(tmp_path / "data")
    clock = FixedClock(MONDAY)
    with desk_for(root, clock) as desk:
        # 小明 read 安徒生童话 before (returned since); 小红 has 水浒传 out
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        desk.checkout(ming, "9787020024759")
        desk.checkin("9787020024759", ming)
        desk.checkout(desk.identify(CARDS[XIAOHONG], Source.CARD_READER), "30001000000036")
    i18n.use_language("zh_CN")
    app = make_app(root, clock=clock, config_=settings(kiosk={"language": "zh_CN"}))
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)
        text = screen_text(app)
        assert "Read next" in text  # its Chinese comes with the translations (see the report)
        assert app.screen.view.suggestions == ("红楼梦", "小英雄雨来")
        assert "• 水浒传" not in text and "• 安徒生童话" not in text


async def test_a_corner_without_reading_lists_shows_no_suggestions(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)
        assert app.screen.view.suggestions == ()
        assert "Read next" not in screen_text(app)


async def test_the_idle_screen_shows_this_weeks_picks_for_the_class_on_duty(tmp_path):
    root = _reading_school(tmp_path / "data")
    clock = FixedClock(MONDAY)  # 12:05 on a Monday: class 3-2's borrowing time
    with desk_for(root, clock) as desk:
        desk.checkout(desk.identify(CARDS[XIAOHONG], Source.CARD_READER), "30001000000028")  # 红楼梦 out
    for language in ("en", "zh_CN"):
        i18n.use_language(language)
        app = make_app(root, clock=clock, config_=settings(kiosk={"language": language}))
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot)
            text = screen_text(app)
            assert "This week's picks:" in text  # its Chinese comes with the translations
            # grade 3's list on the shelf: not 红楼梦 (out), not the dictionary (stays in the room)
            assert "• 安徒生童话" in text and "• 小英雄雨来" in text and "• 西游记" in text
            assert "红楼梦" not in text and "新华字典" not in text
    clock.advance(hours=3)  # no class's slot: free borrowing, no picks
    app = make_app(root, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        assert "This week's picks" not in screen_text(app)
