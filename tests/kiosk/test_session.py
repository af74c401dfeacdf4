"""The session controller without a screen: the kiosk's seam (commands in, typed outcomes
out, the journal on disk), driven as the screen's desk worker drives it, on a real journal
in a temporary directory with the test school's reference data; and its words, in both
languages at once, from its own thread, without touching the screen's language."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest

from bookcorner import i18n
from bookcorner.circulation.events import Event, EventType
from bookcorner.devices.events import CardTap, Scan
from bookcorner.journal.journal import JournalReader
from bookcorner.kiosk import session as s
from bookcorner.kiosk.desk import CirculationDesk, DataPaths
from bookcorner.kiosk.pin import PinGuard
from bookcorner.kiosk.wording import Tone, not_saved
from tests.kiosk.corner import LIBRARIAN_CARD, PIN, UNKNOWN_CARD, UNKNOWN_ISBN
from tests.school import (ANDERSEN, CARDS, HONGLOUMENG, LEFT, LOST_CARD, MEIMEI, MONDAY, TEACHER, XIAOHONG,
                          XIAOMING, XIYOUJI)


def test_a_thread_words_in_another_language_without_changing_the_screens():
    i18n.use_language("en")
    seen: dict[str, str] = {}

    def worker() -> None:
        with i18n.in_language("zh_CN"):
            seen["worker"] = not_saved(True).headline
            seen["worker_language"] = i18n.current_language()
        seen["after"] = i18n.current_language()

    try:
        with i18n.in_language("zh_CN"):
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()
            assert i18n.current_language() == "zh_CN"
        assert i18n.current_language() == "en" and i18n._("Borrowed!") == "Borrowed!"
        assert seen == {"worker": "没有保存：请告诉图书管理员", "worker_language": "zh_CN", "after": "en"}
    finally:
        i18n.use_language("en")


# -- the controller driven as the screen drives it, without a screen ----------------------
#
# The kiosk's seam: commands in (taps, scans, keys), typed outcomes out, the journal on disk.
# Every command goes through Kiosk.do, which checks that what the controller says it
# recorded (Feedback.recorded) is on disk, read back by a reader of its own, when it answers.


class Kiosk:
    """The session controller as the screen's desk worker drives it."""

    def __init__(self, controller: s.SessionController, data_dir: Path) -> None:
        self.controller = controller
        self.journal = DataPaths(data_dir).journal

    def on_disk(self) -> list[Event]:
        return list(JournalReader(self.journal).events_after(0))

    def do(self, command: s.Command) -> list[s.Outcome]:
        before = self.on_disk()
        outcomes = self.controller.handle(command)
        recorded = sum(feedback.recorded for feedback in feedbacks(outcomes))
        after = self.on_disk()
        assert after[:len(before)] == before and len(after) - len(before) == recorded, (outcomes, after[len(before):])
        return outcomes

    def tap(self, card: str) -> list[s.Outcome]:
        return self.do(CardTap(card, "test:reader", 0.0))

    def scan(self, code: str) -> list[s.Outcome]:
        return self.do(Scan(code, "test:scanner", 0.0))

    def answer(self, command: s.Command) -> s.Answer:
        """The one answer a command gets."""
        outcomes = self.do(command)
        assert [type(outcome) for outcome in outcomes] == [s.Answer], outcomes
        answer = outcomes[0]
        assert isinstance(answer, s.Answer)
        return answer

    def opened(self, card: str) -> s.VisitView:
        outcomes = self.tap(card)
        assert isinstance(outcomes[-1], s.VisitOpened), outcomes
        return outcomes[-1].view


def feedbacks(outcomes: list[s.Outcome]) -> list[s.Feedback]:
    found = []
    for outcome in outcomes:
        if isinstance(outcome, s.Answer) or (isinstance(outcome, s.VisitOpened) and outcome.feedback is not None):
            assert outcome.feedback is not None
            found.append(outcome.feedback)
    return found


@pytest.fixture
def kiosk(controller, data_dir) -> Kiosk:
    assert controller.start() == [s.Ready("Test school", "demo-corner", 0)]
    return Kiosk(controller, data_dir)


