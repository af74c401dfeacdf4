"""A student librarian on duty: a class's returns in a lunch break, the chase list for the
teacher, damaged books to the repair register, and their work record (form G)."""

from __future__ import annotations

from bookcorner.circulation.codes import Source
from bookcorner.journal.clock import FixedClock
from bookcorner.kiosk.screens.dialogs import ChaseListScreen, WorkRecordScreen
from bookcorner.kiosk.screens.helper import HelperScreen
from bookcorner.kiosk.screens.visit import VisitScreen
from bookcorner.kiosk.wording import Tone
from tests.kiosk.ui.conftest import banner, desk_for, make_app, scan, screen_text, settle, started, tap
from tests.school import ANDERSEN, CARDS, HONGLOUMENG, MEIMEI, MONDAY, SHUIHU, TEACHER, XIAOHONG, XIAOMING, XIYOUJI


def check_out_a_class_its_books(data_dir) -> FixedClock:
    """Last Monday's slot: four books out; this Monday, in the slot again."""
    clock = FixedClock(MONDAY)
    clock.advance(days=-7)
    with desk_for(data_dir, clock) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        hong = desk.identify(CARDS[XIAOHONG], Source.CARD_READER)
        desk.checkout(ming, XIYOUJI.barcode)
        desk.checkout(ming, ANDERSEN[0].isbn13)
        clock.advance(minutes=5)
        desk.checkout(hong, ANDERSEN[0].isbn13)  # another copy with the same printed barcode
        desk.checkout(hong, SHUIHU.barcode)
    clock.advance(days=7)
    return clock


async def test_bulk_returns_in_the_slot_count_up_and_a_shared_barcode_closes_the_oldest_loan(data_dir):
    clock = check_out_a_class_its_books(data_dir)
    app = make_app(data_dir, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[MEIMEI])
        assert isinstance(app.screen, HelperScreen)
        text = screen_text(app)
        assert "Class 3-2's slot until 12:50: 0 lent, 0 returned" in text
        for chinese in ("小图书管理员美美（3-2班）", "3-2班借书时段，到12:50：借出0本，归还0本", "还书（F2）",
                        "逐本扫描交回的书。本次已处理0本。", "催还名单", "完成"):  # both languages, as a child's screen
            assert chinese in text
        for code in (XIYOUJI.barcode, ANDERSEN[0].isbn13, ANDERSEN[0].isbn13, SHUIHU.barcode):
            await scan(pilot, code)
            assert banner(app).tone is Tone.SUCCESS, banner(app)
        text = screen_text(app)
        assert "0 lent, 4 returned" in text and "4 done in this visit" in text
        assert "The librarian will check an earlier loan" in text  # a shared barcode, closed oldest first
        assert app.controller.desk.state.loans == {}
        await scan(pilot, HONGLOUMENG.barcode)
        assert banner(app).code == "not_on_loan"


async def test_the_chase_list_shows_the_class_overdue_first_and_exports_for_the_teacher(data_dir):
    clock = check_out_a_class_its_books(data_dir)
    clock.advance(days=1)  # Tuesday: last week's loans are a day overdue; free borrowing
    with desk_for(data_dir, clock) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        desk.checkin(XIYOUJI.barcode)
        desk.checkin(ANDERSEN[0].isbn13, ming)
        assert desk.checkout(ming, HONGLOUMENG.barcode).ok
    app = make_app(data_dir, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[MEIMEI])
        assert "Free borrowing; your class 3-2 today: 1 lent, 2 returned" in screen_text(app)
        await pilot.click("#chase")
        await settle(pilot)
        assert isinstance(app.screen, ChaseListScreen)
        text = screen_text(app)
        assert "Class 3-2: 3 book(s) out, 2 overdue" in text
        assert text.index("安徒生童话") < text.index("红楼梦")  # overdue first
        await pilot.click("#export")
        await settle(pilot)
        csv = (data_dir / "exports" / "chase-3-2-2026-11-24.csv").read_text(encoding="utf-8-sig")
        printable = (data_dir / "exports" / "chase-3-2-2026-11-24.txt").read_text(encoding="utf-8")
        assert "王小明,红楼梦,2026-12-01,0" in csv and "李小红,水浒传,2026-11-23,1" in csv
        assert "Books to bring back: class 3-2, 2026-11-24" in printable and "OVERDUE, 1 school day(s)" in printable
        assert "Saved:" in screen_text(app)
        await scan(pilot, SHUIHU.barcode)  # a book handed in: the dialog gives way to the answer
        assert isinstance(app.screen, HelperScreen) and banner(app).code == "returned"


