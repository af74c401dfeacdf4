"""Roster and catalogue files a librarian uploads, read into reference records.

A roster is a spreadsheet of students and staff; a catalogue a spreadsheet of books or a
file of MARC records. Spreadsheets come as CSV (UTF-8 with or without a byte-order mark,
GB18030 as Chinese Excel saves it, UTF-16 as Excel's "Unicode text") or XLSX, headed in
English or Chinese. Nothing here touches the database: ``read`` turns a file into rows of
the fields it gives plus every problem found in it, ``compare`` sets those rows against
the records the server holds (what would be added, changed or left alone, and which books
may already be catalogued under another record).

An import adds and updates, never removes: a column the file has replaces that field
(an empty cell clears it, or gives the default for role, status and item type); a column
it lacks leaves the field as it is.

A roster may carry each student's library card (one per row, as the school issues them
with the roster): the card becomes the student's active card, read the way a kiosk reads
a tapped card (``circulation.codes.normalise``). A card active for another student is
refused, as at a kiosk's enrolment (``central.additions.enrol_card``): a lost or withdrawn
card may be issued again. An empty card cell gives no card and takes none away.

MARC (ISO 2709 or MARCXML, read with pymarc) maps, for MARC 21: ISBN 020$a; title
245$a : $b; author 100$a, else 110$a; call number 952$o, else 090$a/$b, else 084$a (CLC,
$2 clc), else 050$a $b; one book per 952 holding (Koha's: id 952$p), else one per
record (id 001, else Koha's record number 999$c, else 090$c). For CNMARC (UNIMARC: no 245 but a 200): ISBN 010$a, title 200$a : $e,
author 200$f, else 700/701$a, call number 690$a (CLC), id as for MARC 21. Item types are not
taken from MARC (Koha's item type codes are each library's own). A record that cannot be
read, or whose text is in neither UTF-8 nor MARC-8 (a CP1251 export reads as accents), is a
problem of its own, named by its place in the file; the other records are read.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from stdnum import isbn as stdnum_isbn
from stdnum.exceptions import InvalidChecksum, ValidationError

from bookcorner.circulation.codes import isbn13_of, normalise
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord

ROSTER, CATALOGUE = "roster", "catalogue"
KINDS = (ROSTER, CATALOGUE)
#: more rows than a school's roster or corner catalogue ever holds
MAX_ROWS = 50_000
_IDENTIFIER = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 400


class Unreadable(Exception):
    """The file is not a spreadsheet or MARC file this can read (the reason is a code)."""


@dataclass(frozen=True)
class Problem:
    """Something wrong with one row (``row``: the spreadsheet's row number, the header
    being row 1; for MARC the record's number), in one column as the file heads it."""

    row: int
    column: str
    code: str
    value: str = ""
    #: what it clashes with: another row's number, a book's id
    other: str = ""


@dataclass
class Reading:
    kind: str
    #: (row number, the fields the row gives) of the rows without a problem of their own,
    #: fields named as in PatronRecord/ItemRecord
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: how many rows (MARC: records) the file holds, wrong ones included
    read: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: headings of columns that mean nothing here (shown, so a misspelt heading is noticed)
    ignored: list[str] = field(default_factory=list)
    #: each field's heading in the file
    headings: dict[str, str] = field(default_factory=dict)
    #: the ISBN forms ("10", "13") each row gave, in the order of ``rows``
    isbn_forms: list[frozenset[str]] = field(default_factory=list)


def _key(heading: str) -> str:
    return re.sub(r"[\s_\-./()（）]+", "", heading.strip().lstrip("\ufeff").lower())


_ROSTER_COLUMNS = {
    "patron_id": ("student id", "id", "patron id", "student number", "number", "学号", "学籍号", "编号", "工号"),
    "name": ("name", "student name", "full name", "姓名", "学生姓名"),
    "class_name": ("class", "class name", "form", "班级", "班别", "班"),
    "role": ("role", "type", "角色", "身份", "类别"),
    "status": ("status", "状态"),
    "card_id": ("card", "card id", "card number", "card no", "library card", "卡号", "借书证", "借书证号",
                "借书卡号", "借阅证号", "读者证号"),
    #: the row's class teacher's address, for the overdue notices (never a bare "e-mail": a
    #: roster's e-mail column may be the family's)
    "teacher_email": ("teacher email", "teacher e-mail", "class teacher email", "class teacher e-mail",
                      "班主任邮箱", "班主任电子邮箱", "班主任email", "教师邮箱", "老师邮箱"),
}
_CATALOGUE_COLUMNS = {
    "item_id": ("item id", "id", "book id", "accession number", "accession", "登录号", "财产号", "图书编号", "编号"),
    "barcode": ("barcode", "accession barcode", "条码", "条码号", "条形码"),
    "isbn": ("isbn", "isbn13", "国际标准书号"),
    "isbn10": ("isbn10",),
    "title": ("title", "书名", "题名", "正题名"),
    "author": ("author", "authors", "作者", "著者", "责任者"),
    "call_number": ("call number", "call no", "索书号"),
    "item_type": ("item type", "type", "类型", "图书类型", "文献类型"),
    "home_corner": ("home corner", "corner", "图书角", "所属图书角"),
}
COLUMNS = {ROSTER: {name: {_key(h) for h in headings} for name, headings in _ROSTER_COLUMNS.items()},
           CATALOGUE: {name: {_key(h) for h in headings} for name, headings in _CATALOGUE_COLUMNS.items()}}
#: without these a row means nothing
REQUIRED = {ROSTER: ("patron_id", "name"), CATALOGUE: ("item_id", "title")}
#: what a new record is when the file has no column for it (a roster without roles lists students)
NEW_RECORD = {ROSTER: {"role": "student"}, CATALOGUE: {}}

ROLES = {"student": ("student", "学生"),
         "student_librarian": ("student librarian", "student_librarian", "小图书管理员", "学生图书管理员", "小管理员"),
         "teacher": ("teacher", "staff", "教师", "老师"),
         "librarian": ("librarian", "图书管理员", "馆员")}
STATUSES = {"active": ("active", "在读", "正常"), "suspended": ("suspended", "停借", "暂停"),
            "left": ("left", "离校", "毕业", "转学")}
ITEM_TYPES = {"circulating": ("circulating", "普通", "图书", "外借", "普通图书"),
              "reference": ("reference", "工具书", "参考书"),
              "periodical": ("periodical", "期刊", "杂志", "报刊")}
#: a field whose empty cell means its default, and the words for its values
CHOICES = {"role": (ROLES, "student", "unknown_role"), "status": (STATUSES, "active", "unknown_status"),
           "item_type": (ITEM_TYPES, "circulating", "unknown_item_type")}
_WORDS = {name: {_key(w): value for value, words in choices.items() for w in words}
          for name, (choices, _default, _code) in CHOICES.items()}


# --- reading a file -----------------------------------------------------------------------------


def read(kind: str, filename: str, data: bytes) -> Reading:
    """The rows of an uploaded file and every problem in them (raises Unreadable when the
    file is no spreadsheet or MARC file at all)."""
    name = filename.lower()
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise Unreadable("old_excel")
    if data[:4] == b"PK\x03\x04" or name.endswith(".xlsx"):
        return _from_table(kind, _xlsx_rows(data))
    if name.endswith((".mrc", ".marc", ".iso", ".xml")) or _looks_like_marc(data):
        if kind != CATALOGUE:
            raise Unreadable("marc_is_books")
        return _from_marc(data)
    return _from_table(kind, _csv_rows(data))


def table_rows(filename: str, data: bytes) -> Iterator[list[str]]:
    """A CSV's or XLSX's rows as text cells, as ``read`` reads them (raises Unreadable)."""
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise Unreadable("old_excel")
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        return _xlsx_rows(data)
    return _csv_rows(data)


def _looks_like_marc(data: bytes) -> bool:
    head = data[:24]
    if data.lstrip(b"\xef\xbb\xbf \r\n\t")[:1] == b"<":
        return True
    return len(head) == 24 and head[:5].isdigit() and head[12:17].isdigit()


def decode_text(data: bytes) -> str:
    """A CSV's text: UTF-8 (its byte-order mark dropped), UTF-16 with a byte-order mark,
    else GB18030 (what Chinese Excel writes)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise Unreadable("encoding") from None


def _csv_rows(data: bytes) -> Iterator[list[str]]:
    text = decode_text(data)
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;", key=first.count)
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error:
        raise Unreadable("csv") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed into Excel: 2019001, not 2019001.0
    return str(value)


#: what an XLSX file may unpack to: its parts together, the cells of its sheets, the cells of one
#: row (a roster or catalogue has tens of columns and at most MAX_ROWS rows). openpyxl holds a
#: row's cells and the shared strings in memory: a 200 KB file of one row of two million cells
#: took it to 1.9 GB. Checked on the zip's own sizes and a scan of the sheets before it parses.
MAX_XLSX_UNPACKED = 100 * 1024 * 1024
MAX_XLSX_CELLS = 2_000_000
MAX_XLSX_ROW_CELLS = 1_000
MAX_XLSX_PARTS = 1_000
_XLSX_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)[\s/>]")


def _check_xlsx_size(data: bytes) -> None:
    """Raises Unreadable("xlsx_too_big") when the workbook would unpack to more than the
    limits above, Unreadable("xlsx") when it is no zip. The zip's sizes bound what is read:
    ``zipfile`` stops a part at its stated size (and fails its checksum when it lied)."""
    import zipfile

    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise Unreadable("xlsx") from None
    if len(parts) > MAX_XLSX_PARTS or sum(part.file_size for part in parts) > MAX_XLSX_UNPACKED:
        raise Unreadable("xlsx_too_big")
    book = zipfile.ZipFile(io.BytesIO(data))
    cells = 0
    for part in parts:
        if not (part.filename.startswith("xl/worksheets/") and part.filename.endswith(".xml")):
            continue
        in_row, rest = 0, b""
        try:
            with book.open(part) as stream:
                while chunk := stream.read(1 << 20):
                    text = rest + chunk
                    cut = max(len(text) - 64, 0)  # a tag across the chunk's end is read with the next one
                    for found in _XLSX_TAG.finditer(text, 0, len(text)):
                        if found.start() >= cut:
                            break
                        if found.group(1) == b"row":
                            in_row = 0
                        else:
                            in_row, cells = in_row + 1, cells + 1
                            if in_row > MAX_XLSX_ROW_CELLS or cells > MAX_XLSX_CELLS:
                                raise Unreadable("xlsx_too_big")
                    rest = text[cut:]
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
            raise Unreadable("xlsx") from None


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    _check_xlsx_size(data)
    # a damaged workbook fails in the zip, XML or openpyxl layers, each with errors of its own
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001
        raise Unreadable("xlsx") from None
    try:
        for row in book.worksheets[0].iter_rows(values_only=True):
            yield [_cell(v) for v in row]
    except Exception:  # noqa: BLE001  (as above)
        raise Unreadable("xlsx") from None
    finally:
        book.close()


def _from_table(kind: str, rows: Iterable[list[str]]) -> Reading:
    reading = Reading(kind)
    rows = iter(rows)
    header = _header(rows)
    columns = _columns(reading, header)
    if any(p.code == "missing_column" for p in reading.problems):
        return reading
    reading.headings = {name: header[index] for name, index in columns.items()}
    number = _read_rows(reading, rows, columns)
    if not reading.rows and not reading.problems:
        reading.problems.append(Problem(number, "", "no_rows"))
    _check_across_rows(reading)
    return reading


def _header(rows: Iterator[list[str]]) -> list[str]:
    """The first row with anything in it (taken from ``rows``), its headings trimmed."""
    header: list[str] = []
    for header in rows:
        if any(c.strip() for c in header):
            break
    if not any(c.strip() for c in header):
        raise Unreadable("empty")
    return [h.strip().lstrip("\ufeff") for h in header]


def _columns(reading: Reading, header: list[str]) -> dict[str, int]:
    """Which column holds which field; headings not known, twice or missing go to the reading."""
    kind = reading.kind
    known = COLUMNS[kind]
    columns: dict[str, int] = {}
    for index, heading in enumerate(header):
        name = next((n for n, keys in known.items() if _key(heading) in keys), None)
        if name is None:
            if heading:
                reading.ignored.append(heading)
        elif name in columns:
            reading.problems.append(Problem(1, heading, "two_columns", heading, header[columns[name]]))
        else:
            columns[name] = index
    if kind == CATALOGUE and "item_id" not in columns and "barcode" in columns:
        columns["item_id"] = columns["barcode"]  # accession barcodes name their copies
    for name in REQUIRED[kind]:
        if name not in columns:
            reading.problems.append(Problem(1, "", "missing_column", name))
    return columns


def _read_rows(reading: Reading, rows: Iterator[list[str]], columns: dict[str, int]) -> int:
    """Each row after the header, checked into the reading; the last row's number."""
    number = 1
    for number, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(reading.rows) >= MAX_ROWS:
            reading.problems.append(Problem(number, "", "too_many_rows", str(MAX_ROWS)))
            break
        cells = {name: (row[index].strip() if index < len(row) else "") for name, index in columns.items()}
        reading.read += 1
        _add(reading, number, cells)
    return number


def _add(reading: Reading, row: int, cells: dict[str, str]) -> None:
    """One row's fields, checked; what is wrong goes to the reading's problems."""
    kind = reading.kind
    fields: dict[str, Any] = {}
    problems_before = len(reading.problems)

    def problem(name: str, code: str, value: str = "") -> None:
        reading.problems.append(Problem(row, reading.headings.get(name, name), code, value))

    for name, value in cells.items():
        if name in _APART:
            continue
        if name in REQUIRED[kind] and not value:
            problem(name, "missing_value")
        elif name in ("patron_id", "item_id"):
            ident = _halfwidth(value)
            if _IDENTIFIER.match(ident):
                fields[name] = ident
            else:
                problem(name, "bad_identifier", value)
        elif name == "card_id":
            card = card_code(value)
            if not card:
                continue  # no card issued on this row
            if _IDENTIFIER.match(card):
                fields[name] = card
            else:
                problem(name, "bad_identifier", value)
        elif name in CHOICES:
            _choices, default, code = CHOICES[name]
            chosen = _WORDS[name].get(_key(value)) if value else default
            if chosen is None:
                problem(name, code, value)
            else:
                fields[name] = chosen
        elif _UNPRINTABLE.search(value) or len(value) > MAX_TEXT:
            problem(name, "bad_text", value[:80])
        else:
            fields[name] = value or None
    forms = _apart(kind, cells, fields, problem)
    if len(reading.problems) == problems_before:  # a wrong row is shown, never compared or applied
        reading.rows.append((row, fields))
        reading.isbn_forms.append(forms)


#: the fields read apart from the others (``_apart``)
_APART = ("isbn", "isbn10", "teacher_email")


def _apart(kind: str, cells: dict[str, str], fields: dict[str, Any], problem) -> frozenset[str]:
    """A class teacher's address; a book's ISBNs (the forms given returned)."""
    if cells.get("teacher_email"):
        _teacher_email(cells["teacher_email"], cells, fields, problem)
    if kind == CATALOGUE and ("isbn" in cells or "isbn10" in cells):
        return _isbns(cells, fields, problem)
    return frozenset()


def _teacher_email(value: str, cells: dict[str, str], fields: dict[str, Any], problem) -> None:
    """A class teacher's address: it needs a class on its row (an empty cell gives none)."""
    email = _halfwidth(value).strip()
    if not email:
        return
    if len(email) > 254 or not _EMAIL.match(email):
        problem("teacher_email", "bad_email", value[:80])
    elif not cells.get("class_name"):
        problem("teacher_email", "email_without_class", email)
    else:
        fields["teacher_email"] = email


def _halfwidth(text: str) -> str:
    """Digits and letters typed with a Chinese input method's full-width forms (２０１９) as ASCII."""
    return unicodedata.normalize("NFKC", text)


def card_code(text: str) -> str:
    """A card id as a kiosk reads the card when it is tapped (full-width digits typed with a
    Chinese input method as ASCII, as a card reader sends them)."""
    return normalise(_halfwidth(text))


def isbn_problem(text: str) -> str:
    """Why ``text``, which ``isbn13_of`` refused, is no ISBN (a problem code)."""
    try:
        stdnum_isbn.validate(text)
    except InvalidChecksum:
        return "isbn_checksum"
    except ValidationError:  # stdnum's InvalidLength, InvalidFormat, InvalidComponent
        return "isbn_format"
    return "isbn_format"  # valid to stdnum but not a book's (a 979-0 music number)


def _isbns(cells: dict[str, str], fields: dict[str, Any], problem) -> frozenset[str]:
    """ISBN-13 always (converted from ISBN-10); the ISBN-10 kept when the file gives it.
    Returns the forms given."""
    found: list[tuple[str, str]] = []  # (isbn13, the 10 form when given so)
    for name in ("isbn", "isbn10"):
        value = cells.get(name, "")
        if not value:
            continue
        text = normalise(_halfwidth(value))
        isbn13 = isbn13_of(text)
        if isbn13 is None:
            problem(name, isbn_problem(text), value)
            return frozenset()
        compact = text.replace("-", "")
        found.append((isbn13, compact if len(compact) == 10 else ""))
    if len({isbn13 for isbn13, _ in found}) > 1:
        problem("isbn10", "isbn_mismatch", " / ".join(cells[n] for n in ("isbn", "isbn10")))
        return frozenset()
    fields["isbn13"] = found[0][0] if found else None
    fields["isbn10"] = next((ten for _, ten in found if ten), None)
    return frozenset("10" if ten else "13" for _, ten in found)


def _check_across_rows(reading: Reading) -> None:
    """The same id twice; one card given on two rows; one accession barcode on two books;
    one book entered twice, once by its ISBN-10 and once by its ISBN-13 (copies sharing one
    ISBN form are fine)."""
    key = "patron_id" if reading.kind == ROSTER else "item_id"
    heading = reading.headings.get
    ids: dict[str, int] = {}
    barcodes: dict[str, int] = {}
    cards: dict[str, int] = {}
    forms: dict[str, tuple[int, frozenset[str]]] = {}  # isbn13 -> (first row, forms given there)
    teachers: dict[str, tuple[int, str]] = {}  # class -> (first row, its teacher's address)
    for (row, fields), given in zip(reading.rows, reading.isbn_forms, strict=True):
        email = fields.get("teacher_email")
        if email:
            first_email = teachers.setdefault(fields["class_name"], (row, email))
            if first_email[1].lower() != email.lower():
                reading.problems.append(Problem(row, heading("teacher_email", "teacher_email"), "two_emails", email,
                                                f"{first_email[0]} ({first_email[1]})"))
        ident = fields.get(key)
        if ident is not None:
            if ident in ids:
                reading.problems.append(Problem(row, heading(key, key), "duplicate_id", ident, str(ids[ident])))
            ids.setdefault(ident, row)
        card = fields.get("card_id")
        if card is not None:
            if card in cards:
                reading.problems.append(Problem(row, heading("card_id", "card_id"), "duplicate_card", card,
                                                str(cards[card])))
            cards.setdefault(card, row)
        barcode = fields.get("barcode")
        if barcode and isbn13_of(normalise(barcode)) is None:
            if barcode in barcodes:
                reading.problems.append(Problem(row, heading("barcode", "barcode"), "duplicate_barcode", barcode,
                                                str(barcodes[barcode])))
            barcodes.setdefault(barcode, row)
        isbn13 = fields.get("isbn13")
        if isbn13 and given:
            first = forms.setdefault(isbn13, (row, given))
            if not first[1] & given:
                reading.problems.append(Problem(row, heading("isbn", heading("isbn10", "ISBN")), "isbn_forms",
                                                fields.get("isbn10") or isbn13, str(first[0])))
    reading.problems.sort(key=lambda p: p.row)


# --- MARC ----------------------------------------------------------------------------------------


#: a file whose records are this many times unreadable is no MARC file at all
MAX_UNREADABLE = 200
_MARC_REASONS = {"RecordLeaderInvalid": "leader", "BadLeaderValue": "leader", "RecordLengthInvalid": "leader",
                 "TruncatedRecord": "truncated", "EndOfRecordNotFound": "truncated",
                 "RecordDirectoryInvalid": "directory", "BaseAddressInvalid": "directory",
                 "BaseAddressNotFound": "directory", "NoFieldsFound": "no_fields"}


def _iso2709_records(data: bytes) -> Iterator[Any]:
    """Each record of an ISO 2709 file, or the code of why it could not be read. Records
    are split at their end-of-record mark, so one broken record (a wrong length, a cut
    directory) costs only itself: pymarc's own reader loses its place after one."""
    import pymarc

    chunks = data.split(b"\x1d")
    if not chunks[-1].strip(b" \r\n\t\x1a\x00"):
        chunks.pop()  # what follows the last record's mark: nothing, a newline, a DOS end of file
    for chunk in chunks:
        chunk = chunk.lstrip(b"\r\n")  # a record per line, as some systems write them
        try:
            yield pymarc.Record(chunk + b"\x1d", to_unicode=True, force_utf8=False, utf8_handling="replace")
        except Exception as error:  # noqa: BLE001  (pymarc's, and a leader's UnicodeDecodeError)
            yield _MARC_REASONS.get(type(error).__name__, "other")


def _marcxml_records(data: bytes) -> list[Any]:
    """Each ``<record>`` of a MARCXML file, or the code of why it could not be read (a
    leader of the wrong length, a field with no tag...): one broken record costs only
    itself, where pymarc's own parser gives up on the whole file. Raises Unreadable when the
    file is not well-formed XML."""
    import pymarc

    class Records(pymarc.XmlHandler):
        def __init__(self) -> None:
            super().__init__()
            self.fault: str | None = None

        def _failed(self, error: Exception) -> None:
            self.fault = self.fault or _MARC_REASONS.get(type(error).__name__, "other")
            self._field = None

        def startElementNS(self, name: Any, qname: Any, attrs: Any) -> None:
            if name[1] == "record":
                self.fault = None
            try:
                super().startElementNS(name, qname, attrs)
            except Exception as error:  # noqa: BLE001  (pymarc's, or a KeyError for a missing attribute)
                self._failed(error)

        def endElementNS(self, name: Any, qname: Any) -> None:
            if name[1] == "record" and self.fault is not None and self._record is not None:
                self.records.append(self.fault)
                self._record, self.fault, self._text = None, None, []
                return
            try:
                super().endElementNS(name, qname)
            except Exception as error:  # noqa: BLE001
                self._failed(error)

    handler = Records()
    try:
        pymarc.parse_xml(io.BytesIO(data), handler)
    except Exception:  # noqa: BLE001  (expat and SAX errors of a broken XML file)
        raise Unreadable("marc") from None
    return handler.records


def _from_marc(data: bytes) -> Reading:
    reading = Reading(CATALOGUE)
    records: Iterable[Any]
    xml = data.lstrip(b"\xef\xbb\xbf \r\n\t")[:1] == b"<"
    records = _marcxml_records(data) if xml else _iso2709_records(data)
    unreadable = 0
    for number, record in enumerate(records, start=1):
        reading.read += 1
        if record is None or isinstance(record, str):
            unreadable += 1
            if unreadable > MAX_UNREADABLE and unreadable * 2 > reading.read:
                raise Unreadable("marc")
            reading.problems.append(Problem(number, "", "unreadable_record", record or "other"))
            continue
        if len(reading.rows) >= MAX_ROWS:
            reading.problems.append(Problem(number, "", "too_many_rows", str(MAX_ROWS)))
            break
        garbled = _garbled(record)
        if garbled:
            reading.problems.append(Problem(number, "", "garbled_text", garbled[:80]))
            continue
        for cells, headings in _marc_books(record):
            reading.headings = headings
            if not cells["item_id"]:  # said in MARC's terms: "001: missing" alone sends one looking for a 001
                reading.problems.append(Problem(number, headings["item_id"], "marc_no_id", cells["title"][:80]))
                continue
            _add(reading, number, cells)
    # a <record> is a MARC record by the file's own word, so even a file of broken ones is
    # named record by record; ISO 2709 bytes that never once read as a record are no MARC file
    if not reading.read or (unreadable == reading.read and not xml):
        raise Unreadable("marc")
    _check_across_rows(reading)
    return reading


def _garbled(record: Any) -> str:
    """The record's title (else its text) when it reads as nonsense: bytes of another
    encoding (a Windows code page such as CP1251 or GBK) that the leader calls MARC-8 come
    out as accents on nothing (after a space, a sign or three on one letter), and that it
    calls UTF-8 as replacement characters. Empty when it reads well (MARC-8's own accents sit
    on letters, at most two on one: Vietnamese)."""
    def text_of(fields: list[Any]) -> str:
        return " ".join(value for found in fields if not found.is_control_field()
                        for value in found.get_subfields(*"abcdefghijklmnopqrstuvwxyz0123456789"))

    text = text_of(record.get_fields("245", "200")) or text_of(record.get_fields())
    odd = run = 0
    base = " "
    for ch in text:
        if unicodedata.combining(ch):
            run += 1
            odd += run > 2 or not base.isalpha()
        else:
            run, base = 0, ch
            odd += ch == "\ufffd"
    letters = sum(1 for ch in text if not ch.isspace())
    return text if odd and odd * 4 > letters else ""


def _sub(record: Any, tag: str, *codes: str, joined: str = " ") -> str:
    """The first ``tag`` field's subfields ``codes`` joined, ISBD punctuation trimmed."""
    for found in record.get_fields(tag):
        parts = [_trim(value) for code in codes for value in found.get_subfields(code)]
        if any(parts):
            return joined.join(p for p in parts if p)
    return ""


def _trim(text: str) -> str:
    return text.strip().rstrip(" /:;,.=").strip()


def _marc_books(record: Any) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    control, control_heading = _control(record)
    if record.get_fields("245") or not record.get_fields("200"):  # MARC 21
        isbn = _sub(record, "020", "a").split(" ")[0]
        cells = {"title": _sub(record, "245", "a", "b", joined=" : "), "isbn": isbn,
                 "author": _sub(record, "100", "a") or _sub(record, "110", "a"),
                 "call_number": _sub(record, "090", "a", "b", joined="/") or _clc(record, "084")
                 or _sub(record, "050", "a", "b")}
        headings = {"title": "245", "isbn": "020$a", "author": "100$a", "call_number": "090",
                    "item_id": control_heading}
        holdings = record.get_fields("952")
    else:  # CNMARC
        cells = {"title": _sub(record, "200", "a", "e", joined=" : "), "isbn": _sub(record, "010", "a").split(" ")[0],
                 "author": _sub(record, "200", "f") or _sub(record, "700", "a") or _sub(record, "701", "a"),
                 "call_number": _sub(record, "690", "a")}
        headings = {"title": "200$a", "isbn": "010$a", "author": "200$f", "call_number": "690$a",
                    "item_id": control_heading}
        holdings = []
    if not holdings:
        yield {**cells, "item_id": control}, headings
        return
    for holding in holdings:
        copy = {**cells, "item_id": _trim(" ".join(holding.get_subfields("p"))) or control}
        call = " ".join(holding.get_subfields("o")).strip()
        if call:
            copy["call_number"] = call
        yield copy, {**headings, "item_id": "952$p"}


def _control(record: Any) -> tuple[str, str]:
    """The record's id and where it came from: its control number (001), else the record
    number Koha keeps in 999$c (a Koha export need not have a 001), else 090$c (where older
    Koha set-ups keep it). A 001 that cannot be an id (a slash in it) gives way to 999$c or
    090$c when the record has one; else it is reported as the record's problem."""
    found = [("001", field.data.strip()) for field in record.get_fields("001") if field.data and field.data.strip()]
    for tag in ("999", "090"):
        found += [(f"{tag}$c", _trim(value)) for field in record.get_fields(tag)
                  for value in field.get_subfields("c") if _trim(value)]
    for heading, value in found:
        if _IDENTIFIER.match(_halfwidth(value)):
            return value, heading
    return found[0][1] if found else "", found[0][0] if found else "001"


def _clc(record: Any, tag: str) -> str:
    """A Chinese Library Classification number (084 with $2 clc)."""
    for found in record.get_fields(tag):
        if any(s.strip().lower() == "clc" for s in found.get_subfields("2")):
            return _trim(" ".join(found.get_subfields("a")))
    return ""


# --- against what the server holds ---------------------------------------------------------------


@dataclass
class Change:
    row: int
    key: str
    #: the student's name or the book's title (after the import)
    label: str
    #: every field of the record after the import (defaults included)
    after: dict[str, Any] = field(default_factory=dict)
    #: (field, before, after) for a changed record
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)