def checked_out_by(kiosk: Kiosk, card: str, *codes: str) -> None:
    kiosk.opened(card)
    for code in codes:
        assert kiosk.answer(S(code)).feedback.code == "borrowed"
    assert kiosk.do(s.EndVisit()) == [s.VisitClosed("done")]


def T(card: str) -> CardTap:
    return CardTap(card, "test:reader", 0.0)


def S(code: str) -> Scan:
    return Scan(code, "test:scanner", 0.0)


def test_a_card_opens_a_visit_of_that_child_and_a_borrowed_book_is_on_disk_when_the_kiosk_says_so(kiosk):
    view = kiosk.opened(CARDS[XIAOMING])
    assert (view.kind, view.patron_id, view.greeting, view.mode, view.loans) == (
        s.VisitKind.BORROWER, "S01", "小明", s.ScanMode.CHECKOUT, ())
    assert view.may_checkout == view.limit > 0 and view.slot is None

    answer = kiosk.answer(S(XIYOUJI.barcode))
    assert (answer.feedback.code, answer.feedback.tone, answer.feedback.recorded) == ("borrowed", Tone.SUCCESS, 1)
    assert answer.feedback.sound == "success"
    assert [words.language for words in answer.feedback.words] == ["en", "zh_CN"]
    assert answer.feedback.words[0].headline == "Borrowed!"
    assert answer.view is not None and [line.item_id for line in answer.view.loans] == [XIYOUJI.item_id]
    assert answer.view.may_checkout == view.may_checkout - 1 and answer.view.visit_id == view.visit_id
    [event] = kiosk.on_disk()
    assert event.type is EventType.CHECKED_OUT and event.kiosk_id == "demo-corner"
    assert (event.payload.item_id, event.payload.patron_id) == (XIYOUJI.item_id, "S01")


def test_what_the_kiosk_acknowledged_is_what_the_next_start_finds(kiosk, controller, data_dir, clock):
    checked_out_by(kiosk, CARDS[XIAOMING], XIYOUJI.barcode, HONGLOUMENG.barcode)
    kiosk.opened(CARDS[XIAOMING])
    kiosk.do(s.SwitchMode(s.ScanMode.CHECKIN))
    kiosk.answer(S(HONGLOUMENG.barcode))
    controller.close()
    with CirculationDesk(data_dir, "demo-corner", clock) as desk:
        assert desk.journal.last_seq == 3
        assert [loan.item_id for loan in desk.patron_view(XIAOMING).loans] == [XIYOUJI.item_id]


def test_a_book_comes_back_in_the_return_mode_and_the_childs_loans_show_it(kiosk):
    kiosk.opened(CARDS[XIAOMING])
    kiosk.answer(S(XIYOUJI.barcode))
    kiosk.answer(S(HONGLOUMENG.barcode))
    [changed] = kiosk.do(s.SwitchMode(s.ScanMode.CHECKIN))
    assert isinstance(changed, s.VisitChanged) and changed.view.mode is s.ScanMode.CHECKIN

    answer = kiosk.answer(S(XIYOUJI.barcode))
    assert (answer.feedback.code, answer.feedback.recorded) == ("returned", 1)
    assert answer.view is not None and [line.item_id for line in answer.view.loans] == [HONGLOUMENG.item_id]
    assert [event.type for event in kiosk.on_disk()] == [EventType.CHECKED_OUT, EventType.CHECKED_OUT,
                                                         EventType.CHECKED_IN]


def test_a_child_may_not_switch_to_the_librarians_modes(kiosk):
    kiosk.opened(CARDS[XIAOMING])
    [changed] = kiosk.do(s.SwitchMode(s.ScanMode.DAMAGED))
    assert isinstance(changed, s.VisitChanged) and changed.view.mode is s.ScanMode.CHECKOUT


