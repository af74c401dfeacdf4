"""The student librarian's and the librarian's views, as pure functions over events and
state: the slot's counters, the chase list, the work record (form G)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from bookcorner.circulation.codes import Source
from bookcorner.circulation.timetable import RotationSlot
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk import reports
from bookcorner.kiosk.desk import CirculationDesk, DataPaths
from tests.school import ANDERSEN, CARDS, MEIMEI, MONDAY, SHUIHU, XIAOHONG, XIAOMING, XIYOUJI, reference


def test_the_slot_counts_loans_and_returns_in_its_window_only(tmp_path):
    ReferenceStore(DataPaths(tmp_path).reference).save(reference(), "t", "Test school")
    clock = FixedClock(MONDAY.replace(hour=11, minute=50))
    with CirculationDesk(tmp_path, "k", clock, segment_events=16) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        desk.checkout(ming, XIYOUJI.barcode)  # before the slot
        clock.advance(minutes=20)  # 12:10, in class 3-2's slot
        desk.checkin(XIYOUJI.barcode)
        desk.checkout(ming, SHUIHU.barcode)
        desk.checkout(desk.identify(CARDS[XIAOHONG], Source.CARD_READER), XIYOUJI.barcode)
        desk.checkout(ming, SHUIHU.barcode)  # a renewal is not a loan
        helper = desk.identify(CARDS[MEIMEI], Source.CARD_READER)
        desk.report_damaged(helper, SHUIHU.barcode)  # taken back to go to repair: not a return
        for _ in range(40):  # many segments later
            desk.checkout(ming, "0000")
        events = reports.events_since(desk.paths.journal, MONDAY.replace(hour=12, minute=0))
    window = reports.slot_window(RotationSlot(0, time(12, 0), time(12, 50), "3-2"), MONDAY)
    assert reports.slot_counts(events, window.start, window.end) == reports.SlotCounts(loans=2, returns=1)
    ming_only = reports.slot_counts(events, window.start, window.end, {XIAOMING.patron_id})
    assert ming_only == reports.SlotCounts(loans=1, returns=1)  # 小红's loan is not counted
    assert min(e.seq for e in events) == 2


def test_the_chase_list_puts_the_longest_overdue_first_and_exports_for_a_teacher(tmp_path):
    ReferenceStore(DataPaths(tmp_path).reference).save(reference(), "t", "Test school")
    clock = FixedClock(MONDAY - timedelta(days=14))
    with CirculationDesk(tmp_path, "k", clock, segment_events=16) as desk:
        desk.checkout(desk.identify(CARDS[XIAOHONG], Source.CARD_READER), SHUIHU.barcode)
        clock.advance(days=7)
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), ANDERSEN[0].isbn13)
        clock.advance(days=7)
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), XIYOUJI.barcode)
        lines = reports.chase_list(desk.reference, desk.state, "3-2", MONDAY.date())
    assert [(line.name, line.title, line.days_late) for line in lines] == [
        ("李小红", "水浒传", 5), ("王小明", "安徒生童话", 0), ("王小明", "西游记", 0)]
    written = reports.export_chase_list(tmp_path / "exports", lines, "3-2", MONDAY.date())
    assert [p.name for p in written] == ["chase-3-2-2026-11-23.csv", "chase-3-2-2026-11-23.txt"]
    assert written[0].read_bytes().startswith("\ufeff".encode())
    assert "李小红\t《水浒传》\tdue 2026-11-16\tOVERDUE, 5 school day(s)" in written[1].read_text()


def test_the_work_record_counts_a_helpers_returns_repairs_and_finds_per_day(tmp_path):
    ReferenceStore(DataPaths(tmp_path).reference).save(reference(), "t", "Test school")
    clock = FixedClock(MONDAY)
    with CirculationDesk(tmp_path, "k", clock, segment_events=16) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        helper = desk.identify(CARDS[MEIMEI], Source.CARD_READER)
        desk.checkout(ming, XIYOUJI.barcode)
        desk.checkin(XIYOUJI.barcode, handled_by=helper)
        clock.advance(days=1)
        desk.report_damaged(helper, SHUIHU.barcode)
        desk.report_found(helper, SHUIHU.barcode)
        desk.checkin(XIYOUJI.barcode)  # nobody's work
        events = reports.events_since(desk.paths.journal, reports.work_record_since(clock.now()))
    days = reports.work_record(events, MEIMEI.patron_id)
    assert [(d.day.day, d.returns, d.damaged, d.found, d.total) for d in days] == [(24, 0, 1, 1, 2), (23, 1, 0, 0, 1)]
    assert reports.work_record_since(datetime(2026, 11, 30, 9, tzinfo=MONDAY.tzinfo)).date().isoformat() == "2026-10-31"
