"""Reading lists and the co-reading counts: what the kiosks suggest a child reads next.

The librarian keeps lists (the school's recommended list for a grade, a festival's theme
list, a teacher's list for a class), imported from a CSV or XLSX file by ISBN or title:
the file is read and matched against the catalogue first (a preview, with every row that
matches no book said), then saved whole. The co-reading counts come from the loans table:
for each grade and book, how many children of that grade went on to borrow which book
next. Only loans that still name their borrower count (the retention period anonymises
the older ones), only pairs that several children made are kept, and what is shipped
names books and counts, never a child.

``publish`` puts both into the ``reading`` setting under a new reference revision when
they changed: the kiosks pull it with the rest of the reference data.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from bookcorner.central import db, privacy
from bookcorner.central.ingest import next_revision, upsert
from bookcorner.central.reference_files import MAX_TEXT, Unreadable, isbn_problem, table_rows
from bookcorner.circulation.codes import isbn13_of
from bookcorner.circulation.suggestions import PastLoan, co_reading_counts, grade_of
from bookcorner.protocol.messages import ChallengeRecord, NextBooksRecord, ReadingListRecord, ReadingRecord

KINDS = ("grade", "festival", "class")
MAX_BOOKS = 500
SETTING = "reading"
_ISBN_HEADINGS = {"isbn", "isbn13", "isbn-13", "isbn10", "书号", "isbn号", "国际标准书号"}
_TITLE_HEADINGS = {"title", "书名", "题名", "图书名称", "名称"}
_BRACKETS = re.compile(r"[《》〈〉\"'“”‘’\s]")


class ListRefused(ValueError):
    """The list cannot be saved as given (``code`` says why, for the dashboard's words)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ListRow:
    """One row of an imported list and the book it matched (``problem``: why none)."""

    line: int
    isbn13: str | None
    title: str
    book: str | None = None
    matched_title: str = ""
    #: "isbn_checksum" | "isbn_format" | "no_book" | "title_ambiguous" | "empty" | "" (matched)
    problem: str = ""


@dataclass
class ListPreview:
    rows: list[ListRow] = field(default_factory=list)
    #: the file could not be read at all (a reference_files Unreadable code)
    unreadable: str = ""

    @property
    def matched(self) -> int:
        return sum(1 for row in self.rows if row.book)

    @property
    def unmatched(self) -> list[ListRow]:
        return [row for row in self.rows if not row.book]


@dataclass(frozen=True)
class ListMeta:
    name: str
    kind: str
    grades: tuple[int, ...] = ()
    class_name: str | None = None


@dataclass
class ListSummary:
    list_id: str
    meta: ListMeta
    books: int
    matched: int
    updated_at: datetime
    updated_by: str


# -- matching books ---------------------------------------------------------------------------


def title_key(title: str) -> str:
    """A title as compared: full-width forms folded, 《》 quotes and spaces dropped, any case."""
    return _BRACKETS.sub("", unicodedata.normalize("NFKC", title)).casefold()


@dataclass
class Catalogue:
    """The catalogue's books by ISBN-13 and by title (a title several books carry is ambiguous)."""

    titles: dict[str, str] = field(default_factory=dict)  # book key -> title
    by_isbn: dict[str, str] = field(default_factory=dict)
    by_title: dict[str, set[str]] = field(default_factory=dict)
    item_book: dict[str, str] = field(default_factory=dict)  # item id -> book key


def catalogue(conn: Connection) -> Catalogue:
    out = Catalogue()
    c = db.catalogue.c
    for row in conn.execute(select(c.item_id, c.data).where(c.removed.is_(False))):
        data = msgspec.json.decode(row.data)
        book = data.get("isbn13") or f"item:{row.item_id}"
        out.item_book[row.item_id] = book
        out.titles.setdefault(book, data["title"])
        if data.get("isbn13"):
            out.by_isbn[data["isbn13"]] = book
        out.by_title.setdefault(title_key(data["title"]), set()).add(book)
    return out


def match(row: ListRow, books: Catalogue) -> ListRow:
    """``row`` with the book it names (by ISBN first, then by title) or why none. A wrong
    ISBN with a title that names one book matches that book, the ISBN's problem kept as a
    note (a typo in an ISBN is common; the title says which book was meant)."""
    note = row.problem if row.problem.startswith("isbn_") else ""
    row.book, row.matched_title, row.problem = None, "", ""
    if row.isbn13 and row.isbn13 in books.by_isbn:
        row.book = books.by_isbn[row.isbn13]
    elif row.title:
        found = books.by_title.get(title_key(row.title), set())
        if len(found) == 1:
            row.book = next(iter(found))
        row.problem = "title_ambiguous" if len(found) > 1 else "" if found else "no_book"
    else:
        row.problem = "no_book"
    if note and (row.book or row.problem == "no_book"):
        row.problem = note
    if row.book:
        row.matched_title = books.titles[row.book]
    return row


# -- reading a file ---------------------------------------------------------------------------


def _columns(header: list[str]) -> tuple[int | None, int | None]:
    keys = [re.sub(r"\s", "", cell).casefold() for cell in header]
    isbn = next((i for i, key in enumerate(keys) if key in _ISBN_HEADINGS), None)
    title = next((i for i, key in enumerate(keys) if key in _TITLE_HEADINGS), None)
    return isbn, title


def _row(line: int, cells: list[str], isbn_at: int | None, title_at: int | None) -> ListRow | None:
    def cell(at: int | None) -> str:
        return unicodedata.normalize("NFKC", cells[at]).strip() if at is not None and at < len(cells) else ""

    code, title = cell(isbn_at), cell(title_at)[:MAX_TEXT]
    if not code and not title:
        return None if not any(c.strip() for c in cells) else ListRow(line, None, "", problem="empty")
    isbn13 = isbn13_of(code) if code else None
    if code and isbn13 is None:  # the wrong ISBN shown where the title would be, when there is none
        return ListRow(line, None, title or code, problem=isbn_problem(code))
    return ListRow(line, isbn13, title)


def read_list(filename: str, data: bytes, books: Catalogue) -> ListPreview:
    """The rows of a list file, each matched to a book (a file with a header row names its
    ISBN and title columns; without one, the first column is an ISBN or a title)."""
    preview = ListPreview()
    try:
        rows: Iterator[list[str]] = table_rows(filename, data)
        first = next(rows, None)
        if first is None:
            return preview
        isbn_at, title_at = _columns(first)
        if isbn_at is None and title_at is None:
            isbn_at, title_at = (0, 1) if first and isbn13_of(first[0].strip()) else (None, 0)
            rows = _chain(first, rows)
            start = 1
        else:
            start = 2
        for line, cells in enumerate(rows, start=start):
            row = _row(line, cells, isbn_at, title_at)
            if row is not None:
                preview.rows.append(row if row.problem == "empty" else match(row, books))
            if len(preview.rows) > MAX_BOOKS:
                preview.unreadable = "too_many_books"
                break
    except Unreadable as error:
        preview.unreadable = str(error)
    return preview


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


# -- the lists --------------------------------------------------------------------------------


def check_meta(meta: ListMeta) -> None:
    if not meta.name.strip() or len(meta.name) > 200:
        raise ListRefused("name")
    if meta.kind not in KINDS:
        raise ListRefused("kind")
    if any(not 1 <= g <= 12 for g in meta.grades):
        raise ListRefused("grades")
    if meta.kind == "class" and not (meta.class_name or "").strip():
        raise ListRefused("class_name")


def save_list(store: db.Store, meta: ListMeta, rows: Sequence[ListRow], who: str, at: datetime,
              list_id: str | None = None) -> str:
    """Saves a list (a new one, or replaces ``list_id``'s books) and publishes the reading
    guide; returns its id. Rows that matched no book are kept: they match when the book
    is catalogued."""
    check_meta(meta)
    if not any(row.book for row in rows):
        raise ListRefused("no_books")
    list_id = list_id or secrets.token_hex(8)
    r, b = db.reading_lists.c, db.reading_list_books.c
    with store.writing() as conn:
        created = conn.execute(select(r.created_at).where(r.list_id == list_id)).scalar() or at
        upsert(conn, db.reading_lists, ["list_id"], [{
            "list_id": list_id, "name": meta.name.strip(), "kind": meta.kind,
            "grades": ",".join(str(g) for g in sorted(set(meta.grades))),
            "class_name": (meta.class_name or "").strip() or None, "created_at": created, "updated_at": at,
            "updated_by": who}])
        conn.execute(delete(db.reading_list_books).where(b.list_id == list_id))
        kept = [row for row in rows if row.isbn13 or row.title]
        if kept:
            conn.execute(db.reading_list_books.insert(), [
                {"list_id": list_id, "position": i, "isbn13": row.isbn13, "title": row.title or row.matched_title,
                 "book": row.book} for i, row in enumerate(kept)])
        _audit(conn, at, who, "reading.list_saved", list_id, meta.name)
    publish(store, at)
    return list_id


def delete_list(store: db.Store, list_id: str, who: str, at: datetime) -> bool:
    with store.writing() as conn:
        name = conn.execute(select(db.reading_lists.c.name).where(db.reading_lists.c.list_id == list_id)).scalar()
        if name is None:
            return False
        conn.execute(delete(db.reading_list_books).where(db.reading_list_books.c.list_id == list_id))
        conn.execute(delete(db.reading_lists).where(db.reading_lists.c.list_id == list_id))
        _audit(conn, at, who, "reading.list_deleted", list_id, name)
    publish(store, at)
    return True


def _audit(conn: Connection, at: datetime, who: str, action: str, target: str, name: str) -> None:
    conn.execute(db.audit_log.insert().values(at=at, who=who, action=action, target=target,
                                              detail=msgspec.json.encode({"name": name}).decode()))


def _meta(row) -> ListMeta:
    return ListMeta(row.name, row.kind, tuple(int(g) for g in row.grades.split(",") if g), row.class_name)


def lists(store: db.Store) -> list[ListSummary]:
    r, b = db.reading_lists.c, db.reading_list_books.c
    with store.reading() as conn:
        counts: dict[str, list[int]] = {}
        for row in conn.execute(select(b.list_id, b.book)):
            counts.setdefault(row.list_id, [0, 0])[0] += 1
            counts[row.list_id][1] += row.book is not None
        out = []
        for row in conn.execute(select(db.reading_lists).order_by(r.kind, r.grades, r.name)):
            books, matched = counts.get(row.list_id, [0, 0])
            out.append(ListSummary(row.list_id, _meta(row), books, matched, row.updated_at, row.updated_by))
        return out


def list_books(store: db.Store, list_id: str) -> tuple[ListMeta, list[ListRow]] | None:
    """A list and its books, matched again against today's catalogue."""
    with store.reading() as conn:
        head = conn.execute(select(db.reading_lists).where(db.reading_lists.c.list_id == list_id)).first()
        if head is None:
            return None
        books = catalogue(conn)
        b = db.reading_list_books.c
        rows = [match(ListRow(row.position + 1, row.isbn13, row.title), books) for row in conn.execute(
            select(b.position, b.isbn13, b.title).where(b.list_id == list_id).order_by(b.position))]
    return _meta(head), rows


# -- the co-reading counts and what kiosks pull -----------------------------------------------


def past_loans(conn: Connection, now: datetime, books: Catalogue) -> Iterator[PastLoan]:
    """The loans the counts may use: those that still name their borrower, within the
    retention period (the anonymiser may not have run yet), with a grade; the child is
    known here only as a number for this computation."""
    days = privacy.retention_days(conn)
    c = db.loans.c
    query = select(c.patron_id, c.class_name, c.item_id, c.out_at).where(c.patron_id.is_not(None))
    if days:
        query = query.where(c.out_at >= now - timedelta(days=days))
    children: dict[str, str] = {}
    for row in conn.execute(query):
        grade, book = grade_of(row.class_name), books.item_book.get(row.item_id)
        if grade is None or book is None:
            continue
        child = children.setdefault(row.patron_id, str(len(children)))
        yield PastLoan(child, grade, book, row.out_at)


def guide_record(conn: Connection, now: datetime) -> ReadingRecord:
    books = catalogue(conn)
    counts = co_reading_counts(past_loans(conn, now, books))
    record = ReadingRecord(next_books=[
        NextBooksRecord(grade, book, [n for n, _c in pairs], [c for _n, c in pairs])
        for grade, by_book in sorted(counts.items()) for book, pairs in sorted(by_book.items())])
    r, b = db.reading_lists.c, db.reading_list_books.c
    rows: dict[str, list[str]] = {}
    for row in conn.execute(select(b.list_id, b.isbn13, b.title, b.book).order_by(b.list_id, b.position)):
        matched = match(ListRow(0, row.isbn13, row.title), books).book or row.book
        if matched and matched in books.titles and matched not in rows.setdefault(row.list_id, []):
            rows[row.list_id].append(matched)
    for head in conn.execute(select(r.list_id, r.name, r.grades, r.class_name).order_by(r.list_id)):
        record.lists.append(ReadingListRecord(
            head.list_id, head.name[:400], rows.get(head.list_id, []),
            [int(g) for g in head.grades.split(",") if g], [head.class_name] if head.class_name else []))
    record.challenges = challenge_records(conn, now)
    return record


def challenge_records(conn: Connection, now: datetime) -> list[ChallengeRecord]:
    """The challenges the kiosks show: running or coming, not ended by the librarian (a day
    of grace after the last, for a kiosk whose clock runs behind the server's)."""
    c = db.reading_challenges.c
    rows = conn.execute(select(db.reading_challenges).where(
        c.ended_at.is_(None), c.ends_on >= (now - timedelta(days=1)).date()).order_by(c.starts_on, c.challenge_id))
    return [ChallengeRecord(row.challenge_id, row.name[:400], row.starts_on, row.ends_on, row.goal,
                            bool(row.by_category), [n for n in row.class_names.split(",") if n]) for row in rows]


def publish(store: db.Store, now: datetime) -> bool:
    """Recomputes what kiosks pull for suggestions; True if it changed (a new revision)."""
    with store.writing() as conn:
        record = guide_record(conn, now)
        text = msgspec.json.encode(record).decode()
        current = conn.execute(select(db.settings.c.data).where(db.settings.c.name == SETTING)).scalar()
        if current == text or (current is None and not record.lists and not record.next_books
                               and not record.challenges):
            return False
        upsert(conn, db.settings, ["name"], [{"name": SETTING, "data": text, "rev": next_revision(conn)}])
    return True


def shipped(store: db.Store) -> ReadingRecord | None:
    with store.reading() as conn:
        text = conn.execute(select(db.settings.c.data).where(db.settings.c.name == SETTING)).scalar()
    return msgspec.json.decode(text, type=ReadingRecord) if text else None


# -- an upload waiting for its preview to be confirmed ----------------------------------------

STAGED_KIND = "reading_list"
KEPT_FOR = timedelta(days=1)


class _Staged(msgspec.Struct):
    name: str
    kind: str
    grades: list[int]
    class_name: str | None
    rows: list[tuple[int, str | None, str, str | None, str, str]]


def stage(store: db.Store, who: str, meta: ListMeta, filename: str, preview: ListPreview, at: datetime) -> str:
    """Keeps a read list for its preview (a day at most); returns its token."""
    token = secrets.token_urlsafe(24)
    staged = _Staged(meta.name, meta.kind, list(meta.grades), meta.class_name,
                     [(r.line, r.isbn13, r.title, r.book, r.matched_title, r.problem) for r in preview.rows])
    with store.writing() as conn:
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.created_at < at - KEPT_FOR))
        conn.execute(db.staged_imports.insert().values(token=token, who=who, kind=STAGED_KIND, filename=filename[:255],
                                                       data=msgspec.json.encode(staged), created_at=at))
    return token