@dataclass
class CardIssue:
    """A card the import makes a student's active card."""

    row: int
    card_id: str
    patron_id: str
    #: the student's name (after the import)
    label: str
    #: the card as the server held it (lost or withdrawn, perhaps another student's); None: new
    before: dict[str, Any] | None = None


@dataclass
class TeacherEmail:
    """A class teacher's address the import sets (for the overdue notices)."""

    row: int
    class_name: str
    email: str
    #: the teacher's name: the row's when it is the teacher's own, else the one the server had
    teacher_name: str
    #: the address the server had ("": none)
    before: str = ""


@dataclass
class Preview:
    added: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0
    #: problems only the server's records show (a barcode already on another book)
    problems: list[Problem] = field(default_factory=list)
    #: books whose ISBN the catalogue already has under another record
    duplicates: list[Problem] = field(default_factory=list)
    #: the records to write (the whole record, merged with what the server had)
    records: list[dict[str, Any]] = field(default_factory=list)
    #: the cards to make active (a roster's card column)
    cards: list[CardIssue] = field(default_factory=list)
    #: cards the file gives that are already their student's active card
    cards_unchanged: int = 0
    #: class teachers' addresses the import sets or changes (a roster's teacher e-mail column)
    teachers: list[TeacherEmail] = field(default_factory=list)


