"""The demo school's calendar: two terms a year, Chinese public holidays, holiday loans.

Dates are close to the real ones, not official: the lunar festivals come from a short
table (2018-2035, approximated outside it), the bridge days around a mid-week holiday are
guessed, and the weekend make-up working days (调休) are left out because a
``SchoolCalendar`` cannot open a Saturday. The school is closed between terms, so days of
the winter and summer holidays never count as open days (a book due at the end of term and
returned on the first day of the next is one open day late, not thirty).
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

from bookcorner.circulation.calendar import HolidayLoan, SchoolCalendar, Term

#: 春节 (first day of the first lunar month)
SPRING_FESTIVAL: dict[int, date] = {
    2018: date(2018, 2, 16), 2019: date(2019, 2, 5), 2020: date(2020, 1, 25),
    2021: date(2021, 2, 12), 2022: date(2022, 2, 1), 2023: date(2023, 1, 22),
    2024: date(2024, 2, 10), 2025: date(2025, 1, 29), 2026: date(2026, 2, 17),
    2027: date(2027, 2, 6), 2028: date(2028, 1, 26), 2029: date(2029, 2, 13),
    2030: date(2030, 2, 3), 2031: date(2031, 1, 23), 2032: date(2032, 2, 11),
    2033: date(2033, 1, 31), 2034: date(2034, 2, 19), 2035: date(2035, 2, 8),
}
#: 端午节 (fifth day of the fifth lunar month)
DRAGON_BOAT: dict[int, date] = {
    2018: date(2018, 6, 18), 2019: date(2019, 6, 7), 2020: date(2020, 6, 25),
    2021: date(2021, 6, 14), 2022: date(2022, 6, 3), 2023: date(2023, 6, 22),
    2024: date(2024, 6, 10), 2025: date(2025, 5, 31), 2026: date(2026, 6, 19),
    2027: date(2027, 6, 9), 2028: date(2028, 5, 28), 2029: date(2029, 6, 16),
    2030: date(2030, 6, 5), 2031: date(2031, 6, 24), 2032: date(2032, 6, 12),
    2033: date(2033, 6, 1), 2034: date(2034, 6, 20), 2035: date(2035, 6, 10),
}
#: 中秋节 (fifteenth day of the eighth lunar month)
MID_AUTUMN: dict[int, date] = {
    2018: date(2018, 9, 24), 2019: date(2019, 9, 13), 2020: date(2020, 10, 1),
    2021: date(2021, 9, 21), 2022: date(2022, 9, 10), 2023: date(2023, 9, 29),
    2024: date(2024, 9, 17), 2025: date(2025, 10, 6), 2026: date(2026, 9, 25),
    2027: date(2027, 9, 15), 2028: date(2028, 10, 3), 2029: date(2029, 9, 22),
    2030: date(2030, 9, 12), 2031: date(2031, 10, 1), 2032: date(2032, 9, 19),
    2033: date(2033, 9, 8), 2034: date(2034, 9, 27), 2035: date(2035, 9, 16),
}

#: lend in the last two school weeks of a term (Monday eleven days before a Friday end)
HOLIDAY_LENDING_DAYS = 11


def spring_festival(year: int) -> date:
    return SPRING_FESTIVAL.get(year, date(year, 2, 5))


def dragon_boat(year: int) -> date:
    # about four lunar months and four days after the Spring Festival
    return DRAGON_BOAT.get(year, spring_festival(year) + timedelta(days=122))


def mid_autumn(year: int) -> date:
    return MID_AUTUMN.get(year, spring_festival(year) + timedelta(days=221))


def qingming(year: int) -> date:
    """清明 (a solar term): 4 April in the first two years of each leap cycle, else the 5th."""
    return date(year, 4, 4 if year % 4 in (0, 1) else 5)


def _days(first: date, count: int) -> set[date]:
    return {first + timedelta(days=n) for n in range(count)}


def _with_bridge(day: date) -> set[date]:
    """A one-day holiday as a long weekend: Tuesday takes Monday, Thursday takes Friday,
    a weekend holiday gives the Monday after."""
    weekday = day.weekday()
    if weekday == 1:
        return {day - timedelta(days=1), day}
    if weekday == 3:
        return {day, day + timedelta(days=1)}
    if weekday >= 5:
        return {day, day + timedelta(days=7 - weekday)}
    return {day}


def public_holidays(year: int) -> frozenset[date]:
    """The days schools close for public holidays in one calendar year."""
    closed: set[date] = set()
    closed |= _with_bridge(date(year, 1, 1))
    closed |= _days(spring_festival(year) - timedelta(days=1), 8)
    closed |= _with_bridge(qingming(year))
    closed |= _days(date(year, 5, 1), 5)
    closed |= _with_bridge(dragon_boat(year))
    national_day = _days(date(year, 10, 1), 7)
    moon = mid_autumn(year)
    if date(year, 10, 1) <= moon <= date(year, 10, 8):
        national_day |= _days(date(year, 10, 1), 8)
    else:
        closed |= _with_bridge(moon)
    closed |= national_day
    return frozenset(closed)


def _on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _on_or_before(day: date, weekday: int) -> date:
    return day - timedelta(days=(day.weekday() - weekday) % 7)


def academic_year(day: date) -> int:
    """The calendar year a school year starts in (from August: the new year's roster)."""
    return day.year if day.month >= 8 else day.year - 1


def autumn_term(year: int) -> Term:
    """第一学期: 1 September (the Monday after, at a weekend) to a Friday in mid-January,
    at least a week before the Spring Festival."""
    start = date(year, 9, 1)
    if start.weekday() >= 5:
        start = _on_or_after(start, 0)
    end = _on_or_before(min(date(year + 1, 1, 18), spring_festival(year + 1) - timedelta(days=7)), 4)
    return Term(f"{year}-{year + 1}学年第一学期 Autumn term {year}", start, end)


def spring_term(year: int) -> Term:
    """第二学期 of the school year starting in ``year``: a Monday in late February or
    early March, twelve days or more after the Spring Festival, to a Friday in early July."""
    spring = year + 1
    start = _on_or_after(max(date(spring, 2, 15), spring_festival(spring) + timedelta(days=12)), 0)
    end = _on_or_before(date(spring, 7, 7), 4)
    return Term(f"{year}-{spring}学年第二学期 Spring term {spring}", start, end)


def _holiday_loan(name: str, term: Term, next_term: Term) -> HolidayLoan:
    return HolidayLoan(name, term.end - timedelta(days=HOLIDAY_LENDING_DAYS), term.end, next_term.start)


def build_calendar(today: date) -> SchoolCalendar:
    """The school years before, around and after ``today``: terms, holiday loans and every
    closed day (weekends, public holidays, and the holidays between terms)."""
    years = (academic_year(today) - 1, academic_year(today), academic_year(today) + 1)
    terms: list[Term] = []
    loans: list[HolidayLoan] = []
    for year in years:
        autumn, spring, next_autumn = autumn_term(year), spring_term(year), autumn_term(year + 1)
        terms += (autumn, spring)
        loans.append(_holiday_loan(f"{year + 1}年寒假借阅 Winter holiday {year + 1}", autumn, spring))
        loans.append(_holiday_loan(f"{year + 1}年暑假借阅 Summer holiday {year + 1}", spring, next_autumn))
    closed: set[date] = set()
    for year in range(years[0], years[-1] + 3):
        closed |= public_holidays(year)
    following = [*terms, autumn_term(years[-1] + 1)]
    for before, after in pairwise(following):
        closed |= _days(before.end + timedelta(days=1), (after.start - before.end).days - 1)
    return SchoolCalendar(
        closed_weekdays=frozenset({5, 6}),
        closed_dates=frozenset(closed),
        terms=tuple(terms),
        holiday_loans=tuple(loans),
    )
