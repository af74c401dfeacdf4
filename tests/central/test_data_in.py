"""Data in over a real socket (SQLite, and PostgreSQL when it runs): rosters and catalogues
uploaded as the librarian's files (GB18030 CSV with Chinese headings, XLSX, MARC),
previewed with every row's error, refused whole when one row is wrong, applied in one
transaction that the kiosks' next pull sees."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta

import msgspec
import pymarc
import pytest
import requests
from openpyxl import Workbook
from pymarc import Field, Indicators, Record, Subfield
from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.central.dashboard.data_in import MAX_UPLOAD_BYTES
from bookcorner.central.reference_files import CATALOGUE, ROSTER, Unreadable, read
from bookcorner.circulation.codes import CodeKind, Source, classify
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.rules import Identified, identify
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ReferenceDelta
from bookcorner.sync.reference import merge
from tests.central.dashboard_client import CSRF, Librarian


def upload(client: Librarian, kind: str, name: str, data: bytes, csrf: str | None = None) -> requests.Response:
    form = {"kind": kind, "csrf": client.csrf() if csrf is None else csrf}
    return client.http.post(client.url + "/data-in/upload", data=form, files={"file": (name, data)},
                            allow_redirects=False, timeout=30)


def staged(answer: requests.Response) -> str:
    """The staged import's token from the upload's redirect to its preview."""
    assert answer.status_code == 303, answer.text[-800:]
    location = answer.headers["location"]
    assert location.startswith("/dashboard/data-in/")
    return location.rsplit("/", 1)[1]


def confirm(client: Librarian, token: str, **fields: str) -> requests.Response:
    return client.post(f"/data-in/{token}/confirm", {"csrf": client.csrf(), **fields})


class Kiosk:
    """A kiosk pulling the reference delta as the sync daemon does (since its cursor)."""

    def __init__(self, board) -> None:
        self.url, self.kiosk_id = board.url, "k-" + uuid.uuid4().hex[:8]
        self.token = board.add_kiosk(self.kiosk_id)
        self.cursor, self.epoch = 0, None

    def pull(self) -> dict:
        params = {"since": self.cursor, **({"epoch": self.epoch} if self.epoch else {})}
        delta = requests.get(f"{self.url}/v1/reference", params=params, headers=bearer(self.token), timeout=10)
        assert delta.status_code == 200, delta.text
        body = delta.json()
        self.cursor, self.epoch = body["cursor"], body["epoch"]
        return body


def tap(reference: Reference, raw: str, source: Source = Source.CARD_READER) -> Identified:
    """Who the kiosk's own rules say tapped ``raw``."""
    scanned = classify(raw, reference, source)
    assert scanned.kind is CodeKind.CARD, scanned
    who = identify(reference, scanned)
    assert isinstance(who, Identified), who
    return who


def counts(board) -> tuple[int, int, int]:
    with board.store.reading() as conn:
        return (conn.execute(select(func.count()).select_from(db.patrons)).scalar_one(),
                conn.execute(select(func.count()).select_from(db.catalogue)).scalar_one(),
                conn.execute(select(db.revision.c.rev)).scalar_one())


def waiting(board, token: str) -> bool:
    with board.store.reading() as conn:
        return conn.execute(select(db.staged_imports.c.token).where(db.staged_imports.c.token == token)).first() \
            is not None