def test_a_book_scanned_again_on_a_later_day_is_renewed_once_then_refused(kiosk, clock):
    checked_out_by(kiosk, CARDS[XIAOMING], XIYOUJI.barcode)
    kiosk.opened(CARDS[XIAOMING])
    assert kiosk.answer(S(XIYOUJI.barcode)).feedback.code == "already_yours"  # the same day: nothing to renew
    clock.advance(days=3)
    renewed = kiosk.answer(S(XIYOUJI.barcode))
    assert (renewed.feedback.code, renewed.feedback.recorded) == ("renewed", 1)
    assert renewed.view is not None and renewed.view.loans[0].due > MONDAY.date() + timedelta(days=7)
    clock.advance(days=2)
    refused = kiosk.answer(S(XIYOUJI.barcode))
    assert refused.feedback.code == "renewal_limit" and refused.feedback.tone is Tone.REFUSAL
    assert [event.type for event in kiosk.on_disk()] == [EventType.CHECKED_OUT, EventType.RENEWED, EventType.REFUSED]


@pytest.mark.parametrize(("card", "code"), [
    (LOST_CARD.card_id, "card_not_active"),
    (CARDS[LEFT], "patron_left"),
    (UNKNOWN_CARD, "card_unknown"),
])
def test_a_card_the_kiosk_will_not_take_opens_no_visit_and_the_refusal_is_journalled(kiosk, card, code):
    answer = kiosk.answer(T(card))
    assert (answer.feedback.code, answer.feedback.tone, answer.view) == (code, Tone.REFUSAL, None)
    assert answer.feedback.sound == "refusal" and answer.feedback.recorded == 1
    assert kiosk.answer(S(XIYOUJI.barcode)).view is None  # still nobody's visit: a quick return
    assert len(kiosk.on_disk()) == 2


def test_another_persons_refused_card_ends_the_visit_and_is_answered_at_the_idle_screen(kiosk):
    kiosk.opened(CARDS[XIAOMING])
    closed, answer = kiosk.tap(CARDS[LEFT])
    assert closed == s.VisitClosed("next")
    assert isinstance(answer, s.Answer) and answer.feedback.code == "patron_left" and answer.view is None


def test_the_childs_own_lost_card_is_answered_on_the_childs_screen(kiosk):
    view = kiosk.opened(CARDS[XIAOMING])
    answer = kiosk.answer(T(LOST_CARD.card_id))  # LOST_CARD was 小明's
    assert answer.feedback.code == "card_not_active"
    assert answer.view is not None and answer.view.visit_id == view.visit_id


@pytest.mark.parametrize(("code", "reason", "event"), [
    ("hello!!", "unreadable", EventType.UNREADABLE),
    (UNKNOWN_ISBN, "item_unknown", EventType.UNKNOWN_ITEM),
])
def test_garbage_and_an_unknown_book_are_refused_and_journalled_and_the_visit_goes_on(kiosk, code, reason, event):
    view = kiosk.opened(CARDS[XIAOMING])
    answer = kiosk.answer(S(code))
    assert (answer.feedback.code, answer.feedback.tone, answer.feedback.recorded) == (reason, Tone.REFUSAL, 1)
    assert answer.view is not None and answer.view.visit_id == view.visit_id and answer.view.loans == ()
    assert [e.type for e in kiosk.on_disk()] == [event]
    assert kiosk.answer(S(XIYOUJI.barcode)).feedback.code == "borrowed"


def test_a_second_tap_a_timeout_and_the_done_key_each_close_the_visit(kiosk):
    kiosk.opened(CARDS[XIAOMING])
    assert kiosk.tap(CARDS[XIAOMING]) == [s.VisitClosed("second_tap")]
    kiosk.opened(CARDS[XIAOMING])
    assert kiosk.do(s.EndVisit("timeout")) == [s.VisitClosed("timeout")]
    kiosk.opened(CARDS[XIAOMING])
    assert kiosk.do(s.EndVisit()) == [s.VisitClosed("done")]
    assert kiosk.do(s.SwitchMode(s.ScanMode.CHECKIN)) == []  # nobody's visit to change


