"""A stock-take (清点) of the corner's shelf at the kiosk: the librarian scans every book on
it; books of another corner, books on loan and codes the catalogue does not know are
flagged as they are scanned; the kiosk restarts halfway and the stock-take goes on with its
scans so far; the result lists what is missing, what belongs elsewhere and what came back
without a scan, and checks the latter in in one step."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bookcorner.circulation.codes import Source
from bookcorner.circulation.events import Checkin, StocktakeFinished, StocktakeScanned, StocktakeStarted
from bookcorner.circulation.model import Item
from bookcorner.circulation.reference import build_reference
from bookcorner.journal.journal import JournalReader
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import DataPaths
from bookcorner.kiosk.screens.idle import IdleScreen
from bookcorner.kiosk.screens.librarian import LibrarianScreen
from bookcorner.kiosk.screens.stocktake import StocktakeScreen
from tests.kiosk.corner import UNKNOWN_ISBN, Ticker, school_reference
from tests.kiosk.ui.conftest import banner, desk_for, make_app, scan, scan_on_a_full_disk, screen_text, settle, started
from tests.kiosk.ui.test_librarian import open_librarian_mode
from tests.school import ANDERSEN, CARDS, DICTIONARY, HONGLOUMENG, MAGAZINE, SHUIHU, XIAOHONG, XIAOMING, XIYOUJI

#: a book of class 4-1's corner, left on 3-2's shelf
LUNYU = Item("I050", "论语", barcode="30001000000069", home_corner="4-1")
SIZE = (110, 48)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """The test school, its books at home in class 3-2's corner (the kiosk's timetable is
    3-2's: its shelf), one of class 4-1's among them; 水浒传 and 红楼梦 on loan."""
    base = school_reference()
    items = [replace(item, home_corner="3-2") for item in base.items.values()] + [LUNYU]
    root = tmp_path / "data"
    ReferenceStore(DataPaths(root).reference).save(
        build_reference(base.patrons.values(), base.cards.values(), items, base.policy, base.calendar,
                        base.timetable), "test-1", "Test school")
    with desk_for(root) as desk:
        assert desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), SHUIHU.barcode).ok
        assert desk.checkout(desk.identify(CARDS[XIAOHONG], Source.CARD_READER), HONGLOUMENG.barcode).ok
    return root


def stocktake_events(data_dir: Path) -> list:
    return [event.payload for event in JournalReader(data_dir / "journal").events_after(0)
            if isinstance(event.payload, (StocktakeStarted, StocktakeScanned, StocktakeFinished))]


async def press(pilot, selector: str) -> None:
    pilot.app.screen.query_one(selector).press()
    await settle(pilot)


async def test_a_full_shelf_with_missing_misplaced_and_unscanned_returns_survives_a_restart(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        await press(pilot, "#stocktake-start")
        assert isinstance(app.screen, StocktakeScreen)
        assert "Stock-take of the shelf of class 3-2" in screen_text(app)
        assert "0 of 7 books of this shelf found · 0 scanned" in screen_text(app)
        await scan(pilot, XIYOUJI.barcode)
        assert banner(app).code == "stocktake_present"
        text = screen_text(app)
        assert "1 of 7 books of this shelf found · 1 scanned · 0 to look at" in text and "Last book: 西游记" in text
        await scan(pilot, LUNYU.barcode)
        assert banner(app).code == "stocktake_misplaced"
        assert "“论语” belongs to class 4-1: put it aside." in screen_text(app)
        await scan(pilot, SHUIHU.barcode)  # on loan, yet on the shelf: not checked in by the scan
        assert banner(app).code == "stocktake_on_loan"
        assert "came back without a scan" in screen_text(app)
        assert app.controller.desk.state.loan_of(SHUIHU.item_id) is not None
        await scan(pilot, UNKNOWN_ISBN)
        assert banner(app).code == "stocktake_unknown" and f"Code {UNKNOWN_ISBN}" in screen_text(app)
        await scan(pilot, ANDERSEN[0].isbn13)
        assert banner(app).code == "stocktake_present"
        assert "2 of 7 books of this shelf found · 5 scanned · 3 to look at" in screen_text(app)
        scanned = [p.code for p in stocktake_events(data_dir) if isinstance(p, StocktakeScanned)]
        assert scanned == [XIYOUJI.barcode, LUNYU.barcode, SHUIHU.barcode, UNKNOWN_ISBN, ANDERSEN[0].isbn13]
    # the kiosk restarts halfway (the app and its desk gone; the same data directory)
    app = make_app(data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        screen = app.screen
        assert isinstance(screen, LibrarianScreen) and screen.active_tab == "tab-stocktake"
        assert "A stock-take is not finished: 5 scan(s) so far, started 12:05." in screen_text(app)
        await press(pilot, "#stocktake-start")
        assert isinstance(app.screen, StocktakeScreen)
        assert "2 of 7 books of this shelf found · 5 scanned · 3 to look at" in screen_text(app)
        for code in (ANDERSEN[0].isbn13, MAGAZINE.barcode, DICTIONARY.barcode):
            await scan(pilot, code)
            assert banner(app).code == "stocktake_present"
        await scan(pilot, MAGAZINE.barcode)
        assert banner(app).code == "stocktake_repeated"
        await press(pilot, "#stocktake-finish")
        text = screen_text(app)
        assert "Present: 5 of 7. Missing: 2. From another corner: 1. On loan but on the shelf: 1." in text
        assert "Unknown codes: 1." in text and "Already counted" not in text  # the last scan's answer is gone
        missing = text[text.index("Missing (not on loan"):text.index("From another corner (")]
        assert "安徒生童话" in missing and "小英雄雨来" in missing and "红楼梦" not in missing  # on loan: not missing
        assert "论语  (class 4-1)" in text and "水浒传  (王小明 (3-2))" in text and UNKNOWN_ISBN in text
        assert "Check in the 1 book(s) on loan but on the shelf" in text
        await press(pilot, "#stocktake-checkin")
        assert banner(app).code == "stocktake_checked_in"
        state = app.controller.desk.state
        assert state.loan_of(SHUIHU.item_id) is None and state.loan_of(HONGLOUMENG.item_id) is not None
        assert "1 book(s) on loan but on the shelf were checked in." in screen_text(app)
        assert not app.screen.query_one("#stocktake-checkin").display
        await press(pilot, "#stocktake-back")
        assert isinstance(app.screen, LibrarianScreen) and app.screen.view.stocktake is None
    events = stocktake_events(data_dir)
    assert [type(p) for p in events] == [StocktakeStarted] + [StocktakeScanned] * 9 + [StocktakeFinished]
    assert events[0].shelf == ("3-2",) and events[0].patron_id == "L99"
    assert events[-1].scans == 9 and not events[-1].cancelled
    assert len({p.stocktake_id for p in events}) == 1
    checkins = [e.payload for e in JournalReader(data_dir / "journal").events_after(0)
                if isinstance(e.payload, Checkin)]
    assert [c.item_id for c in checkins] == [SHUIHU.item_id]
    # a new kiosk sees the book back, and no stock-take to continue
    with desk_for(data_dir) as desk:
        assert desk.state.loan_of(SHUIHU.item_id) is None


async def test_a_stock_take_outlives_the_librarians_mode_timing_out_and_can_be_cancelled(data_dir):
    ticker = Ticker()
    app = make_app(data_dir, ticker=ticker)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        await press(pilot, "#stocktake-start")
        await scan(pilot, XIYOUJI.barcode)
        ticker.advance(app.settings.librarian.session_timeout_s + 1)
        await pilot.pause(0.5)
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)
        await open_librarian_mode(pilot)
        assert "A stock-take is not finished: 1 scan(s) so far" in screen_text(app)
        await press(pilot, "#stocktake-start")
        assert "1 of 7 books of this shelf found · 1 scanned" in screen_text(app)
        await press(pilot, "#stocktake-cancel")
        assert isinstance(app.screen, StocktakeScreen)  # once is not enough
        await press(pilot, "#stocktake-cancel")
        assert isinstance(app.screen, LibrarianScreen) and app.screen.view.stocktake is None
        await scan(pilot, SHUIHU.barcode)  # no stock-take now: a scan here takes the book back
        assert app.controller.desk.state.loan_of(SHUIHU.item_id) is None
    events = stocktake_events(data_dir)
    assert isinstance(events[-1], StocktakeFinished) and events[-1].cancelled and events[-1].scans == 1


async def test_a_student_librarian_on_duty_takes_stock_and_checks_in_what_came_back_unscanned(data_dir):
    from bookcorner.kiosk.screens.helper import HelperScreen
    from tests.kiosk.ui.conftest import tap
    from tests.school import MEIMEI

    app = make_app(data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[MEIMEI])
        assert isinstance(app.screen, HelperScreen)
        await press(pilot, "#helper-stocktake")
        assert isinstance(app.screen, StocktakeScreen)
        await scan(pilot, SHUIHU.barcode)  # a stock-take scan, not one of the duty's returns
        assert banner(app).code == "stocktake_on_loan"
        assert app.controller.desk.state.loan_of(SHUIHU.item_id) is not None
        await scan(pilot, XIYOUJI.barcode)
        await press(pilot, "#stocktake-finish")
        assert "Present: 1 of 7. Missing: 6." in screen_text(app)
        await press(pilot, "#stocktake-checkin")
        assert app.controller.desk.state.loan_of(SHUIHU.item_id) is None
        await press(pilot, "#stocktake-back")
        assert isinstance(app.screen, HelperScreen)
        await scan(pilot, HONGLOUMENG.barcode)  # back on duty: a scan takes the book back
        assert app.controller.desk.state.loan_of(HONGLOUMENG.item_id) is None
    checkins = [e for e in JournalReader(data_dir / "journal").events_after(0) if isinstance(e.payload, Checkin)]
    assert [(e.payload.item_id, e.actor) for e in checkins] == [(SHUIHU.item_id, MEIMEI.patron_id),
                                                               (HONGLOUMENG.item_id, MEIMEI.patron_id)]
    events = stocktake_events(data_dir)
    assert events[0].patron_id == MEIMEI.patron_id and events[-1].scans == 2


async def test_a_scan_the_disk_refuses_is_not_counted(data_dir):
    from bookcorner.kiosk.wording import Tone

    app = make_app(data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        await press(pilot, "#stocktake-start")
        await scan_on_a_full_disk(pilot, app, XIYOUJI.barcode)
        assert banner(app).tone is Tone.ERROR and banner(app).code == "not_saved"
        assert "0 of 7 books of this shelf found · 0 scanned" in screen_text(app)
        await scan(pilot, XIYOUJI.barcode)  # room again: the same scan counts
        assert banner(app).code == "stocktake_present"
        assert "1 of 7 books of this shelf found · 1 scanned" in screen_text(app)
    assert [p.code for p in stocktake_events(data_dir) if isinstance(p, StocktakeScanned)] == [XIYOUJI.barcode]


async def test_the_count_and_each_answer_are_in_both_languages(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        await press(pilot, "#stocktake-start")
        await scan(pilot, LUNYU.barcode)
        text = screen_text(app)
        for words in ("0 of 7 books of this shelf found · 1 scanned · 1 to look at", "本书架应有7本，已找到0本",
                      "Last book: 论语", "刚扫描：论语", "From another corner", "《论语》属于4-1班：请放到一边。",
                      "清点：3-2班的书架", "完成清点"):
            assert words in text
