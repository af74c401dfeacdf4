"""Scenarios a librarian would describe, checked against the pure rules."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bookcorner.circulation import rules
from bookcorner.circulation.codes import CodeKind, Source, classify
from bookcorner.circulation.events import EventType
from bookcorner.circulation.policy import DEFAULT_POLICY, RolePolicy, build_policy
from bookcorner.circulation.rules import Action, Ambiguity, Identified, Reason, Warning_
from tests.circulation.ledger import Ledger
from tests.school import (
    ANDERSEN, CARDS, DAWEI, DICTIONARY, HONGLOUMENG, LEFT, LOST_CARD, MAGAZINE, MEIMEI, MONDAY, OLD_BOOK,
    SHUIHU, TEACHER, XIAOHONG, XIAOMING, XIYOUJI, at, reference,
)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(reference())


def who(ledger: Ledger, patron) -> Identified:
    outcome = rules.identify(ledger.reference, classify(CARDS[patron], ledger.reference, Source.CARD_READER))
    assert isinstance(outcome, Identified)
    return outcome


def checkout(ledger: Ledger, patron, code: str, now=MONDAY):
    scanned = classify(code, ledger.reference)
    return ledger.record(rules.checkout(ledger.reference, ledger.state, who(ledger, patron), scanned, now), now)


def checkin(ledger: Ledger, code: str, now=MONDAY, patron=None, ambiguity=Ambiguity.REFUSE):
    scanned = classify(code, ledger.reference)
    card = who(ledger, patron) if patron else None
    return ledger.record(rules.checkin(ledger.reference, ledger.state, scanned, now, card, ambiguity), now)


def test_a_child_borrows_a_labelled_book_for_a_week(ledger):
    decision = checkout(ledger, XIAOMING, XIYOUJI.barcode)
    assert decision.ok and decision.result.action is Action.CHECKED_OUT
    assert decision.result.due == date(2026, 11, 30)
    assert [e.type for e in ledger.events] == [EventType.CHECKED_OUT]
    assert ledger.state.loan_of(XIYOUJI.item_id).patron_id == XIAOMING.patron_id


def test_the_third_book_is_refused_with_how_many_are_on_loan(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    checkout(ledger, XIAOMING, HONGLOUMENG.barcode)
    decision = checkout(ledger, XIAOMING, SHUIHU.barcode)
    assert decision.result.reason is Reason.LIMIT_REACHED
    assert decision.result.details["loan_count"] == 2 and decision.result.details["limit"] == 2
    assert ledger.events[-1].type is EventType.REFUSED
    assert ledger.state.loan_of(SHUIHU.item_id) is None


def test_an_overdue_book_blocks_borrowing_and_is_named(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode, now=at(2026, 11, 9))
    decision = checkout(ledger, XIAOMING, HONGLOUMENG.barcode, now=MONDAY)
    assert decision.result.reason is Reason.OVERDUE
    assert decision.result.details["overdue"] == [{"item_id": "I001", "title": "西游记", "due": "2026-11-16"}]


def test_reference_books_stay_in_the_room_even_for_teachers(ledger):
    for patron in (XIAOMING, TEACHER):
        decision = checkout(ledger, patron, DICTIONARY.barcode)
        assert decision.result.reason is Reason.REFERENCE_ONLY
        assert decision.result.details["title"] == "新华字典"


def test_rescanning_a_book_borrowed_today_changes_nothing(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    before = len(ledger.events)
    decision = checkout(ledger, XIAOMING, XIYOUJI.barcode)
    assert decision.result.reason is Reason.ALREADY_YOURS
    assert len(ledger.events) == before


def test_rescanning_later_renews_once(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    thursday = at(2026, 11, 26)
    renewed = checkout(ledger, XIAOMING, XIYOUJI.barcode, now=thursday)
    assert renewed.result.action is Action.RENEWED and renewed.result.due == date(2026, 12, 3)
    refused = checkout(ledger, XIAOMING, XIYOUJI.barcode, now=at(2026, 11, 30))
    assert refused.result.reason is Reason.RENEWAL_LIMIT


def test_periodicals_cannot_be_renewed_by_students(ledger):
    checkout(ledger, XIAOMING, MAGAZINE.barcode)
    assert checkout(ledger, XIAOMING, MAGAZINE.barcode, now=at(2026, 11, 26)).result.reason is Reason.RENEWAL_LIMIT


def test_isbn10_and_isbn13_find_the_same_book(ledger):
    for code in ("7107000500", "978-7-107-00050-8", "9787107000508"):
        scanned = classify(code, ledger.reference)
        assert scanned.kind is CodeKind.ITEM and scanned.item_ids == (OLD_BOOK.item_id,)
    assert classify("702000220x", ledger.reference).item_ids == (XIYOUJI.item_id,)  # check digit X, typed small


def test_scanner_extras_are_stripped():
    ref = reference()
    assert classify("A30001000000010B", ref).item_ids == (XIYOUJI.item_id,)  # Codabar start/stop
    assert classify("978702000220790000", ref).item_ids == (XIYOUJI.item_id,)  # EAN-5 price add-on
    assert classify(" 30001000000010\r\n", ref).item_ids == (XIYOUJI.item_id,)


def test_unknown_and_garbled_codes_are_recorded_for_the_librarian(ledger):
    unknown = checkout(ledger, XIAOMING, "9787544253994")
    assert unknown.result.reason is Reason.ITEM_UNKNOWN
    garbled = checkout(ledger, XIAOMING, "\x1b[A~~")
    assert garbled.result.reason is Reason.UNREADABLE
    assert [e.type for e in ledger.events] == [EventType.UNKNOWN_ITEM, EventType.UNREADABLE]
    assert ledger.events[0].payload.isbn13 == "9787544253994"


def test_card_reader_codes_are_only_ever_cards():
    ref = reference()
    assert classify("0006547886", ref, Source.CARD_READER).kind is CodeKind.CARD
    assert classify("9787020002207", ref, Source.CARD_READER).kind is CodeKind.UNKNOWN_CARD


def test_lost_cards_and_children_who_left_are_refused_at_the_tap():
    ref = reference()
    lost = rules.identify(ref, classify(LOST_CARD.card_id, ref, Source.CARD_READER))
    assert lost.result.reason is Reason.CARD_NOT_ACTIVE
    left = rules.identify(ref, classify(CARDS[LEFT], ref, Source.CARD_READER))
    assert left.result.reason is Reason.PATRON_LEFT


def test_a_suspended_child_may_return_but_not_borrow(ledger):
    assert checkout(ledger, DAWEI, XIYOUJI.barcode).result.reason is Reason.PATRON_SUSPENDED


def test_copies_sharing_an_isbn_are_lent_one_by_one(ledger):
    isbn = ANDERSEN[0].isbn13
    lent = [checkout(ledger, patron, isbn).result.item_id for patron in (XIAOMING, XIAOHONG, MEIMEI)]
    assert sorted(lent) == sorted(c.item_id for c in ANDERSEN)


def test_a_copy_in_hand_while_all_are_out_closes_the_oldest_loan(ledger):
    isbn = ANDERSEN[0].isbn13
    for day, patron in zip((16, 17, 18), (XIAOMING, XIAOHONG, MEIMEI)):
        checkout(ledger, patron, isbn, now=at(2026, 11, day))
    decision = checkout(ledger, TEACHER, isbn, now=at(2026, 11, 19))
    assert decision.ok and Warning_.RETURNED_FROM_OTHER in decision.result.warnings
    assert [e.type for e in ledger.events[-2:]] == [EventType.CHECKED_IN, EventType.CHECKED_OUT]
    assert ledger.events[-2].payload.patron_id == XIAOMING.patron_id
    assert len(ledger.state.loans_of(XIAOMING.patron_id)) == 0


def test_a_labelled_book_on_loan_to_another_child_moves_to_the_new_borrower(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    decision = checkout(ledger, XIAOHONG, XIYOUJI.barcode)
    assert decision.ok and decision.result.warnings == (Warning_.RETURNED_FROM_OTHER,)
    assert ledger.state.loan_of(XIYOUJI.item_id).patron_id == XIAOHONG.patron_id


def test_quick_return_names_the_borrower(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    decision = checkin(ledger, XIYOUJI.barcode)
    assert decision.result.action is Action.CHECKED_IN and decision.result.patron_id == XIAOMING.patron_id
    assert ledger.state.loan_of(XIYOUJI.item_id) is None
    assert ledger.events[-1].payload.with_card is False


def test_returning_a_book_that_was_not_borrowed_is_kept_for_review(ledger):
    decision = checkin(ledger, SHUIHU.barcode)
    assert decision.result.reason is Reason.NOT_ON_LOAN
    assert ledger.events[-1].payload.reason == "not_on_loan"


def test_a_shared_isbn_return_asks_for_a_card_unless_a_librarian_returns_in_bulk(ledger):
    isbn = ANDERSEN[0].isbn13
    checkout(ledger, XIAOMING, isbn, now=at(2026, 11, 16))
    checkout(ledger, XIAOHONG, isbn, now=at(2026, 11, 17))
    assert checkin(ledger, isbn).result.reason is Reason.AMBIGUOUS_COPY
    mine = checkin(ledger, isbn, patron=XIAOHONG)
    assert mine.result.patron_id == XIAOHONG.patron_id
    bulk = checkin(ledger, isbn, ambiguity=Ambiguity.OLDEST)
    assert bulk.result.patron_id == XIAOMING.patron_id


def test_a_student_librarians_bulk_returns_are_recorded_as_their_work_not_their_loans(ledger):
    isbn = ANDERSEN[0].isbn13
    checkout(ledger, MEIMEI, isbn, now=at(2026, 11, 17))
    checkout(ledger, XIAOMING, isbn, now=at(2026, 11, 16))
    scanned = classify(isbn, ledger.reference)
    decision = ledger.record(rules.checkin(ledger.reference, ledger.state, scanned, MONDAY, None, Ambiguity.OLDEST,
                                             handled_by=who(ledger, MEIMEI)), MONDAY)
    assert decision.result.patron_id == XIAOMING.patron_id  # the oldest loan, not the helper's own copy
    event = ledger.events[-1]
    assert event.actor == MEIMEI.patron_id and event.payload.with_card is False


def test_late_returns_count_school_days(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode, now=at(2026, 11, 9))  # due Mon 16 Nov
    decision = checkin(ledger, XIYOUJI.barcode, now=MONDAY)
    assert decision.result.days_late == 5 and Warning_.LATE in decision.result.warnings


def test_due_dates_skip_the_national_day_holiday(ledger):
    decision = checkout(ledger, XIAOMING, XIYOUJI.barcode, now=at(2026, 9, 24))
    assert decision.result.due == date(2026, 10, 8)


def test_holiday_loans_are_due_after_the_holiday(ledger):
    decision = checkout(ledger, XIAOMING, XIYOUJI.barcode, now=at(2027, 1, 12))
    assert decision.result.due == date(2027, 2, 22)


def test_without_holiday_loans_the_term_end_is_a_hard_due_date():
    no_holiday = build_policy(
        roles={role: RolePolicy(holiday_loans=False) for role in DEFAULT_POLICY.roles},
        item_defaults={t: DEFAULT_POLICY.rule(XIAOMING.role, t) for t in (MAGAZINE.item_type, XIYOUJI.item_type)},
    )
    ledger = Ledger(reference(policy=no_holiday))
    decision = checkout(ledger, XIAOMING, XIYOUJI.barcode, now=at(2027, 1, 12))
    assert decision.result.due == date(2027, 1, 15)


def test_only_librarians_report_damage_and_a_damaged_book_comes_back_from_its_borrower(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    scanned = classify(XIYOUJI.barcode, ledger.reference)
    refused = rules.report_damaged(ledger.reference, ledger.state, who(ledger, XIAOHONG), scanned, MONDAY)
    assert refused.result.reason is Reason.NOT_ALLOWED
    done = ledger.record(rules.report_damaged(ledger.reference, ledger.state, who(ledger, MEIMEI), scanned, MONDAY,
                                              "torn cover"), MONDAY)
    assert done.ok and [e.type for e in done.events] == [EventType.CHECKED_IN, EventType.ITEM_DAMAGED]
    assert checkout(ledger, XIAOHONG, XIYOUJI.barcode).result.reason is Reason.IN_REPAIR
    repaired = ledger.record(rules.report_found(ledger.reference, ledger.state, who(ledger, MEIMEI), scanned, MONDAY),
                             MONDAY)
    assert repaired.result.action is Action.MARKED_REPAIRED
    assert checkout(ledger, XIAOHONG, XIYOUJI.barcode).ok


def test_a_lost_book_that_turns_up_can_be_borrowed(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    scanned = classify(XIYOUJI.barcode, ledger.reference)
    lost = ledger.record(rules.report_lost(ledger.reference, ledger.state, who(ledger, TEACHER), scanned, MONDAY),
                         MONDAY)
    assert lost.ok and ledger.state.loan_of(XIYOUJI.item_id) is None
    again = checkout(ledger, XIAOHONG, XIYOUJI.barcode, now=MONDAY + timedelta(days=1))
    assert again.ok and Warning_.WAS_LOST in again.result.warnings


def test_allowance_tells_a_child_how_many_more(ledger):
    checkout(ledger, XIAOMING, XIYOUJI.barcode)
    allowance = rules.allowance(ledger.reference, ledger.state, XIAOMING, MONDAY.date())
    assert (allowance.loan_count, allowance.may_checkout) == (1, 1)
    late = rules.allowance(ledger.reference, ledger.state, XIAOMING, date(2026, 12, 15))
    assert late.blocked and late.may_checkout == 0


def test_a_make_up_working_saturday_is_a_school_day():
    from dataclasses import replace

    from tests.school import CALENDAR
    calendar = replace(CALENDAR, open_dates=frozenset({date(2026, 10, 10)}))
    ledger = Ledger(reference(calendar=calendar))
    decision = checkout(ledger, XIAOMING, XIYOUJI.barcode, now=at(2026, 10, 3))  # due Sat 10 Oct, a make-up day
    assert decision.result.due == date(2026, 10, 10)


LIBRARIAN_CARD = "0001000077"


def librarian_reference():
    from bookcorner.circulation.model import Card, Patron, Role

    ref = reference()
    librarian = Patron("L99", "薛老师", Role.LIBRARIAN)
    from bookcorner.circulation.reference import build_reference
    return build_reference([*ref.patrons.values(), librarian], [*ref.cards.values(), Card(LIBRARIAN_CARD, "L99")],
                           ref.items.values(), ref.policy, ref.calendar, ref.timetable), Identified(librarian, LIBRARIAN_CARD)


def test_only_the_librarian_enrols_cards_and_the_card_works_at_once():
    from bookcorner.circulation.reference import with_local_additions

    ref, librarian = librarian_reference()
    ledger = Ledger(ref)
    new_card = classify("0005550001", ref, Source.CARD_READER)
    assert rules.enrol_card(ref, who(ledger, MEIMEI), new_card, XIAOMING.patron_id).result.reason is Reason.NOT_ALLOWED
    taken = classify(CARDS[XIAOHONG], ref, Source.CARD_READER)
    assert rules.enrol_card(ref, librarian, taken, XIAOMING.patron_id).result.reason is Reason.ALREADY_ENROLLED
    assert rules.enrol_card(ref, librarian, new_card, "nobody").result.reason is Reason.PATRON_UNKNOWN
    done = ledger.record(rules.enrol_card(ref, librarian, new_card, XIAOMING.patron_id, replace_other_cards=True),
                         MONDAY)
    assert done.ok and done.events[0].payload.replaces == (CARDS[XIAOMING],)
    local = with_local_additions(ref, ledger.state.enrolled_cards, ledger.state.registered_items)
    assert rules.identify(local, classify("0005550001", local, Source.CARD_READER)).patron == XIAOMING
    old = rules.identify(local, classify(CARDS[XIAOMING], local, Source.CARD_READER))
    assert old.result.reason is Reason.CARD_NOT_ACTIVE


def test_a_new_book_is_registered_whole_or_not_at_all_and_can_be_borrowed_at_once():
    from bookcorner.circulation.reference import with_local_additions

    ref, librarian = librarian_reference()
    ledger = Ledger(ref)
    unknown = classify("9787544253994", ref)
    assert rules.register_item(ref, librarian, unknown, "K-1", "  ").result.reason is Reason.TITLE_MISSING
    labelled = classify(XIYOUJI.barcode, ref)
    assert rules.register_item(ref, librarian, labelled, "K-2", "西游记").result.reason is Reason.ALREADY_REGISTERED
    done = ledger.record(rules.register_item(ref, librarian, unknown, "K-3", "活着"), MONDAY)
    assert done.ok
    local = with_local_additions(ref, ledger.state.enrolled_cards, ledger.state.registered_items)
    item = local.items["K-3"]
    assert (item.isbn13, item.isbn10, item.barcode, item.title) == ("9787544253994", "7544253996", None, "活着")
    lent = rules.checkout(local, ledger.state, who(ledger, XIAOMING), classify("7544253996", local), MONDAY)
    assert lent.ok and lent.result.item_id == "K-3"
    # another copy of an ISBN-only book shares the printed barcode
    another = ledger.record(rules.register_item(local, librarian, classify("9787544253994", local), "K-4", "活着"),
                            MONDAY)
    assert another.ok


def test_a_checkout_the_server_moved_to_another_school_day_is_due_as_the_rules_say_on_that_day():
    from datetime import datetime

    from bookcorner.circulation.model import ItemType, Role
    from tests.school import CALENDAR, ZONE

    def due_on(kiosk_time: datetime, corrected: datetime, given: date):
        return rules.due_on_corrected_day(DEFAULT_POLICY, CALENDAR, Role.STUDENT, ItemType.CIRCULATING, given,
                                          kiosk_time, corrected, ZONE)

    monday = datetime(2026, 11, 23, 12, 5, tzinfo=ZONE)
    given = rules.loan_due(DEFAULT_POLICY, CALENDAR, Role.STUDENT, ItemType.CIRCULATING, monday.date())
    # the kiosk's clock was a day behind: the child was told Monday's date, Tuesday's is one day later
    assert due_on(monday, monday + timedelta(days=1), given) == given + timedelta(days=1)
    # a clock off by minutes within the same school day gives the same date: nothing to offer
    assert due_on(monday, monday + timedelta(minutes=40), given) is None
    # the kiosk's day was another, but the corrected day's rules give the date the child was told: nothing either
    assert due_on(monday - timedelta(days=1), monday, given) is None
