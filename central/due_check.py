"""A due date the kiosk computed under a clock later found wrong.

A checkout's payload carries the due date the kiosk worked out from its own wall clock and
told the child. When the server re-times the checkout (``circulation.retiming``) onto another day
of the school's time zone, and the rules (``circulation.rules.due_on_corrected_day``, the
kiosk's own computation, with the school's loan rules and calendar as the server has them) give
another due date on the corrected day, the loan keeps the date the child was told, and a
review (``ReviewReason.DUE_FROM_WRONG_CLOCK``) offers the corrected one to the librarian: Accept
moves the loan's due date (``corrected_loan``), Dismiss keeps the given one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bookcorner.central import db, zone
from bookcorner.central.loans import LoanLedger
from bookcorner.circulation.calendar import HolidayLoan, SchoolCalendar, Term
from bookcorner.circulation.events import Checkout
from bookcorner.circulation.model import ItemType, Role
from bookcorner.circulation.policy import DEFAULT_POLICY, LoanRule, Policy, RolePolicy
from bookcorner.circulation.replay import ItemState
from bookcorner.circulation.rules import due_on_corrected_day
from bookcorner.protocol.messages import CalendarRecord, PolicyRecord


def policy_of(record: PolicyRecord) -> Policy:
    """The loan rules the kiosks pulled, as the circulation rules take them."""
    roles, rules = dict(DEFAULT_POLICY.roles), dict(DEFAULT_POLICY.rules)
    for name, rule in record.roles.items():
        if name in Role._value2member_map_:
            roles[Role(name)] = RolePolicy(rule.max_loans, rule.block_when_overdue, rule.holiday_loans)
    for cell in record.rules:
        if cell.role in Role._value2member_map_ and cell.item_type in ItemType._value2member_map_:
            rules[(Role(cell.role), ItemType(cell.item_type))] = LoanRule(cell.loanable, cell.loan_days, cell.renewals,
                                                                          cell.max_loans)
    return Policy(roles=roles, rules=rules)


def calendar_of(record: CalendarRecord) -> SchoolCalendar:
    return SchoolCalendar(
        closed_weekdays=frozenset(record.closed_weekdays), closed_dates=frozenset(record.closed_dates),
        terms=tuple(Term(t.name, t.start, t.end) for t in record.terms),
        holiday_loans=tuple(HolidayLoan(h.name, h.checkout_from, h.checkout_until, h.due) for h in record.holiday_loans),
        open_dates=frozenset(record.open_dates))


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


class DueCheck:
    """Checks a batch's re-timed checkouts; reads the rules, the zone and the borrowers' roles
    and books' types only when a checkout moved to another day (rare)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._loaded: tuple[ZoneInfo, Policy, SchoolCalendar] | None = None

    def _rules(self) -> tuple[ZoneInfo, Policy, SchoolCalendar]:
        if self._loaded is None:
            found = {row.name: row.data for row in self.conn.execute(
                select(db.settings.c.name, db.settings.c.data).where(db.settings.c.name.in_(["policy", "calendar"])))}
            policy = policy_of(msgspec.json.decode(found["policy"], type=PolicyRecord)) \
                if "policy" in found else DEFAULT_POLICY
            calendar = calendar_of(msgspec.json.decode(found["calendar"], type=CalendarRecord)) \
                if "calendar" in found else SchoolCalendar()
            self._loaded = (ZoneInfo(zone.school_zone_name(self.conn)), policy, calendar)
        return self._loaded

    def _field(self, table, key, ident: str, name: str) -> str | None:
        data = self.conn.execute(select(table.c.data).where(key == ident)).scalar()
        try:
            value = msgspec.json.decode(data).get(name) if data else None
        except (msgspec.DecodeError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def review(self, checkout: Checkout, wall: datetime | None, corrected: datetime) -> dict[str, Any] | None:
        """The review's detail when the checkout's due date came from a wrong clock, else None.
        ``wall``: the kiosk's time (None: unreadable); ``corrected``: the server's."""
        given = checkout.due
        if wall is None or wall == corrected:
            return None
        school, policy, calendar = self._rules()
        if zone.local_day(wall, school) == zone.local_day(corrected, school):
            return None  # the same school day: the rules give the same date
        patron, item = checkout.patron_id, checkout.item_id
        role = self._field(db.patrons, db.patrons.c.patron_id, patron, "role") or ""
        kind = self._field(db.catalogue, db.catalogue.c.item_id, item, "item_type") or str(ItemType.CIRCULATING)
        if role not in Role._value2member_map_ or kind not in ItemType._value2member_map_:
            return None  # a borrower or book the server does not know: no rule to apply
        due = due_on_corrected_day(policy, calendar, Role(role), ItemType(kind), given, wall, corrected, school)
        if due is None:
            return None
        return {"item_id": item, "patron_id": patron, "kiosk_time": wall.astimezone(school).isoformat(),
                "corrected_time": corrected.astimezone(school).isoformat(), "due_given": given.isoformat(),
                "due_corrected": due.isoformat(), "timezone": school.key}


def corrected_loan(detail: Mapping[str, Any], loan_id: str, state: ItemState) -> tuple[date, LoanLedger] | None:
    """Accepting the corrected due date: the loan's new date and the ledger that records it,
    or None when the loan is no longer this checkout's, or no longer due on the date given
    (returned, renewed since: a renewal's date stands)."""
    due, given = _day(detail.get("due_corrected")), _day(detail.get("due_given"))
    loan = state.loan
    if due is None or loan is None or loan.loan_id != loan_id or loan.due != given or given == due:
        return None
    state.loan, state.dirty = replace(loan, due=due), True
    ledger = LoanLedger()
    ledger.changed[loan.loan_id] = (due, loan.renewals, None)
    ledger.since[loan.loan_id] = loan.since
    return due, ledger
