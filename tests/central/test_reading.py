"""Reading lists and co-reading counts on the central server: a list imported from CSV and
XLSX by ISBN or title with every row that matches no book said, the counts from the loans
table within the retention period, both in the delta the kiosks pull, and nothing in it
that names a child."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from sqlalchemy import update

from bookcorner.central import db
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.reference import delta, load_document
from bookcorner.central.services import reading
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord, ReferenceDocument
from bookcorner.sync.reference import merge

UTC = timezone.utc
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BOOKS = {  # item id: (title, ISBN-13)
    "B1": ("西游记", "9787020002207"), "B2": ("红楼梦", "9787020002214"), "B3": ("水浒传", "9787020002221"),
    "B4": ("安徒生童话", "9787020024759"), "B5": ("三国演义", None), "B6": ("小王子", "9787107000508"),
    "B7": ("小王子", None),
}
#: ten children in grade 3, five in grade 4: names and card numbers that must never ship
CHILDREN = {f"S{n:02d}": (f"王小{n}号", "3-1" if n < 10 else "4-2") for n in range(15)}


@pytest.fixture
def store(tmp_path):
    store = db.Store(f"sqlite:///{tmp_path / 'central.db'}")
    store.migrate()
    add_kiosk(store, "K1")
    load_document(store, ReferenceDocument(
        school="Test school",
        patrons=[PatronRecord(patron_id=p, name=name, role="student", class_name=klass)
                 for p, (name, klass) in CHILDREN.items()],
        cards=[CardRecord(card_id=f"00010{n:05d}", patron_id=p) for n, p in enumerate(CHILDREN)],
        items=[ItemRecord(item_id=i, title=t, isbn13=isbn) for i, (t, isbn) in BOOKS.items()]))
    yield store
    store.dispose()


def _loans(store, rows):
    """Loans as replay records them: (child, item, days before NOW)."""
    with store.writing() as conn:
        conn.execute(db.loans.insert(), [
            {"loan_id": f"L{n}", "item_id": item, "patron_id": child, "class_name": CHILDREN[child][1],
             "kiosk_id": "K1", "out_at": NOW - timedelta(days=days), "due": (NOW - timedelta(days=days - 7)).date(),
             "returned_at": NOW - timedelta(days=days - 5)} for n, (child, item, days) in enumerate(rows)])


def _catalogue(store):
    with store.reading() as conn:
        return reading.catalogue(conn)


def test_a_csv_list_matches_by_isbn_then_title_and_says_which_rows_match_nothing(store):
    text = ("书名,ISBN\n"
            "西游记,978-7-02-000220-7\n"  # by ISBN (hyphens)
            "《红楼梦》,\n"  # by title, its quotes dropped
            "三国演义,\n"  # a book without ISBN, by title
            "小王子,\n"  # two books carry this title
            "不存在的书,\n"  # no such book
            "水浒传,9787020002222\n"  # a wrong check digit: the title says which book, the ISBN noted
            ",702002475X\n")  # a wrong ISBN-10 and no title: nothing to go by
    preview = reading.read_list("list.csv", text.encode("gb18030"), _catalogue(store))
    assert preview.unreadable == ""
    got = [(row.line, row.book, row.problem) for row in preview.rows]
    assert got == [(2, "9787020002207", ""), (3, "9787020002214", ""), (4, "item:B5", ""),
                   (5, None, "title_ambiguous"), (6, None, "no_book"), (7, "9787020002221", "isbn_checksum"),
                   (8, None, "isbn_checksum")]
    assert preview.matched == 4 and [r.line for r in preview.unmatched] == [5, 6, 8]


def test_an_xlsx_list_without_a_header_row_is_read_by_its_first_column(store):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in (["9787020002221", "水浒传"], ["9787020024759"], [None, None], ["9787544253994"]):
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    preview = reading.read_list("list.xlsx", data.getvalue(), _catalogue(store))
    assert [(row.line, row.book, row.problem) for row in preview.rows] == [
        (1, "9787020002221", ""), (2, "9787020024759", ""), (4, None, "no_book")]


def test_a_file_that_is_no_spreadsheet_is_said_so(store):
    assert reading.read_list("list.xls", b"\xd0\xcf\x11\xe0old", _catalogue(store)).unreadable == "old_excel"


def test_a_saved_list_reaches_the_kiosks_and_stays_offline_with_them(store):
    preview = reading.read_list("l.csv", b"ISBN\n9787020002214\n9787020002207\n9780000000000\n",
                                _catalogue(store))
    list_id = reading.save_list(store, reading.ListMeta("三年级推荐书目", "grade", (3,)), preview.rows, "Ms Li", NOW)
    [summary] = reading.lists(store)
    assert (summary.list_id, summary.books, summary.matched, summary.meta.grades) == (list_id, 3, 2, (3,))
    first = delta(store, "K1")
    assert first.reading is not None
    assert [(r.name, r.books, r.grades) for r in first.reading.lists] == [
        ("三年级推荐书目", ["9787020002214", "9787020002207"], [3])]
    kiosk = merge(None, first)
    assert kiosk.reading.lists[0].books == ("9787020002214", "9787020002207")
    assert delta(store, "K1", first.cursor, first.epoch).reading is None  # unchanged: not sent again
    assert not reading.publish(store, NOW)
    reading.delete_list(store, list_id, "Ms Li", NOW)
    after = delta(store, "K1", first.cursor, first.epoch)
    assert after.reading is not None and after.reading.lists == []
    assert merge(kiosk, after).reading.lists == ()


def test_a_list_with_no_book_found_or_no_name_is_refused(store):
    rows = reading.read_list("l.csv", "书名\n不存在的书\n".encode(), _catalogue(store)).rows
    with pytest.raises(reading.ListRefused) as refused:
        reading.save_list(store, reading.ListMeta("节日书单", "festival"), rows, "Ms Li", NOW)
    assert refused.value.code == "no_books"
    with pytest.raises(reading.ListRefused) as refused:
        reading.save_list(store, reading.ListMeta(" ", "festival"), rows, "Ms Li", NOW)
    assert refused.value.code == "name"


def _term(store):
    """Grade 3: six children read 西游记 then 水浒传, three of them then 红楼梦; one child read
    三国演义 then 安徒生童话 (a pair of one child: never shipped). Grade 4: five read 西游记 then 小王子."""
    rows = []
    for n in range(6):
        rows += [(f"S{n:02d}", "B1", 60), (f"S{n:02d}", "B3", 50)]
        if n < 3:
            rows.append((f"S{n:02d}", "B2", 40))
    rows += [("S07", "B5", 30), ("S07", "B4", 20)]
    for n in range(10, 15):
        rows += [(f"S{n:02d}", "B1", 30), (f"S{n:02d}", "B6", 25)]
    _loans(store, rows)


def test_co_reading_counts_per_grade_from_the_loans(store):
    _term(store)
    assert reading.publish(store, NOW)
    shipped = reading.shipped(store)
    got = {(r.grade, r.book): list(zip(r.next, r.counts, strict=True)) for r in shipped.next_books}
    assert got == {
        (3, "9787020002207"): [("9787020002221", 6), ("9787020002214", 3)],  # 西游记: 水浒传, then 红楼梦
        (3, "9787020002221"): [("9787020002214", 3)],
        (4, "9787020002207"): [("9787107000508", 5)],
    }
    kiosk = merge(None, delta(store, "K1"))
    assert kiosk.reading.next_books[3]["9787020002207"] == (("9787020002221", 6), ("9787020002214", 3))


def test_loans_past_the_retention_period_or_anonymised_do_not_count(store):
    _term(store)
    with store.writing() as conn:  # the retention period: 45 days (loans of 60 and 50 days ago fall out)
        conn.execute(db.meta.insert().values(key="registers.retention_days", value="45"))
    reading.publish(store, NOW)
    got = {(r.grade, r.book) for r in reading.shipped(store).next_books}
    assert got == {(4, "9787020002207")}
    with store.writing() as conn:  # the anonymiser ran: those loans name nobody
        conn.execute(update(db.loans).where(db.loans.c.class_name == "4-2").values(patron_id=None))
    assert reading.publish(store, NOW)
    assert reading.shipped(store).next_books == []


def test_nothing_shipped_for_suggestions_names_a_child(store):
    """The reading guide a kiosk pulls, as bytes: no patron id, no name, no card number,
    no loan id of any child in it."""
    _term(store)
    preview = reading.read_list("l.csv", "书名\n西游记\n水浒传\n".encode(), _catalogue(store))
    reading.save_list(store, reading.ListMeta("三(1)班老师的书单", "class", (3,), "3-1"), preview.rows, "Ms Li", NOW)
    shipped = delta(store, "K1").reading
    assert shipped is not None and shipped.next_books and shipped.lists
    wire = msgspec.json.encode(shipped).decode()
    with store.reading() as conn:
        cards = [row.card_id for row in conn.execute(db.cards.select())]
        loan_ids = [row.loan_id for row in conn.execute(db.loans.select())]
    for child, (name, _klass) in CHILDREN.items():
        assert not re.search(rf"\b{child}\b", wire), child
        assert name not in wire
    for secret in cards + loan_ids:
        assert not re.search(rf"\b{re.escape(secret)}\b", wire), secret
    assert "Ms Li" not in wire  # nor the librarian who made the list
    # what is there: book keys, grades, counts, the lists' names and classes
    keys = set(msgspec.json.decode(wire))
    assert keys == {"lists", "next_books", "challenges"}  # challenges: none here (names, dates, goals, classes)


def test_the_kiosks_snapshot_keeps_the_guide_on_disk(store, tmp_path):
    """As the sync daemon does it: merge the delta, save the snapshot, and the kiosk loads
    the same lists and counts from disk (offline from then on)."""
    from bookcorner.journal.snapshot import ReferenceStore

    _term(store)
    preview = reading.read_list("l.csv", "书名\n红楼梦\n".encode(), _catalogue(store))
    reading.save_list(store, reading.ListMeta("三(1)班", "class", (), "3-1"), preview.rows, "Ms Li", NOW)
    pulled = merge(None, delta(store, "K1"))
    snapshots = ReferenceStore(tmp_path / "reference")
    snapshots.save(pulled, "e:1", "Test school")
    loaded = snapshots.load().reference
    assert loaded.reading == pulled.reading
    assert loaded.reading.lists[0].class_names == frozenset({"3-1"}) and loaded.reading.lists[0].is_for(3, "3-1")
    assert not loaded.reading.lists[0].is_for(3, "3-2")
    assert loaded.reading.next_books[4]["9787020002207"] == (("9787107000508", 5),)