def _isbn13_of_record(record: dict[str, Any]) -> str | None:
    if record.get("isbn13"):
        return isbn13_of(normalise(record["isbn13"])) or record["isbn13"]
    if record.get("isbn10"):
        return isbn13_of(normalise(record["isbn10"]))
    return None


def _whole(record: dict[str, Any], record_type: type) -> dict[str, Any]:
    return msgspec.structs.asdict(msgspec.convert(record, record_type))


def compare(kind: str, rows: list[tuple[int, dict[str, Any]]], current: dict[str, dict[str, Any]],
            cards: dict[str, dict[str, Any]] | None = None,
            teachers: dict[str, tuple[str, str]] | None = None) -> Preview:
    """What the rows would do to ``current`` (the server's live records by id, as stored);
    ``cards``: the server's live cards by id, as stored (for a roster with cards);
    ``teachers``: each class's (teacher's name, address) the server has."""
    key, label, record_type = ((("patron_id", "name", PatronRecord)) if kind == ROSTER
                               else ("item_id", "title", ItemRecord))
    preview = Preview()
    others = _Others.of(current, {fields.get(key) for _row, fields in rows}) if kind == CATALOGUE else None
    for row, given in rows:
        fields = {name: value for name, value in given.items() if name not in ("card_id", "teacher_email")}
        ident = fields[key]
        before = current.get(ident)
        merged = {name: value for name, value in {**(before or NEW_RECORD[kind]), **fields}.items()
                  if value is not None}
        try:
            after = _normal(merged, record_type)
        except msgspec.ValidationError as error:  # what the row checks did not foresee
            preview.problems.append(Problem(row, "", "bad_record", str(error)))
            continue
        if given.get("card_id"):
            _issue(preview, row, given["card_id"], after, (cards or {}).get(given["card_id"]), current)
        if given.get("teacher_email"):
            _teacher(preview, row, given["teacher_email"], after, teachers or {})
        if others is not None:
            others.check(preview, row, after, current)
        if before is None:
            preview.added.append(Change(row, ident, str(after.get(label, "")), _whole(after, record_type)))
        elif not _changed(preview, row, ident, _normal(before, record_type), after, label, record_type):
            continue
        preview.records.append(after)
    return preview