async def test_your_class_today_counts_your_class_and_not_the_whole_school(data_dir):
    from bookcorner.circulation.model import Card, Patron, Role
    from bookcorner.circulation.reference import build_reference
    from bookcorner.journal.snapshot import ReferenceStore
    from bookcorner.kiosk.desk import DataPaths
    from tests.kiosk.corner import school_reference

    other_class = Patron("S41", "赵小刚", Role.STUDENT, "4-1", "小刚")
    school = school_reference()
    ReferenceStore(DataPaths(data_dir).reference).save(build_reference(
        [*school.patrons.values(), other_class], [*school.cards.values(), Card("0004100001", "S41")],
        school.items.values(), school.policy, school.calendar, school.timetable), "test-2", "Test school")
    clock = FixedClock(MONDAY)
    clock.advance(days=1)  # Tuesday: free borrowing, no slot
    with desk_for(data_dir, clock) as desk:
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), XIYOUJI.barcode)
        gang = desk.identify("0004100001", Source.CARD_READER)
        desk.checkout(gang, HONGLOUMENG.barcode)
        desk.checkout(gang, SHUIHU.barcode)
        desk.checkin(SHUIHU.barcode)
    app = make_app(data_dir, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[MEIMEI])
        assert "Free borrowing; your class 3-2 today: 1 lent, 0 returned" in screen_text(app)
        await scan(pilot, HONGLOUMENG.barcode)  # class 4-1's book, handed in to class 3-2's librarian
        assert banner(app).code == "returned" and "your class 3-2 today: 1 lent, 0 returned" in screen_text(app)
        await scan(pilot, XIYOUJI.barcode)
        assert "your class 3-2 today: 1 lent, 1 returned" in screen_text(app)


async def test_damaged_and_found_books_and_the_work_record(data_dir):
    clock = check_out_a_class_its_books(data_dir)
    app = make_app(data_dir, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[MEIMEI])
        await scan(pilot, XIYOUJI.barcode)
        await pilot.press("f3")
        await settle(pilot)
        await scan(pilot, HONGLOUMENG.barcode)
        assert banner(app).code == "marked_damaged" and "repair register" in screen_text(app)
        await pilot.press("f4")
        await settle(pilot)
        await scan(pilot, HONGLOUMENG.barcode)
        assert banner(app).code == "marked_repaired"
        await pilot.click("#work")
        await settle(pilot)
        assert isinstance(app.screen, WorkRecordScreen)
        text = screen_text(app)
        assert "Work record of 陈美美: 3 book(s) handled in 1 day(s)" in text
        assert "Mon 23 Nov" in text


async def test_a_student_librarian_can_borrow_for_themselves_and_a_teacher_borrows_like_a_child(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[MEIMEI])
        await pilot.click("#own")
        await settle(pilot)
        assert isinstance(app.screen, VisitScreen)
        await scan(pilot, XIYOUJI.barcode)
        assert banner(app).code == "borrowed"
        await tap(pilot, CARDS[TEACHER])
        assert isinstance(app.screen, VisitScreen) and "Hello, 周老师!" in screen_text(app)
        await scan(pilot, HONGLOUMENG.barcode)
        assert "until Mon 21 Dec" in screen_text(app)  # teachers keep books four weeks
