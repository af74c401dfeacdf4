"""The school calendar: open days, terms with a hard end, holiday loans.

A due date never falls on a closed day: it moves to the next open day, except that a
loan made in term is never due after the term's end (everything is recalled, 期末催还);
then it moves back to the last open day of the term. Holiday loans (假期借阅) are the
exception: lent in their window, due on their own date after the holiday.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

#: how far the calendar looks for an open day before calling the calendar broken
SEARCH_DAYS = 400


class CalendarError(ValueError):
    """The calendar has no open day where one is needed (a configuration mistake)."""


@dataclass(frozen=True, slots=True)
class Term:
    name: str
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class HolidayLoan:
    name: str
    checkout_from: date
    checkout_until: date
    due: date


@dataclass(frozen=True, slots=True)
class SchoolCalendar:
    #: Monday = 0 ... Sunday = 6
    closed_weekdays: frozenset[int] = frozenset({5, 6})
    closed_dates: frozenset[date] = frozenset()
    terms: tuple[Term, ...] = ()
    holiday_loans: tuple[HolidayLoan, ...] = field(default=())
    #: make-up working days (调休): open although their weekday is closed
    open_dates: frozenset[date] = frozenset()

    def is_open(self, day: date) -> bool:
        if day in self.closed_dates:
            return False
        return day in self.open_dates or day.weekday() not in self.closed_weekdays

    def term_on(self, day: date) -> Term | None:
        for term in self.terms:
            if term.start <= day <= term.end:
                return term
        return None

    def holiday_loan_on(self, day: date) -> HolidayLoan | None:
        for window in self.holiday_loans:
            if window.checkout_from <= day <= window.checkout_until:
                return window
        return None

    def next_open_day(self, day: date) -> date:
        """``day`` itself when open, else the first open day after it."""
        for offset in range(SEARCH_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_open(candidate):
                return candidate
        raise CalendarError(f"no open day within {SEARCH_DAYS} days after {day.isoformat()}")

    def last_open_day_between(self, first: date, last: date) -> date | None:
        day = last
        while day >= first:
            if self.is_open(day):
                return day
            day -= timedelta(days=1)
        return None

    def open_days_between(self, first: date, last: date) -> int:
        """Open days after ``first`` up to and including ``last`` (how late a book is)."""
        count, day = 0, first + timedelta(days=1)
        while day <= last:
            count += self.is_open(day)
            day += timedelta(days=1)
        return count


def due_date(calendar: SchoolCalendar, today: date, loan_days: int, holiday_loans: bool = True) -> date | None:
    """When a loan made ``today`` is due, or None if no open day is left in this term."""
    window = calendar.holiday_loan_on(today) if holiday_loans else None
    if window is not None:
        return calendar.next_open_day(max(window.due, today))
    due = today + timedelta(days=loan_days)
    term = calendar.term_on(today)
    if term is None:
        return calendar.next_open_day(due)
    due = min(due, term.end)
    moved = calendar.next_open_day(due)
    if moved <= term.end:
        return moved
    return calendar.last_open_day_between(today, term.end)
