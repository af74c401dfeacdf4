"""A child at the kiosk: tap, scan, see at once whether the book is theirs and until when."""

from __future__ import annotations

from bookcorner.circulation.codes import Source
from bookcorner.circulation.events import EventType
from bookcorner.kiosk.screens.idle import IdleScreen
from bookcorner.kiosk.screens.visit import VisitScreen
from bookcorner.kiosk.wording import Tone
from tests.kiosk.corner import UNKNOWN_ISBN, Ticker
from tests.kiosk.ui.conftest import banner, desk_for, make_app, scan, screen_text, settings, settle, started, tap
from tests.school import CARDS, DICTIONARY, HONGLOUMENG, MONDAY, SHUIHU, XIAOHONG, XIAOMING, XIYOUJI
from bookcorner.journal.clock import FixedClock


async def test_a_child_taps_scans_and_sees_the_book_is_theirs_until_next_monday(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        assert isinstance(app.screen, IdleScreen)
        await tap(pilot, CARDS[XIAOMING])
        assert isinstance(app.screen, VisitScreen)
        text = screen_text(app)
        assert "Hello, 小明! (class 3-2)" in text and "You may borrow 2 more" in text
        await scan(pilot, XIYOUJI.barcode)
        shown = banner(app)
        assert shown.tone is Tone.SUCCESS and shown.code == "borrowed" and shown.recorded == 1
        text = screen_text(app)
        assert "Borrowed!" in text and "“西游记” is yours until Mon 30 Nov." in text
        assert "借好了！" in text  # the other language under it
        assert "due Mon 30 Nov" in text and "You may borrow 1 more" in text
        assert list(app.sounds.played) == ["success"]
        desk = app.controller.desk
        assert desk.state.loan_of(XIYOUJI.item_id).patron_id == XIAOMING.patron_id
    events = [e.type for e in desk_for(data_dir).journal.events_after(0)]
    assert events == [EventType.CHECKED_OUT]


async def test_each_refusal_is_said_in_words_a_child_understands(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, DICTIONARY.barcode)
        assert banner(app).code == "reference_only"
        assert "This book stays in the classroom" in screen_text(app)
        await scan(pilot, UNKNOWN_ISBN)
        assert banner(app).code == "item_unknown"
        assert "This book is not registered" in screen_text(app) and "give it to the librarian" in screen_text(app)
        await scan(pilot, XIYOUJI.barcode)
        await scan(pilot, HONGLOUMENG.barcode)
        await scan(pilot, SHUIHU.barcode)
        assert banner(app).code == "limit_reached" and banner(app).tone is Tone.REFUSAL
        assert "You have 2 books already" in screen_text(app)
        assert list(app.sounds.played) == ["refusal", "refusal", "success", "success", "refusal"]


async def test_an_overdue_book_blocks_borrowing_until_it_is_scanned_back(data_dir):
    clock = FixedClock(MONDAY)
    with desk_for(data_dir, clock) as desk:
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), XIYOUJI.barcode)
    clock.advance(days=10)  # Thursday of the next week: due on Monday, three school days late
    app = make_app(data_dir, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        text = screen_text(app)
        assert "OVERDUE" in text and "Please bring back the overdue book first" in text
        await scan(pilot, HONGLOUMENG.barcode)
        assert banner(app).code == "overdue"
        assert "Please bring a book back first" in screen_text(app) and "“西游记” was due on Mon 30 Nov." in screen_text(app)
        await scan(pilot, XIYOUJI.barcode)  # the overdue book itself: taken back, not renewed
        assert banner(app).code == "returned" and "It was 3 school day(s) late." in screen_text(app)
        await scan(pilot, HONGLOUMENG.barcode)
        assert banner(app).code == "borrowed"


async def test_scanning_a_book_on_loan_again_renews_it(data_dir):
    clock = FixedClock(MONDAY)
    with desk_for(data_dir, clock) as desk:
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), XIYOUJI.barcode)
    app = make_app(data_dir, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)  # the same day: nothing to renew
        assert banner(app).code == "already_yours" and banner(app).recorded == 0
        clock.advance(days=4)  # Friday
        await scan(pilot, XIYOUJI.barcode)
        assert banner(app).code == "renewed"
        assert "Keep “西游记” until Fri 4 Dec." in screen_text(app)