def staged(store: db.Store, token: str) -> tuple[str, str, ListMeta, ListPreview] | None:
    """Who staged it, the file's name, the list's details and its rows (None: gone)."""
    s = db.staged_imports.c
    with store.reading() as conn:
        row = conn.execute(select(s.who, s.filename, s.data).where(s.token == token[:64], s.kind == STAGED_KIND)).first()
    if row is None:
        return None
    kept = msgspec.json.decode(row.data, type=_Staged)
    meta = ListMeta(kept.name, kept.kind, tuple(kept.grades), kept.class_name)
    return row.who, row.filename, meta, ListPreview([ListRow(*r) for r in kept.rows])


def confirm(store: db.Store, token: str, who: str, at: datetime) -> str:
    """Saves a staged list (its uploader only); raises ListRefused("gone" | "not_yours" | ...)."""
    found = staged(store, token)
    if found is None:
        raise ListRefused("gone")
    uploader, _filename, meta, preview = found
    if uploader != who:
        raise ListRefused("not_yours")
    list_id = save_list(store, meta, preview.rows, who, at)
    forget(store, token)
    return list_id


def forget(store: db.Store, token: str) -> None:
    with store.writing() as conn:
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.token == token[:64],
                                                     db.staged_imports.c.kind == STAGED_KIND))