def test_the_next_childs_card_closes_the_visit_and_opens_theirs(kiosk):
    first = kiosk.opened(CARDS[XIAOMING])
    closed, opened = kiosk.tap(CARDS[XIAOHONG])
    assert closed == s.VisitClosed("next")
    assert isinstance(opened, s.VisitOpened) and opened.view.patron_id == "S02"
    assert opened.view.visit_id != first.visit_id and opened.feedback is None


def test_after_a_timeout_a_scan_borrows_for_nobody_it_is_a_quick_return(kiosk):
    checked_out_by(kiosk, CARDS[XIAOMING], XIYOUJI.barcode)
    kiosk.opened(CARDS[XIAOMING])
    kiosk.do(s.EndVisit("timeout"))
    answer = kiosk.answer(S(XIYOUJI.barcode))
    assert (answer.feedback.code, answer.feedback.recorded, answer.view) == ("returned", 1, None)
    assert "小明" in answer.feedback.words[0].headline  # thanked by name, though no card was shown
    nothing = kiosk.answer(S(HONGLOUMENG.barcode))
    assert (nothing.feedback.code, nothing.feedback.tone) == ("not_on_loan", Tone.WARNING)


def test_a_shared_barcode_at_the_idle_screen_waits_for_the_card_of_whoever_returns_it(kiosk, ticker):
    checked_out_by(kiosk, CARDS[XIAOMING], ANDERSEN[0].isbn13)
    checked_out_by(kiosk, CARDS[XIAOHONG], ANDERSEN[0].isbn13)
    checked_out_by(kiosk, CARDS[TEACHER], ANDERSEN[0].isbn13)  # three copies out, one printed barcode
    asked = kiosk.answer(S(ANDERSEN[0].isbn13))
    assert (asked.feedback.code, asked.feedback.recorded) == ("ambiguous_copy", 1)
    ticker.advance(s.PENDING_RETURN_S - 1)
    [opened] = kiosk.tap(CARDS[XIAOHONG])
    assert isinstance(opened, s.VisitOpened) and opened.feedback is not None
    assert opened.feedback.code == "returned" and opened.view.loans == ()
    kiosk.do(s.EndVisit())

    assert kiosk.answer(S(ANDERSEN[0].isbn13)).feedback.code == "ambiguous_copy"  # still two out
    ticker.advance(s.PENDING_RETURN_S + 1)  # too late: the card opens a visit, nothing more
    [late] = kiosk.tap(CARDS[XIAOMING])
    assert isinstance(late, s.VisitOpened) and late.feedback is None and len(late.view.loans) == 1


def test_the_librarian_is_asked_for_her_pin_and_a_wrong_one_is_refused_then_the_right_one_opens_her_mode(kiosk):
    [wanted] = kiosk.tap(LIBRARIAN_CARD)
    assert wanted == s.PinWanted("薛老师", None)
    assert kiosk.answer(S(XIYOUJI.barcode)).feedback.code == "pin_first"
    [refused] = kiosk.do(s.EnterPin("0000"))
    assert isinstance(refused, s.PinRefused) and refused.tries_left == 4 and refused.locked_until is None
    [opened] = kiosk.do(s.EnterPin(PIN))
    assert isinstance(opened, s.VisitOpened)
    assert (opened.view.kind, opened.view.patron_id, opened.view.mode) == (
        s.VisitKind.LIBRARIAN, "L99", s.ScanMode.CHECKIN)
    assert kiosk.do(s.EnterPin(PIN)) == []  # no PIN is wanted any more
    assert kiosk.on_disk() == []  # the PIN is no circulation event


def test_the_librarians_second_tap_at_the_pin_dialog_closes_it(kiosk):
    kiosk.tap(LIBRARIAN_CARD)
    assert kiosk.tap(LIBRARIAN_CARD) == [s.VisitClosed("second_tap")]


def test_too_many_wrong_pins_lock_the_librarians_mode_even_for_the_right_pin(kiosk, clock):
    kiosk.tap(LIBRARIAN_CARD)
    tries = [kiosk.do(s.EnterPin("0000"))[0] for _ in range(5)]
    assert [refused.tries_left for refused in tries if isinstance(refused, s.PinRefused)] == [4, 3, 2, 1, 0]
    last = tries[-1]
    assert isinstance(last, s.PinRefused) and last.locked_until is not None and last.locked_until > clock.now()
    [locked] = kiosk.do(s.EnterPin(PIN))
    assert isinstance(locked, s.PinRefused) and locked.locked_until == last.locked_until