async def test_a_book_given_back_at_the_idle_screen_names_the_child_then_the_screen_clears(data_dir):
    with desk_for(data_dir) as desk:
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), XIYOUJI.barcode)
    app = make_app(data_dir, config_=settings(screen={"banner_s": 1}))
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await scan(pilot, XIYOUJI.barcode)
        assert isinstance(app.screen, IdleScreen)
        text = screen_text(app)
        assert "Thank you, 小明!" in text and "“西游记” is back." in text and "王小明" not in text
        await pilot.pause(1.2)
        assert "小明" not in screen_text(app)
        await scan(pilot, XIYOUJI.barcode)
        assert banner(app).code == "not_on_loan"


async def test_a_child_may_give_a_book_back_during_their_session(data_dir):
    with desk_for(data_dir) as desk:
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), XIYOUJI.barcode)
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await pilot.click("#mode")
        await settle(pilot)
        await scan(pilot, XIYOUJI.barcode)
        assert banner(app).code == "returned" and "No books at the moment." in screen_text(app)


async def test_the_session_ends_on_a_second_tap_and_on_done(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await tap(pilot, CARDS[XIAOMING])
        assert isinstance(app.screen, IdleScreen)
        await tap(pilot, CARDS[XIAOMING])
        await pilot.click("#done")
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)
        await tap(pilot, CARDS[XIAOMING])
        await pilot.press("escape")
        await pilot.pause(0.1)
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)


async def test_a_quiet_session_counts_down_and_ends(data_dir):
    ticker = Ticker()
    app = make_app(data_dir, ticker=ticker, config_=settings(screen={"session_timeout_s": 30, "countdown_s": 10}))
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        ticker.advance(15)
        await pilot.pause(0.3)
        assert "Ending in" not in screen_text(app)
        ticker.advance(8)
        await pilot.pause(0.3)
        assert "Ending in 7 s" in screen_text(app) and "7秒后结束" in screen_text(app)  # both languages
        await scan(pilot, XIYOUJI.barcode)  # any scan keeps the session open
        assert "Ending in" not in screen_text(app)
        ticker.advance(31)
        await pilot.pause(0.3)
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)


async def test_the_next_child_never_sees_the_previous_childs_books(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)
        first = app.screen
        await tap(pilot, CARDS[XIAOHONG])  # straight after, without Done
        assert isinstance(app.screen, VisitScreen) and app.screen is not first and first not in app.screen_stack
        text = screen_text(app)
        assert "小红" in text and "小明" not in text and "西游记" not in text and "Borrowed" not in text
        await pilot.click("#done")
        await settle(pilot)
        text = screen_text(app)
        assert "小红" not in text and "西游记" not in text


async def test_an_unknown_card_is_answered_at_the_idle_screen(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, "0009999999")
        assert isinstance(app.screen, IdleScreen) and banner(app).code == "card_unknown"
        assert "This card is not registered" in screen_text(app)


async def test_a_lost_card_tapped_during_another_childs_visit_is_answered_to_its_holder_not_on_that_visit(data_dir):
    from tests.school import LOST_CARD  # 小明's old card, reported lost

    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOHONG])
        await scan(pilot, XIYOUJI.barcode)
        await tap(pilot, LOST_CARD.card_id)  # someone else is at the kiosk now
        assert isinstance(app.screen, IdleScreen) and banner(app).code == "card_not_active"
        text = screen_text(app)
        assert "This card cannot be used" in text and "小红" not in text and "西游记" not in text
        refused = list(app.controller.desk.journal.events_after(0))[-1]
        assert refused.type is EventType.REFUSED and refused.actor == XIAOMING.patron_id  # the card's holder
        await tap(pilot, CARDS[XIAOHONG])
        await tap(pilot, "0009999999")  # a card nobody enrolled: someone else too
        assert isinstance(app.screen, IdleScreen) and banner(app).code == "card_unknown"
        await tap(pilot, CARDS[XIAOMING])
        await tap(pilot, LOST_CARD.card_id)  # 小明's own old card: the answer is his, his visit goes on
        assert isinstance(app.screen, VisitScreen) and banner(app).code == "card_not_active"
        assert "小明" in screen_text(app)
