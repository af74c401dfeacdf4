"""Properties of the rules that must hold whatever children do, in any order."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bookcorner.circulation import rules
from bookcorner.circulation.calendar import HolidayLoan, SchoolCalendar, Term, due_date
from bookcorner.circulation.codes import Source, classify
from bookcorner.circulation.rules import Action, Ambiguity, Identified
from bookcorner.circulation.state import project
from tests.circulation.ledger import Ledger
from tests.school import CARDS, ITEMS, at, reference

PATRON_CARDS = list(CARDS.values())
CODES = sorted({i.barcode for i in ITEMS if i.barcode} | {i.isbn13 for i in ITEMS if i.isbn13} | {"7107000500"})

operation = st.one_of(
    st.tuples(st.just("checkout"), st.sampled_from(PATRON_CARDS), st.sampled_from(CODES)),
    st.tuples(st.just("return"), st.sampled_from([None, *PATRON_CARDS]), st.sampled_from(CODES),
              st.sampled_from(list(Ambiguity))),
    st.tuples(st.just("damaged"), st.sampled_from(PATRON_CARDS), st.sampled_from(CODES)),
    st.tuples(st.just("lost"), st.sampled_from(PATRON_CARDS), st.sampled_from(CODES)),
    st.tuples(st.just("found"), st.sampled_from(PATRON_CARDS), st.sampled_from(CODES)),
    st.tuples(st.just("wait"), st.integers(min_value=0, max_value=12)),
)


def check_invariants(ledger: Ledger, today: date) -> None:
    ref, state = ledger.reference, ledger.state
    # an item is never on loan twice: every loan appears under exactly one patron
    listed = [item for items in state.by_patron.values() for item in items]
    assert sorted(listed) == sorted(state.loans)
    for patron_id, items in state.by_patron.items():
        patron = ref.patrons[patron_id]
        assert len(items) <= ref.policy.role(patron.role).max_loans, "a patron exceeds the loan limit"
        for item_id in items:
            assert state.loans[item_id].patron_id == patron_id
    for loan in state.loans.values():
        assert ref.calendar.is_open(loan.due), f"due date {loan.due} falls on a closed day"
    # the state is a projection: rebuilding it from the events gives the same
    rebuilt = project(ref, ledger.events)
    assert rebuilt.loans == state.loans and rebuilt.item_status == state.item_status


@settings(max_examples=150, deadline=None)
@given(st.lists(operation, max_size=60), st.integers(min_value=0, max_value=150))
def test_circulation_invariants_hold_for_any_sequence(operations, start_offset):
    ref = reference()
    ledger = Ledger(ref)
    now = at(2026, 9, 1) + timedelta(days=start_offset)
    for op in operations:
        if op[0] == "wait":
            now += timedelta(days=op[1])
            continue
        card = op[1]
        who = None
        if card is not None:
            identified = rules.identify(ref, classify(card, ref, Source.CARD_READER))
            if not isinstance(identified, Identified):
                continue
            who = identified
        scanned = classify(op[2], ref)
        if op[0] == "checkout":
            decision = rules.checkout(ref, ledger.state, who, scanned, now)
        elif op[0] == "return":
            decision = rules.checkin(ref, ledger.state, scanned, now, who, op[3])
        else:
            report = {"damaged": rules.report_damaged, "lost": rules.report_lost, "found": rules.report_found}[op[0]]
            decision = report(ref, ledger.state, who, scanned, now)
        on_loan_before = {i: l.loan_id for i, l in ledger.state.loans.items()}
        ledger.record(decision, now)
        if decision.ok and decision.result.action is Action.CHECKED_IN:
            # a return always closes the open loan it named
            assert on_loan_before.get(decision.result.item_id) is not None
            assert ledger.state.loans.get(decision.result.item_id) is None
        check_invariants(ledger, now.date())


weekday_sets = st.frozensets(st.integers(min_value=0, max_value=6), max_size=5)


@st.composite
def calendars(draw):
    base = date(2026, 9, 1)
    closed = draw(st.frozensets(st.integers(min_value=0, max_value=200).map(lambda d: base + timedelta(days=d)),
                                max_size=40))
    start = base + timedelta(days=draw(st.integers(0, 30)))
    end = start + timedelta(days=draw(st.integers(20, 160)))
    holiday = ()
    if draw(st.booleans()):
        checkout_until = end
        holiday = (HolidayLoan("h", end - timedelta(days=draw(st.integers(0, 14))), checkout_until,
                               end + timedelta(days=draw(st.integers(10, 60)))),)
    make_up = draw(st.frozensets(st.integers(min_value=0, max_value=200).map(lambda d: base + timedelta(days=d)),
                                 max_size=5))
    return SchoolCalendar(draw(weekday_sets), closed, (Term("t", start, end),), holiday, make_up)


@settings(max_examples=300, deadline=None)
@given(calendars(), st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=30), st.booleans())
def test_due_dates_never_fall_on_a_closed_day(calendar, offset, loan_days, holiday_loans):
    today = date(2026, 9, 1) + timedelta(days=offset)
    due = due_date(calendar, today, loan_days, holiday_loans)
    term = calendar.term_on(today)
    window = calendar.holiday_loan_on(today) if holiday_loans else None
    if due is None:
        assert term is not None and window is None, "only a term end can leave no due date"
        return
    assert calendar.is_open(due)
    assert due >= today
    if term is not None and window is None:
        assert due <= term.end, "a loan made in term is due by the term's end"