def test_a_chinese_excel_roster_is_previewed_then_imported_and_reaches_the_kiosks(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    kiosk = Kiosk(board)
    kiosk.pull()
    roster = (f"学号,姓名,班级,角色,备注\r\n{tag}01,王小明,三(2)班,学生,\r\n{tag}02,李华,三(2)班,小图书管理员,班长\r\n"
              f"{tag}03,张老师,,教师,\r\n").encode("gb18030")  # as Chinese Excel saves "CSV (逗号分隔)"
    before = counts(board)
    token = staged(upload(client, "roster", "三(2)班名单.csv", roster))
    page = client.get(f"/data-in/{token}")
    assert page.status_code == 200
    assert "To add: 3" in page.text and "Errors: 0" in page.text
    assert "王小明" in page.text and "张老师" in page.text
    assert "<td>student librarian</td>" in page.text and "<td>teacher</td>" in page.text  # the roles as read
    assert "备注" in page.text  # the column it did not use is named
    assert counts(board) == before  # a preview changes nothing
    assert kiosk.pull()["patrons"] == []

    done = confirm(client, token)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/data-in?applied=roster"
    assert not waiting(board, token)
    pulled = {p["patron_id"]: p for p in kiosk.pull()["patrons"]}
    assert pulled == {f"{tag}01": {"patron_id": f"{tag}01", "name": "王小明", "role": "student", "class_name": "三(2)班"},
                      f"{tag}02": {"patron_id": f"{tag}02", "name": "李华", "role": "student_librarian",
                                   "class_name": "三(2)班"},
                      f"{tag}03": {"patron_id": f"{tag}03", "name": "张老师", "role": "teacher"}}
    with board.store.reading() as conn:
        audit = conn.execute(select(db.audit_log).where(db.audit_log.c.action == "import.roster")
                             .order_by(db.audit_log.c.audit_id.desc())).first()
    assert (audit.who, audit.target) == (name, "三(2)班名单.csv")
    assert {k: json.loads(audit.detail)[k] for k in ("added", "changed", "unchanged")} == \
        {"added": 3, "changed": 0, "unchanged": 0}
    assert "三(2)班名单.csv" in client.get("/data-in").text

    # the class moves up: the next file changes one student and leaves the rest alone
    moved = f"\ufeff学号,姓名,班级\n{tag}01,王小明,四(2)班\n{tag}02,李华,三(2)班\n".encode()
    token = staged(upload(client, "roster", "moved.csv", moved))
    page = client.get(f"/data-in/{token}").text
    assert "To change: 1" in page and "Unchanged: 1" in page and "三(2)班 → 四(2)班" in page
    assert confirm(client, token).status_code == 303
    delta = kiosk.pull()
    assert [p["patron_id"] for p in delta["patrons"]] == [f"{tag}01"]
    assert delta["patrons"][0]["role"] == "student"  # no role column: the role stays


def test_an_xlsx_roster_with_numbers_for_ids_imports(board, librarian):
    client, _name, _token = librarian
    base = int(uuid.uuid4().int % 10**8) * 100
    book = Workbook()
    sheet = book.active
    sheet.append(["Student ID", "Name", "Class", "Role"])
    sheet.append([base + 1, "Zhou Jie", "5.1", "student librarian"])
    sheet.append([float(base + 2), "Wu Fang", "5.1", None])  # Excel keeps numbers as floats
    buffer = io.BytesIO()
    book.save(buffer)
    token = staged(upload(client, "roster", "class-5-1.xlsx", buffer.getvalue()))
    assert "To add: 2" in client.get(f"/data-in/{token}").text
    assert confirm(client, token).status_code == 303
    kiosk = Kiosk(board)
    pulled = {p["patron_id"]: p for p in kiosk.pull()["patrons"]}
    assert pulled[str(base + 1)]["role"] == "student_librarian"
    assert pulled[str(base + 2)] == {"patron_id": str(base + 2), "name": "Wu Fang", "role": "student",
                                     "class_name": "5.1"}


def test_a_file_with_a_wrong_row_changes_nothing_and_says_which_row(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    roster = (f"学号,姓名,班级,角色\n{tag}1,好学生,3.1,学生\n,没有学号,3.1,学生\n{tag}3,校长先生,,校长\n"
              f"{tag}1,又一个,3.1,\n").encode("gb18030")
    before = counts(board)
    token = staged(upload(client, "roster", "bad.csv", roster))
    page = client.get(f"/data-in/{token}")
    assert "Errors: 3" in page.text
    assert '<tr data-row="3"><td>3</td><td>学号</td><td>Missing: this must be filled in.</td></tr>' in page.text
    assert '<tr data-row="4"><td>4</td><td>角色</td><td>Unknown role “校长”' in page.text
    assert f"The id {tag}1 is already used on row 2." in page.text
    assert 'id="confirm" disabled' in page.text
    refused = confirm(client, token)
    assert refused.status_code == 409 and "Nothing was imported" in refused.text
    assert counts(board) == before and waiting(board, token)
    chinese = client.get(f"/data-in/{token}?lang=zh_CN")
    assert chinese.status_code == 200 and 'lang="zh-CN"' in chinese.text
    assert client.post(f"/data-in/{token}/cancel", {"csrf": client.csrf()}).status_code == 303
    assert not waiting(board, token)
    assert confirm(client, token).status_code == 404


def test_isbn_forms_are_matched_within_the_file_and_against_the_catalogue(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    first = f"登录号,书名,作者,ISBN,索书号,类型\n{tag}-1,小王子,圣埃克苏佩里,978-7-02-004249-4,I565.88/12,普通\n"
    assert confirm(client, staged(upload(client, "catalogue", "books.csv", first.encode("gb18030")))).status_code == 303

    # the same book again, by its ISBN-10, under a new id: a possible duplicate of the one catalogued
    again = f"item id,title,isbn\n{tag}-2,The Little Prince,702004249x\n".encode()
    before = counts(board)
    token = staged(upload(client, "catalogue", "again.csv", again))
    page = client.get(f"/data-in/{token}").text
    assert "Possible duplicates: 1" in page and "Errors: 0" in page
    assert f"the catalogue already has ISBN 702004249X as book {tag}-1 (小王子)" in page
    refused = confirm(client, token)
    assert refused.status_code == 422 and "tick the box" in refused.text
    assert counts(board) == before
    assert confirm(client, token, duplicates_checked="yes").status_code == 303  # a second copy, checked
    after = counts(board)
    assert after[1] == before[1] + 1 and after[2] == before[2] + 1  # one more book, one new revision
    item = {i["item_id"]: i for i in Kiosk(board).pull()["items"]}[f"{tag}-2"]
    assert (item["isbn13"], item["isbn10"]) == ("9787020042494", "702004249X")

    # within one file: a bad check digit, and one book entered by both forms
    wrong = (f"item id,title,isbn\n{tag}-3,Bad,9787020042495\n{tag}-4,Charlotte's Web,9780064400558\n"
             f"{tag}-5,Charlotte's Web,0064400557\n").encode()
    token = staged(upload(client, "catalogue", "wrong.csv", wrong))
    page = client.get(f"/data-in/{token}").text
    assert "Invalid ISBN “9787020042495”: its check digit is wrong" in page
    assert "The same book as row 3, once by ISBN-10 and once by ISBN-13 (0064400557)" in page
    assert confirm(client, token).status_code == 409
    assert counts(board) == after


def _marc_book(control: str, isbn: str, title: str, subtitle: str, author: str, holdings: list[str]) -> Record:
    record = Record(force_utf8=True)
    record.add_field(
        Field(tag="001", data=control),
        Field(tag="020", indicators=Indicators(" ", " "), subfields=[Subfield("a", f"{isbn} (pbk.)")]),
        Field(tag="100", indicators=Indicators("1", " "), subfields=[Subfield("a", author + ",")]),
        Field(tag="245", indicators=Indicators("1", "0"), subfields=[Subfield("a", title + " :"),
                                                                      Subfield("b", subtitle + " /")]),
        Field(tag="084", indicators=Indicators(" ", " "), subfields=[Subfield("a", "I287.5"), Subfield("2", "clc")]))
    for barcode in holdings:
        record.add_field(Field(tag="952", indicators=Indicators(" ", " "),
                               subfields=[Subfield("p", barcode), Subfield("o", "I287.5/7")]))
    return record


def test_marc_records_import_as_iso2709_and_marcxml(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    records = [_marc_book(f"{tag}-m1", "9787539132594", "草房子", "长篇小说", "曹文轩", []),
               _marc_book(f"{tag}-m2", "9787020090006", "西游记", "少儿版", "吴承恩", [f"{tag}-c1", f"{tag}-c2"])]
    iso = b"".join(r.as_marc() for r in records)
    kiosk = Kiosk(board)
    kiosk.pull()
    token = staged(upload(client, "catalogue", "books.mrc", iso))
    assert "To add: 3" in client.get(f"/data-in/{token}").text
    assert confirm(client, token).status_code == 303
    items = {i["item_id"]: i for i in kiosk.pull()["items"]}
    assert items[f"{tag}-m1"] == {"item_id": f"{tag}-m1", "title": "草房子 : 长篇小说", "isbn13": "9787539132594",
                                  "author": "曹文轩", "call_number": "I287.5"}
    assert items[f"{tag}-c1"]["call_number"] == items[f"{tag}-c2"]["call_number"] == "I287.5/7"
    assert items[f"{tag}-c2"]["title"] == "西游记 : 少儿版"

    buffer = io.BytesIO()
    writer = pymarc.XMLWriter(buffer)
    records[0]["245"]["b"] = "新版 /"
    writer.write(records[0])
    writer.close(close_fh=False)
    token = staged(upload(client, "catalogue", "one.xml", buffer.getvalue()))
    assert "草房子 : 长篇小说 → 草房子 : 新版" in client.get(f"/data-in/{token}").text
    assert confirm(client, token).status_code == 303
    assert [i["title"] for i in kiosk.pull()["items"]] == ["草房子 : 新版"]


def test_every_data_in_form_needs_the_sessions_token(board, librarian):
    client, _name, _token = librarian
    other = Librarian(board.url)
    other_name = "Mx Ma " + uuid.uuid4().hex[:4]
    assert other.sign_in(other_name, board.add_librarian(other_name)).status_code == 303
    roster = f"学号,姓名\n{uuid.uuid4().hex[:6]},某某\n".encode()
    with board.store.reading() as conn:
        staged_before = conn.execute(select(func.count()).select_from(db.staged_imports)).scalar_one()
    for csrf in ("", "guess", other.csrf()):
        assert upload(client, "roster", "r.csv", roster, csrf=csrf).status_code == 403
    bare = client.http.post(client.url + "/data-in/upload", files={"file": ("r.csv", roster)},
                            data={"kind": "roster"}, allow_redirects=False, timeout=10)
    assert bare.status_code == 403
    with board.store.reading() as conn:
        assert conn.execute(select(func.count()).select_from(db.staged_imports)).scalar_one() == staged_before
    token = staged(upload(client, "roster", "r.csv", roster))
    for action in ("confirm", "cancel"):
        for data in ({}, {"csrf": "guess"}, {"csrf": other.csrf()}):
            assert client.post(f"/data-in/{token}/{action}", data).status_code == 403
    assert waiting(board, token)


def test_only_the_librarian_who_uploaded_confirms_or_cancels(board, librarian):
    client, name, _token = librarian
    other = Librarian(board.url)
    other_name = "Mr Guo " + uuid.uuid4().hex[:4]
    assert other.sign_in(other_name, board.add_librarian(other_name)).status_code == 303
    student = uuid.uuid4().hex[:6]
    token = staged(upload(client, "roster", "r.csv", f"学号,姓名\n{student},某某\n".encode()))
    seen = other.get(f"/data-in/{token}")
    assert seen.status_code == 200 and 'id="confirm"' not in seen.text and "Only the librarian who uploaded" in seen.text
    assert name in other.get("/data-in").text  # listed as waiting, with who uploaded it
    for action in ("confirm", "cancel"):
        refused = other.post(f"/data-in/{token}/{action}", {"csrf": other.csrf()})
        assert refused.status_code == 403 and "Only the librarian who uploaded" in refused.text
    assert waiting(board, token)
    done = confirm(client, token)
    assert done.status_code == 303, done.text[done.text.find("<main>"):]
    assert student in {p["patron_id"] for p in Kiosk(board).pull()["patrons"]}


def test_names_and_titles_holding_html_are_shown_as_text(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    roster = f'学号,姓名\n{tag},"<script>alert(1)</script>王<b>x</b>"\n'.encode()
    token = staged(upload(client, "roster", "<img src=x onerror=alert(2)>.csv", roster))
    page = client.get(f"/data-in/{token}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;王&lt;b&gt;x&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;.csv" in page
    assert "<script>" not in page and "<img" not in page
    bad = f"item id,title,isbn\n{tag},<i>t</i>,<b>123</b>\n".encode()
    page = client.get(f"/data-in/{staged(upload(client, 'catalogue', 'b.csv', bad))}").text
    assert "“&lt;b&gt;123&lt;/b&gt;” is not an ISBN" in page and "<b>123" not in page


def test_files_too_large_or_unreadable_are_refused_with_the_reason(board, librarian):
    client, _name, _token = librarian
    with board.store.reading() as conn:
        staged_before = conn.execute(select(func.count()).select_from(db.staged_imports)).scalar_one()
    big = b"id,name\n" + b"x" * MAX_UPLOAD_BYTES
    answer = upload(client, "roster", "big.csv", big)
    assert answer.status_code == 413 and "larger than 5 MB" in answer.text
    old = upload(client, "roster", "old.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    assert old.status_code == 422 and "old Excel file (.xls)" in old.text
    marc = upload(client, "roster", "books.mrc", b"00024nam a2200025 a 4500")
    assert marc.status_code == 422 and "upload it as a catalogue" in marc.text
    none = upload(client, "roster", "", b"")
    assert none.status_code == 422
    missing = upload(client, "roster", "r.csv", "姓名,班级\n王,3.1\n".encode())
    assert "The file has no column for the student id" in client.get(f"/data-in/{staged(missing)}").text
    with board.store.reading() as conn:
        assert conn.execute(select(func.count()).select_from(db.staged_imports)).scalar_one() == staged_before + 1


def test_the_preview_and_its_forms_exist_only_while_waiting(board, librarian):
    client, name, _token = librarian
    assert client.get("/data-in/no-such-token").status_code == 404
    assert confirm(client, "no-such-token").status_code == 404
    token = staged(upload(client, "roster", "old.csv", f"学号,姓名\n{uuid.uuid4().hex[:6]},某某\n".encode()))
    with board.store.writing() as conn:  # uploaded two days ago and never confirmed
        conn.execute(db.staged_imports.update().where(db.staged_imports.c.token == token)
                     .values(created_at=db.now() - timedelta(days=2)))
    assert client.get(f"/data-in/{token}").status_code == 404
    assert confirm(client, token).status_code == 404
    assert "old.csv" not in client.get("/data-in").text
    staged(upload(client, "roster", "new.csv", f"学号,姓名\n{uuid.uuid4().hex[:6]},某某\n".encode()))
    assert not waiting(board, token)  # forgotten when the next file came
    page = client.get("/data-in")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    assert CSRF.search(page.text) is not None


def test_a_roster_reads_the_same_in_every_encoding_excel_writes():
    """UTF-8 with and without a byte-order mark, GB18030, and "Unicode text" (UTF-16, tabs);
    full-width digits typed with a Chinese input method are ids all the same."""
    rows = [("学号", "姓名", "班级", "角色"), ("２０１９００１", "王小明", "三（2）班", "小图书管理员"),
            ("2019002", "李华", "三（2）班", "")]
    comma = "".join(",".join(r) + "\r\n" for r in rows)
    files = [comma.encode("utf-8"), comma.encode("utf-8-sig"), comma.encode("gb18030"),
             "".join("\t".join(r) + "\r\n" for r in rows).encode("utf-16")]
    readings = [read(ROSTER, "roster.csv", data) for data in files]
    expected = [(2, {"patron_id": "2019001", "name": "王小明", "class_name": "三（2）班", "role": "student_librarian"}),
                (3, {"patron_id": "2019002", "name": "李华", "class_name": "三（2）班", "role": "student"})]
    assert [r.rows for r in readings] == [expected] * 4
    assert all(r.problems == [] for r in readings)


def test_cnmarc_records_are_read():
    record = Record(force_utf8=True)
    record.add_field(
        Field(tag="001", data="CN-1"),
        Field(tag="010", indicators=Indicators(" ", " "), subfields=[Subfield("a", "978-7-02-004249-4")]),
        Field(tag="200", indicators=Indicators("1", " "), subfields=[Subfield("a", "小王子"), Subfield("e", "童话"),
                                                                      Subfield("f", "圣埃克苏佩里著")]),
        Field(tag="690", indicators=Indicators(" ", " "), subfields=[Subfield("a", "I565.88")]))
    reading = read(CATALOGUE, "cnmarc.iso", record.as_marc())
    assert reading.problems == []
    assert reading.rows == [(1, {"item_id": "CN-1", "title": "小王子 : 童话", "author": "圣埃克苏佩里著",
                                 "call_number": "I565.88", "isbn13": "9787020042494", "isbn10": None})]


def test_a_marcxml_record_that_cannot_be_read_costs_only_itself():
    """pymarc's bad_tag.xml (a leader of the wrong length) refused the whole file: now each
    <record> is read or named by its position, and only a file that is not XML is refused."""
    good = ('<record><leader>00000nam a2200000 a 4500</leader><controlfield tag="001">x-1</controlfield>'
            '<datafield tag="245" ind1="0" ind2="0"><subfield code="a">草房子</subfield></datafield></record>')
    short_leader = '<record><leader>      Z   22 4500</leader><controlfield tag="001">x-2</controlfield></record>'
    no_tag = '<record><leader>00000nam a2200000 a 4500</leader><controlfield>x-3</controlfield></record>'
    collection = f'<collection xmlns="http://www.loc.gov/MARC21/slim">{good}{short_leader}{no_tag}</collection>'
    reading = read(CATALOGUE, "books.xml", collection.encode())
    assert reading.read == 3 and [row for row, _cells in reading.rows] == [1]
    assert [(p.row, p.code, p.value) for p in reading.problems] == [(2, "unreadable_record", "leader"),
                                                                    (3, "unreadable_record", "other")]
    alone = read(CATALOGUE, "one.xml", f"<collection>{short_leader}</collection>".encode())
    assert [(p.row, p.code, p.value) for p in alone.problems] == [(1, "unreadable_record", "leader")]
    for broken in (b"<collection><record>", b"<collection></collection>"):
        with pytest.raises(Unreadable, match="marc"):
            read(CATALOGUE, "broken.xml", broken)


def test_a_roster_gives_each_student_the_card_in_its_card_column_and_the_kiosk_accepts_a_tap(board, librarian):
    """Cards are read as a kiosk reads them; a card on two rows, or active for another
    student, is an error of its row; a lost card may be given again."""
    client, name, _token = librarian
    tag, number = uuid.uuid4().hex[:6], f"{uuid.uuid4().int % 10**8:08d}"
    kiosk = Kiosk(board)
    reference = merge(None, msgspec.convert(kiosk.pull(), ReferenceDelta))
    card, wrapped = f"C{tag.upper()}01", f"00{number}"
    full_width = "".join(chr(ord(d) + 0xFEE0) for d in f"99{number}")  # typed with a Chinese input method
    roster = (f"学号,姓名,班级,卡号\r\n{tag}01,王小明,三(2)班, c{tag}01 \r\n{tag}02,李华,三(2)班,A{wrapped}B\r\n"
              f"{tag}03,赵雷,三(2)班,{full_width}\r\n{tag}04,钱多多,三(2)班,\r\n").encode("gb18030")
    token = staged(upload(client, "roster", "cards.csv", roster))
    page = client.get(f"/data-in/{token}").text
    assert "To add: 4" in page and "Cards to give: 3" in page and "Errors: 0" in page
    for given, student in ((card, f"{tag}01"), (wrapped, f"{tag}02"), (f"99{number}", f"{tag}03")):
        assert f'<tr data-card="{given}"><td>' in page and f"<td>{student}</td>" in page
    assert kiosk.pull()["cards"] == []  # a preview gives nothing

    assert confirm(client, token).status_code == 303
    with board.store.reading() as conn:
        revs = {row.rev for row in conn.execute(select(db.patrons.c.rev).where(db.patrons.c.patron_id.startswith(tag)))}
        given = conn.execute(select(db.cards).where(db.cards.c.card_id.in_([card, wrapped, f"99{number}"]))).all()
        audit = conn.execute(select(db.audit_log).where(db.audit_log.c.action == "import.roster")
                             .order_by(db.audit_log.c.audit_id.desc())).first()
    assert len(given) == 3 and {row.rev for row in given} == revs and len(revs) == 1  # one transaction, one revision
    assert json.loads(audit.detail)["cards_given"] == {card: f"{tag}01", wrapped: f"{tag}02", f"99{number}": f"{tag}03"}
    delta = msgspec.convert(kiosk.pull(), ReferenceDelta)
    assert {(c.card_id, c.patron_id, c.status) for c in delta.cards} == {
        (card, f"{tag}01", "active"), (wrapped, f"{tag}02", "active"), (f"99{number}", f"{tag}03", "active")}
    reference = merge(reference, delta)
    assert tap(reference, card).patron.name == "王小明"
    assert tap(reference, f"A{wrapped}B", Source.SCANNER).patron.patron_id == f"{tag}02"  # Codabar, as scanned
    assert tap(reference, f"99{number}", Source.KEYBOARD).patron.name == "赵雷"

    # a card on two rows, and a card another student holds: errors of their rows, nothing given
    before = counts(board)
    clash = (f"student id,name,card id\n{tag}05,New One,{card}\n{tag}06,Twin A,T{tag}\n{tag}07,Twin B,t{tag}\n"
             .encode())
    token = staged(upload(client, "roster", "clash.csv", clash))
    page = client.get(f"/data-in/{token}").text
    assert "Errors: 2" in page
    assert f"The card {card} is held by 王小明 ({tag}01): mark it lost or withdrawn there first." in page
    assert f"The card T{tag.upper()} is already given on row 3: one card for one student." in page
    assert confirm(client, token).status_code == 409
    assert counts(board) == before and kiosk.pull()["cards"] == []

    # reported lost: the card may go to another student, and the kiosk then says it is theirs
    lost = client.post(f"/school/cards/{card}/status", {"csrf": client.csrf(), "status": "lost"})
    assert lost.status_code == 303
    reference = merge(reference, msgspec.convert(kiosk.pull(), ReferenceDelta))
    refused = identify(reference, classify(card, reference, Source.CARD_READER))
    assert not isinstance(refused, Identified) and refused.result.reason == "card_not_active"
    again = f"学号,姓名,借书证号\n{tag}04,钱多多,{card}\n{tag}01,王小明,\n".encode("utf-8-sig")
    token = staged(upload(client, "roster", "again.csv", again))
    page = client.get(f"/data-in/{token}").text
    assert "Unchanged: 2" in page and "Cards to give: 1" in page and f"lost · {tag}01" in page
    assert confirm(client, token).status_code == 303
    reference = merge(reference, msgspec.convert(kiosk.pull(), ReferenceDelta))
    assert tap(reference, card).patron.name == "钱多多"
    page = client.get(f"/data-in/{staged(upload(client, 'roster', 'same.csv', again))}").text
    assert "Unchanged: 2" in page and "Cards to give: 0" in page  # the same file again: nothing to do


def test_a_roster_card_column_is_read_as_a_kiosk_reads_cards():
    reading = read(ROSTER, "r.csv", "Student ID,Name,Library card\n1,A, ab-12 \n2,B,\n3,C,卡/1\n4,D,２３４\n".encode())
    assert reading.headings["card_id"] == "Library card"
    assert reading.rows == [(2, {"patron_id": "1", "name": "A", "card_id": "AB-12"}), (3, {"patron_id": "2", "name": "B"}),
                            (5, {"patron_id": "4", "name": "D", "card_id": "234"})]
    assert [(p.row, p.column, p.code, p.value) for p in reading.problems] == [(4, "Library card", "bad_identifier", "卡/1")]


def _cp1251_record(control: str, title: str, leader_coding: str) -> bytes:
    """A record whose title is in CP1251 while its leader says MARC-8 (blank) or UTF-8 ("a")."""
    record = Record(force_utf8=True)
    placeholder = "X" * len(title.encode("cp1251"))
    record.add_field(Field(tag="001", data=control),
                     Field(tag="245", indicators=Indicators("1", "0"), subfields=[Subfield("a", placeholder)]))
    raw = record.as_marc().replace(placeholder.encode(), title.encode("cp1251"))
    return raw[:9] + leader_coding.encode() + raw[10:]


def test_a_koha_export_and_broken_marc_records_are_previewed_record_by_record(board, librarian):
    """Issue 12: a Koha export without 001 (its record number in 999$c), a 001 holding a
    slash, a damaged record and a CP1251 record gave a 500 (raw JSON) or a silently garbled
    title; now each record is read or named with what is wrong with it."""
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    koha = _marc_book("", "9787539132594", "草房子", "长篇小说", "曹文轩", [])
    koha.remove_fields("001")
    koha.add_field(Field(tag="999", indicators=Indicators(" ", " "),
                         subfields=[Subfield("c", f"{tag}1"), Subfield("d", f"{tag}1")]))
    slash_koha = _marc_book(f"{tag}/2", "9787020090006", "西游记", "少儿版", "吴承恩", [])
    slash_koha.add_field(Field(tag="999", indicators=Indicators(" ", " "), subfields=[Subfield("c", f"{tag}2")]))
    slash = _marc_book(f"{tag}\\3", "9787020090006", "西游记", "少儿版", "吴承恩", [])
    broken = _marc_book(f"{tag}4", "9787020090006", "西游记", "少儿版", "吴承恩", []).as_marc()
    broken = broken[:12] + b"99999" + broken[17:]  # its base address points past its end
    files = [koha.as_marc(), slash_koha.as_marc(), slash.as_marc(), broken,
             _cp1251_record(f"{tag}5", "Война и мир", " "), _cp1251_record(f"{tag}6", "Анна Каренина", "a"),
             b"\x1e\x1f" * 5]  # no leader at all
    answer = upload(client, "catalogue", "koha.mrc", b"".join(data + b"\x1d" * (not data.endswith(b"\x1d"))
                                                                for data in files))
    token = staged(answer)
    page = client.get(f"/data-in/{token}").text
    assert "Rows read: 7" in page
    assert f"<td>{tag}1</td>" in page and f"<td>{tag}2</td>" in page and "To add: 2" in page
    assert f"“{tag}\\3” cannot be an id" in page
    assert '<tr data-row="4"><td>4</td><td></td><td>This MARC record could not be read (its directory' in page
    assert page.count("in neither UTF-8 nor MARC-8") == 2
    assert '<tr data-row="7"><td>7</td><td></td><td>This MARC record could not be read' in page
    nameless = _marc_book("", "9787539132594", "无名", "", "某", [])
    nameless.remove_fields("001")
    page = client.get(f"/data-in/{staged(upload(client, 'catalogue', 'n.mrc', nameless.as_marc()))}").text
    assert "This MARC record (“无名”) has no id: no control number (001)" in page
    whole = upload(client, "catalogue", "noise.mrc", b"\x1e\x1f" * 5 + b"\x1d")
    assert whole.status_code == 422 and "could not be read as MARC records" in whole.text
    chinese = client.get(f"/data-in/{token}?lang=zh_CN").text
    assert "这条 MARC 记录无法读取（目次与字段不符）" in chinese and "既不是 UTF-8 也不是 MARC-8" in chinese


def _workbook_with(sheet_rows: int = 0, row_cells: int = 0, padding: int = 0) -> bytes:
    """A small XLSX file that unpacks big: ``sheet_rows`` rows of ``row_cells`` cells under
    the heading row, and a part of ``padding`` zero bytes."""
    import zipfile

    book = Workbook()
    book.active.append(["student id", "name"])
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as given, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as packed:
        for name in given.namelist():
            data = given.read(name)
            if name == "xl/worksheets/sheet1.xml" and sheet_rows:
                head, tail = data.split(b"</sheetData>")
                row = b"<row>" + b'<c t="inlineStr"><is><t>x</t></is></c>' * row_cells + b"</row>"
                with packed.open(name, "w", force_zip64=True) as part:
                    part.write(head)
                    for _ in range(sheet_rows):
                        part.write(row)
                    part.write(b"</sheetData>" + tail)
            else:
                packed.writestr(name, data)
        if padding:
            packed.writestr("xl/media/padding.bin", bytes(padding))
    return out.getvalue()


def test_a_small_workbook_that_unpacks_big_is_refused_before_it_is_parsed(board, librarian):
    """Issue 12: a 155 KB XLSX file grew the server from 116 MB to 407 MB (one row of two
    million cells from 226 KB took openpyxl to 1.9 GB). The zip's sizes and a scan of its
    sheets are checked first: too many cells in all or in one row, or too much unpacked, is
    refused with the limits named."""
    from bookcorner.central.reference_files import MAX_XLSX_CELLS, MAX_XLSX_ROW_CELLS, MAX_XLSX_UNPACKED

    client, _name, _token = librarian
    bombs = {"one wide row": _workbook_with(1, MAX_XLSX_ROW_CELLS + 1),
             "many cells": _workbook_with(MAX_XLSX_CELLS // MAX_XLSX_ROW_CELLS + 1, MAX_XLSX_ROW_CELLS),
             "unpacked size": _workbook_with(padding=MAX_XLSX_UNPACKED + 1)}
    for what, data in bombs.items():
        assert len(data) < 400_000, what
        answer = upload(client, "roster", "roster.xlsx", data)
        assert answer.status_code == 413, (what, answer.status_code, answer.text[-300:])
        assert "This workbook unpacks to more than the server reads (at most 2,000,000 cells" in answer.text, what
    fine = _workbook_with(3, MAX_XLSX_ROW_CELLS)  # wide rows within the limits are read as ever
    assert upload(client, "roster", "roster.xlsx", fine).status_code == 303


def test_marc_accents_on_letters_are_not_taken_for_another_encoding():
    """The check for CP1251 read as MARC-8 (accents on nothing) leaves real accents alone:
    Vietnamese as MARC-8 gives it, two accents on one letter, decomposed."""
    import unicodedata

    for title in ("Tiếng Việt thực hành", "Les Misérables", "Žluťoučký kůň"):
        record = Record(force_utf8=True)
        record.add_field(Field(tag="001", data="v1"),
                         Field(tag="245", indicators=Indicators("1", "0"),
                               subfields=[Subfield("a", unicodedata.normalize("NFD", title))]))
        reading = read(CATALOGUE, "v.mrc", record.as_marc())
        assert reading.problems == [], title


def test_a_file_name_holding_control_characters_is_kept_without_them(board, librarian):
    """Issue 12: a file named with a NUL in it gave a 500 on PostgreSQL (text cannot hold
    NUL) when the upload was staged; the name is kept without its control characters."""
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    answer = upload(client, "roster", f"a\x00b\x01{tag}.csv", f"学号,姓名\n{tag},某某\n".encode())
    page = client.get(f"/data-in/{staged(answer)}").text
    assert f"ab{tag}.csv" in page