def _normal(record: dict[str, Any], record_type: type) -> dict[str, Any]:
    return msgspec.to_builtins(msgspec.convert(record, record_type))  # defaults left out, as stored


def _changed(preview: Preview, row: int, ident: str, before: dict[str, Any], after: dict[str, Any], label: str,
             record_type: type) -> bool:
    """A record the row changes goes to the preview with what changes; an unchanged one is counted."""
    if before == after:
        preview.unchanged += 1
        return False
    changed = [(name, before.get(name), after.get(name)) for name in sorted(set(before) | set(after))
               if before.get(name) != after.get(name)]
    preview.changed.append(Change(row, ident, str(after.get(label, "")), _whole(after, record_type), changed))
    return True


@dataclass
class _Others:
    """The catalogue's books the file does not name, by ISBN and by barcode."""

    by_isbn: dict[str, list[str]]
    by_barcode: dict[str, str]

    @classmethod
    def of(cls, current: dict[str, dict[str, Any]], in_file: set[Any]) -> _Others:
        others = cls({}, {})
        for ident, record in current.items():
            if ident in in_file:
                continue  # the file says what this book will be
            isbn13 = _isbn13_of_record(record)
            if isbn13:
                others.by_isbn.setdefault(isbn13, []).append(ident)
            if record.get("barcode"):
                others.by_barcode[record["barcode"]] = ident
        return others

    def check(self, preview: Preview, row: int, after: dict[str, Any], current: dict[str, dict[str, Any]]) -> None:
        """A book whose barcode another book has (a problem), or whose ISBN (a possible duplicate)."""
        barcode = after.get("barcode")
        if barcode and barcode in self.by_barcode and isbn13_of(normalise(barcode)) is None:
            preview.problems.append(Problem(row, "barcode", "barcode_taken", barcode, self.by_barcode[barcode]))
        for other in self.by_isbn.get(after.get("isbn13") or "", ()):
            preview.duplicates.append(Problem(row, "ISBN", "isbn_in_catalogue",
                                              after.get("isbn10") or after["isbn13"],
                                              f"{other} ({current[other].get('title', '')})"))


