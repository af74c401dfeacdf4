"""A small school for tests: a class, its librarian, a teacher, and a shelf that has
every kind of book the rules care about."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from bookcorner.circulation.calendar import HolidayLoan, SchoolCalendar, Term
from bookcorner.circulation.model import Card, CardStatus, Item, ItemType, Patron, PatronStatus, Role
from bookcorner.circulation.reference import Reference, build_reference
from bookcorner.circulation.timetable import RotationSlot, Timetable

ZONE = ZoneInfo("Asia/Shanghai")

XIAOMING = Patron("S01", "王小明", Role.STUDENT, "3-2", "小明")
XIAOHONG = Patron("S02", "李小红", Role.STUDENT, "3-2", "小红")
DAWEI = Patron("S03", "张大伟", Role.STUDENT, "3-2", "大伟", PatronStatus.SUSPENDED)
LEFT = Patron("S04", "刘走了", Role.STUDENT, "3-2", "走了", PatronStatus.LEFT)
MEIMEI = Patron("L01", "陈美美", Role.STUDENT_LIBRARIAN, "3-2", "美美")
TEACHER = Patron("T01", "周老师", Role.TEACHER, "3-2")

CARDS = {
    XIAOMING: "0006547886",
    XIAOHONG: "0001000002",
    DAWEI: "0001000003",
    LEFT: "0001000014",
    MEIMEI: "0001000005",
    TEACHER: "0001000006",
}
LOST_CARD = Card("0001000099", "S01", CardStatus.LOST)

#: a labelled copy, scanned by its accession barcode
XIYOUJI = Item("I001", "西游记", barcode="30001000000010", isbn13="9787020002207", isbn10="702000220X")
HONGLOUMENG = Item("I002", "红楼梦", barcode="30001000000028", isbn13="9787020002214", isbn10="7020002218")
SHUIHU = Item("I003", "水浒传", barcode="30001000000036", isbn13="9787020002221", isbn10="7020002226")
#: three ISBN-only copies sharing one printed barcode
ANDERSEN = tuple(Item(f"I01{n}", "安徒生童话", isbn13="9787020024759", isbn10="7020024750") for n in range(3))
#: an old book known by its ISBN-10 only
OLD_BOOK = Item("I020", "小英雄雨来", isbn13="9787107000508", isbn10="7107000500")
DICTIONARY = Item("I030", "新华字典", barcode="30001000000044", isbn13="9787100077040", isbn10="7100077044", item_type=ItemType.REFERENCE)
MAGAZINE = Item("I040", "儿童文学", barcode="30001000000051", item_type=ItemType.PERIODICAL)

ITEMS = (XIYOUJI, HONGLOUMENG, SHUIHU, *ANDERSEN, OLD_BOOK, DICTIONARY, MAGAZINE)

CALENDAR = SchoolCalendar(
    closed_dates=frozenset({date(2027, 1, 1)} | {date(2026, 10, d) for d in range(1, 8)}),
    terms=(Term("2026 autumn", date(2026, 9, 1), date(2027, 1, 15)),),
    holiday_loans=(HolidayLoan("winter", date(2027, 1, 4), date(2027, 1, 15), date(2027, 2, 22)),),
)
TIMETABLE = Timetable((RotationSlot(0, time(12, 0), time(12, 50), "3-2"),))


def reference(**changes) -> Reference:
    cards = [Card(card, patron.patron_id) for patron, card in CARDS.items()] + [LOST_CARD]
    return build_reference(patrons=CARDS.keys(), cards=cards, items=ITEMS,
                           **{"calendar": CALENDAR, "timetable": TIMETABLE, **changes})


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 5) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE)


#: a Monday in term
MONDAY = at(2026, 11, 23)