def test_without_a_pin_set_the_librarians_card_opens_nothing(controller, data_dir):
    controller.pins = PinGuard("", data_dir / "state" / "librarian-pin.json", 5, timedelta(minutes=5))
    controller.start()
    kiosk = Kiosk(controller, data_dir)
    answer = kiosk.answer(T(LIBRARIAN_CARD))
    assert answer.feedback.code == "no_pin" and answer.view is None


def test_in_her_mode_an_unknown_card_is_offered_for_enrolment_and_an_unknown_book_for_registration(kiosk):
    kiosk.tap(LIBRARIAN_CARD)
    kiosk.do(s.EnterPin(PIN))
    assert kiosk.tap(UNKNOWN_CARD) == [s.CardToEnrol(UNKNOWN_CARD)]
    enrolled = kiosk.answer(s.EnrolCard(UNKNOWN_CARD, "S02"))
    assert (enrolled.feedback.code, enrolled.feedback.recorded) == ("card_enrolled", 1)

    assert kiosk.scan(UNKNOWN_ISBN) == [s.BookToRegister(UNKNOWN_ISBN, UNKNOWN_ISBN)]
    registered = kiosk.answer(s.RegisterBook(UNKNOWN_ISBN, "活着"))
    assert (registered.feedback.code, registered.feedback.recorded) == ("item_registered", 1)
    assert [event.type for event in kiosk.on_disk()] == [EventType.CARD_ENROLLED, EventType.ITEM_REGISTERED]

    kiosk.do(s.EndVisit())
    view = kiosk.opened(UNKNOWN_CARD)  # the new card works at once, offline
    assert view.patron_id == "S02"
    assert kiosk.answer(S(UNKNOWN_ISBN)).feedback.code == "borrowed"


def test_a_student_librarian_takes_her_classs_returns_in_its_slot_and_sees_them_counted(kiosk):
    checked_out_by(kiosk, CARDS[XIAOMING], XIYOUJI.barcode, HONGLOUMENG.barcode)
    view = kiosk.opened(CARDS[MEIMEI])
    assert (view.kind, view.mode, view.handled) == (s.VisitKind.HELPER, s.ScanMode.CHECKIN, 0)
    assert view.slot == s.SlotView("3-2", MONDAY.replace(hour=12, minute=50), loans=2, returns=0)

    answer = kiosk.answer(S(XIYOUJI.barcode))
    assert (answer.feedback.code, answer.feedback.recorded) == ("returned", 1)
    assert answer.view is not None and answer.view.handled == 1
    assert answer.view.slot == s.SlotView("3-2", MONDAY.replace(hour=12, minute=50), loans=2, returns=1)
    returned = kiosk.on_disk()[-1]
    assert returned.type is EventType.CHECKED_IN and returned.payload.item_id == XIYOUJI.item_id

    [own] = kiosk.do(s.OpenOwnLoans())  # and borrows for herself
    assert isinstance(own, s.VisitOpened) and own.view.kind is s.VisitKind.BORROWER and own.view.patron_id == "L01"


def test_every_kind_of_outcome_reaches_the_app_as_a_message_of_its_own_with_a_handler():
    from bookcorner.kiosk import messages
    from bookcorner.kiosk.app import KioskApp

    kinds = set(get_args(s.Outcome))
    assert set(messages.MESSAGE_OF) == kinds
    assert len(set(messages.MESSAGE_OF.values())) == len(kinds)
    handled = {message for cls in KioskApp.__mro__ for message in vars(cls).get("_decorated_handlers", {})}
    assert set(messages.MESSAGE_OF.values()) <= handled
    answer = s.Answer(s.Feedback(Tone.SUCCESS, (), "borrowed"))
    message = messages.desk_message(answer, 12.5)
    assert isinstance(message, messages.Answered) and message.outcome is answer and message.started == 12.5