def _issue(preview: Preview, row: int, card_id: str, student: dict[str, Any], on_file: dict[str, Any] | None,
           current: dict[str, dict[str, Any]]) -> None:
    """A row's card: refused while another student holds it active (as ``enrol_card``
    decides at a kiosk), nothing to do when it is already this student's active card."""
    record = msgspec.convert(on_file, CardRecord) if on_file is not None else None
    if record is not None and record.status == "active":
        if record.patron_id != student["patron_id"]:
            holder = current.get(record.patron_id, {}).get("name", "")
            preview.problems.append(Problem(row, "card", "card_taken", card_id,
                                            f"{holder} ({record.patron_id})" if holder else record.patron_id))
        else:
            preview.cards_unchanged += 1
        return
    preview.cards.append(CardIssue(row, card_id, student["patron_id"], str(student.get("name", "")),
                                   msgspec.to_builtins(record) if record is not None else None))


def _teacher(preview: Preview, row: int, email: str, person: dict[str, Any],
             teachers: dict[str, tuple[str, str]]) -> None:
    """A row's class teacher's address, once per class; the teacher's own row names them."""
    class_name = str(person.get("class_name") or "")
    had_name, had = teachers.get(class_name, ("", ""))
    name = str(person.get("name") or "") if person.get("role") == "teacher" else had_name
    listed = next((t for t in preview.teachers if t.class_name == class_name), None)
    if listed is not None:
        listed.teacher_name = name if person.get("role") == "teacher" else listed.teacher_name
    elif had.lower() != email.lower() or name != had_name:
        preview.teachers.append(TeacherEmail(row, class_name, email, name, had))
