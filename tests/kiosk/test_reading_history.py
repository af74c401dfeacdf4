"""The children's borrowing history for "what to read next" is read from the journal a chunk
at a time between scans, so a long journal never delays the kiosk's start or a child's
banner; until it is all read, the kiosk suggests nothing rather than a book already read."""

from __future__ import annotations

from bookcorner.circulation.codes import Source
from bookcorner.circulation.suggestions import book_key
from bookcorner.journal.clock import FixedClock
from bookcorner.kiosk.desk import CirculationDesk
from bookcorner.kiosk.reading import ReadingHistory
from tests.school import ANDERSEN, CARDS, MONDAY, SHUIHU, XIAOHONG, XIAOMING, XIYOUJI


def test_the_history_is_read_a_chunk_at_a_time_and_is_none_until_it_is_all_read(data_dir):
    with CirculationDesk(data_dir, "demo-corner", FixedClock(MONDAY)) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        hong = desk.identify(CARDS[XIAOHONG], Source.CARD_READER)
        assert desk.checkout(ming, XIYOUJI.barcode).ok
        assert desk.checkout(hong, SHUIHU.barcode).ok
        assert desk.checkin(XIYOUJI.barcode).ok
        reference, journal = desk.reference, desk.paths.journal
        events = desk.journal.last_seq

    history = ReadingHistory(journal)
    history.CHUNK = 2
    steps = 0
    while not history.complete:
        assert history.books_read(XIAOMING.patron_id, reference) is None  # not all read: no answer
        history.step()
        steps += 1
    assert steps == events // 2 + 1
    assert history.books_read(XIAOMING.patron_id, reference) == {book_key(XIYOUJI)}
    assert history.books_read(XIAOHONG.patron_id, reference) == {book_key(SHUIHU)}


def test_what_is_recorded_meanwhile_is_noted_once_and_a_short_journal_finishes_within_the_budget(data_dir):
    with CirculationDesk(data_dir, "demo-corner", FixedClock(MONDAY)) as desk:
        ming = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        assert desk.checkout(ming, XIYOUJI.barcode).ok
        history = ReadingHistory(desk.paths.journal)
        history.step()  # the first chunk read...
        recorded = desk.checkout(ming, ANDERSEN[0].isbn13)  # ...then a borrow the reading will also meet
        history.note(recorded.events)
        assert history.finish(budget_s=1.0)
        assert history.books_read(XIAOMING.patron_id, desk.reference) == {book_key(XIYOUJI), book_key(ANDERSEN[0])}


def test_a_stock_take_left_unfinished_is_found_with_its_scans_and_one_finished_is_not_reopened(data_dir):
    from bookcorner.circulation.events import (
        EventDraft,
        EventType,
        StocktakeFinished,
        StocktakeScanned,
        StocktakeStarted,
    )

    def draft(payload) -> EventDraft:
        return EventDraft(payload.TYPE, "L99", payload)

    with CirculationDesk(data_dir, "demo-corner", FixedClock(MONDAY)) as desk:
        done = desk.record([draft(StocktakeStarted(stocktake_id="a", shelf=("3-2",))),
                            draft(StocktakeScanned(stocktake_id="a", code=XIYOUJI.barcode)),
                            draft(StocktakeFinished(stocktake_id="a", scans=1))])
        open_ = desk.record([draft(StocktakeStarted(stocktake_id="b", shelf=("3-2",), patron_id="L99")),
                             draft(StocktakeScanned(stocktake_id="b", code=SHUIHU.barcode)),
                             draft(StocktakeScanned(stocktake_id="b", code=XIYOUJI.barcode))])
        journal = desk.paths.journal
    assert done[0].type is EventType.STOCKTAKE_STARTED

    history = ReadingHistory(journal)
    history.note(done)  # recorded by this kiosk before the journal's read reached them
    history.note(open_[:2])
    assert history.unfinished_stocktake() is None  # not all read: no answer yet
    history.CHUNK = 2
    history.finish(5.0)
    found = history.unfinished_stocktake()
    assert found is not None and found.stocktake_id == "b" and found.shelf == ("3-2",)
    assert found.codes == [SHUIHU.barcode, XIYOUJI.barcode]  # each scan once, in order, though noted twice
