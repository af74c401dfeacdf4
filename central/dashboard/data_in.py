"""Data in: the librarian loads a roster or a catalogue from a file, sees what it would
change, then confirms all of it or cancels.

An upload is read at once (``central.reference_files``) and staged in ``staged_imports``;
nothing changes until its preview is confirmed. A file with any wrong row cannot be
confirmed (no half imports: fix the file and upload it again). Confirming writes every row
in one transaction under one new reference revision, the way kiosks pull changes, with an
audit record; it adds and updates, never removes. A roster's card column gives each
student an active card in that same transaction and revision. A staged import belongs to the librarian
who uploaded it (the one who checked its preview is the one who confirms it) and is
forgotten after a day.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncGenerator, Sequence
from datetime import timedelta
from typing import Any

import msgspec
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import delete, select
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from bookcorner.central import db
from bookcorner.central.dashboard import auth
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.ingest import next_revision, upsert
from bookcorner.central.reference_files import (
    CATALOGUE,
    KINDS,
    MAX_XLSX_CELLS,
    MAX_XLSX_ROW_CELLS,
    MAX_XLSX_UNPACKED,
    ROSTER,
    Preview,
    Problem,
    Unreadable,
    compare,
    read,
)
from bookcorner.i18n import _
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: room for the form's other fields and the multipart framing around the file
_FRAMING_BYTES = 64 * 1024
#: a larger upload is read to its end (and dropped) so the browser gets the answer
_DRAIN_BYTES = 64 * 1024 * 1024
KEPT_FOR = timedelta(days=1)
#: how many added or changed rows a preview lists (all are counted)
SHOWN = 300
PAGES = ("/data-in", "/data-in/sample-token")
FORMS = ("/data-in/upload", "/data-in/sample-token/confirm", "/data-in/sample-token/cancel")
_TABLES = {ROSTER: (db.patrons, "patron_id", PatronRecord), CATALOGUE: (db.catalogue, "item_id", ItemRecord)}


class Staged(msgspec.Struct):
    """What an upload was read into, as kept until it is confirmed or cancelled."""

    rows: list[tuple[int, dict[str, Any]]]
    problems: list[Problem]
    ignored: list[str]
    #: rows (MARC: records) in the file
    read: int


class Refused(Exception):
    """Confirming is refused (the reason is a code)."""


def field_names() -> dict[str, str]:
    return {"patron_id": _("student id"), "name": _("name"), "class_name": _("class"), "role": _("role"),
            "status": _("status"), "item_id": _("book id"), "barcode": _("barcode"), "title": _("title"),
            "author": _("author"), "isbn13": "ISBN-13", "isbn10": "ISBN-10", "call_number": _("call number"),
            "item_type": _("item type"), "home_corner": _("home corner"), "card_id": _("card")}


def value_text(name: str, value: Any) -> str:
    """A field's value as the preview shows it (roles and item types in words)."""
    words = {"student": _("student"), "student_librarian": _("student librarian"), "teacher": _("teacher"),
             "librarian": _("librarian"), "circulating": _("circulating"), "reference": _("reference (in-room use)"),
             "periodical": _("periodical"), "active": _("active"), "suspended": _("suspended"), "left": _("left")}
    if value is None:
        return "—"
    return words.get(value, str(value)) if name in ("role", "item_type", "status") else str(value)


def problem_text(problem: Problem) -> str:
    """What is wrong, in the librarian's words."""
    words = {
        "missing_column": _("The file has no column for the {value} (the first row must name the columns)."),
        "two_columns": _("Two columns mean the same: “{value}” and “{other}”."),
        "no_rows": _("The file has no rows under its headings."),
        "too_many_rows": _("Too many rows: at most {value} in one file."),
        "missing_value": _("Missing: this must be filled in."),
        "bad_identifier": _("“{value}” cannot be an id: use only letters, digits and . _ : - (at most 80)."),
        "unknown_role": _("Unknown role “{value}”: write student, student librarian, teacher or librarian."),
        "unknown_status": _("Unknown status “{value}”: write active, suspended or left."),
        "unknown_item_type": _("Unknown item type “{value}”: write circulating, reference or periodical."),
        "bad_text": _("Longer than 400 characters, or holds control characters."),
        "isbn_checksum": _("Invalid ISBN “{value}”: its check digit is wrong (a typing mistake?)."),
        "isbn_format": _("“{value}” is not an ISBN: an ISBN has 10 or 13 digits."),
        "isbn_mismatch": _("The ISBN-13 and the ISBN-10 name different books: {value}."),
        "duplicate_id": _("The id {value} is already used on row {other}."),
        "duplicate_barcode": _("The barcode {value} is already used on row {other}."),
        "duplicate_card": _("The card {value} is already given on row {other}: one card for one student."),
        "card_taken": _("The card {value} is held by {other}: mark it lost or withdrawn there first."),
        "isbn_forms": _("The same book as row {other}, once by ISBN-10 and once by ISBN-13 ({value}). "
                        "If they are two copies, write their ISBN the same way."),
        "barcode_taken": _("The barcode {value} already belongs to book {other}."),
        "bad_record": _("This row cannot be stored: {value}"),
        "unreadable_record": _("This MARC record could not be read ({value}): it is left out of the preview. "
                               "Export it again, or leave it out of the file."),
        "marc_no_id": _("This MARC record (“{value}”) has no id: no control number (001), no Koha record number "
                        "(999$c, 090$c) and no barcode (952$p)."),
        "garbled_text": _("This MARC record's text is in neither UTF-8 nor MARC-8 (a Windows code page such as "
                          "CP1251 or GBK?), so its title would be garbled: “{value}”. Export the file again as "
                          "MARC 21 in UTF-8."),
        "isbn_in_catalogue": _("Possible duplicate: the catalogue already has ISBN {value} as book {other}."),
    }
    value = problem.value
    if problem.code == "missing_column":
        value = field_names().get(value, value)
    elif problem.code == "unreadable_record":
        value = _record_faults().get(value, _record_faults()["other"])
    return words.get(problem.code, problem.code).format(value=value, other=problem.other)


def _record_faults() -> dict[str, str]:
    """Why a MARC record could not be read (``central.reference_files._MARC_REASONS``)."""
    return {"leader": _("its leader is damaged"), "truncated": _("it is cut short"),
            "directory": _("its directory does not match its fields"), "no_fields": _("it has no fields"),
            "other": _("it is damaged")}


def _unreadable_text(code: str) -> str:
    return {
        "old_excel": _("This is an old Excel file (.xls): save it as .xlsx or CSV and upload it again."),
        "marc_is_books": _("A MARC file holds books: upload it as a catalogue."),
        "encoding": _("The file's text could not be read: save it as CSV UTF-8 or as .xlsx."),
        "csv": _("The file could not be read as CSV."),
        "xlsx": _("The file could not be read as an Excel workbook (.xlsx)."),
        "xlsx_too_big": _("This workbook unpacks to more than the server reads (at most {cells} cells, {row_cells} "
                          "in one row, {unpacked} MB unpacked). Keep only the columns and rows of the roster or "
                          "catalogue, or save it as CSV, and upload it again."),
        "marc": _("The file could not be read as MARC records."),
        "empty": _("The file is empty."),
        "too_large": _("The file is larger than {size} MB. Split it into smaller files and upload them one by "
                       "one."),
        "no_file": _("Choose a file to upload."),
    }.get(code, code).format(size=MAX_UPLOAD_BYTES // (1024 * 1024), cells=f"{MAX_XLSX_CELLS:,}",
                             row_cells=f"{MAX_XLSX_ROW_CELLS:,}", unpacked=MAX_XLSX_UNPACKED // (1024 * 1024))


def _refusal_text(code: str) -> str:
    return {
        "errors": _("Nothing was imported: the file has errors. Fix them in the file and upload it again."),
        "duplicates": _("Check the possible duplicates and tick the box to say they are further copies."),
        "gone": _("This upload is no longer waiting (confirmed, cancelled or older than a day)."),
        "not_yours": _("Only the librarian who uploaded this file can confirm or cancel it."),
    }[code]


# --- the database side ----------------------------------------------------------------------------


def stage(store: db.Store, who: str, kind: str, filename: str, staged: Staged) -> str:
    """Keep a read upload for its preview (and forget those older than a day)."""
    token = secrets.token_urlsafe(24)
    at = db.now()
    with store.writing() as conn:
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.created_at < at - KEPT_FOR))
        conn.execute(db.staged_imports.insert().values(token=token, who=who, kind=kind, filename=filename[:255],
                                                       data=msgspec.json.encode(staged), created_at=at))
    return token


def _staged_row(conn, token: str):
    row = conn.execute(select(db.staged_imports).where(db.staged_imports.c.token == token[:64])).first()
    if row is None or row.created_at < db.now() - KEPT_FOR:
        return None
    return row


def _current(conn, kind: str) -> dict[str, dict[str, Any]]:
    """The live records (not removed) of the roster or the catalogue, by id."""
    table, key, _record = _TABLES[kind]
    return {row[0]: json.loads(row.data) for row in
            conn.execute(select(table.c[key], table.c.data).where(table.c.removed.is_(False)))}


def _cards(conn, kind: str) -> dict[str, dict[str, Any]]:
    """The live cards by id, for a roster (whose card column they are checked against)."""
    if kind != ROSTER:
        return {}
    c = db.cards.c
    return {row.card_id: json.loads(row.data) for row in
            conn.execute(select(c.card_id, c.data).where(c.removed.is_(False)))}


def _compare(conn, kind: str, staged: Staged) -> Preview:
    return compare(kind, staged.rows, _current(conn, kind), _cards(conn, kind))


def preview(store: db.Store, token: str) -> tuple[Any, Staged, Preview] | None:
    """The staged upload, what it holds and what it would change now (None: not waiting)."""
    with store.reading() as conn:
        row = _staged_row(conn, token)
        if row is None:
            return None
        staged = msgspec.json.decode(row.data, type=Staged)
        return row, staged, _compare(conn, row.kind, staged)


def waiting(store: db.Store) -> Sequence[Any]:
    with store.reading() as conn:
        return conn.execute(select(db.staged_imports.c.token, db.staged_imports.c.who, db.staged_imports.c.kind,
                                   db.staged_imports.c.filename, db.staged_imports.c.created_at)
                            .where(db.staged_imports.c.created_at >= db.now() - KEPT_FOR)
                            .order_by(db.staged_imports.c.created_at.desc())).all()


def recent(store: db.Store, limit: int = 20) -> list[Any]:
    """The imports confirmed lately, from the audit log."""
    a = db.audit_log.c
    with store.reading() as conn:
        rows = conn.execute(select(a.at, a.who, a.action, a.target, a.detail)
                            .where(a.action.in_([f"import.{kind}" for kind in KINDS]))
                            .order_by(a.audit_id.desc()).limit(limit)).all()
    return [(row, json.loads(row.detail)) for row in rows]


def confirm(store: db.Store, token: str, who: str, duplicates_checked: bool) -> dict[str, Any]:
    """Apply a staged upload, all of it in one transaction: every added or changed record
    and every card given under one new revision (what kiosks pull next), an audit record,
    the staged row gone."""
    with store.writing() as conn:
        row = _staged_row(conn, token)
        if row is None:
            raise Refused("gone")
        if row.who != who:
            raise Refused("not_yours")
        staged = msgspec.json.decode(row.data, type=Staged)
        found = _compare(conn, row.kind, staged)
        if staged.problems or found.problems:
            raise Refused("errors")
        if found.duplicates and not duplicates_checked:
            raise Refused("duplicates")
        table, key, record_type = _TABLES[row.kind]
        rev = next_revision(conn) if found.records or found.cards else None
        if found.records:
            upsert(conn, table, [key], [
                {key: record[key], "data": msgspec.json.encode(msgspec.convert(record, record_type)).decode("utf-8"),
                 "rev": rev, "removed": False} for record in found.records])
        if found.cards:
            upsert(conn, db.cards, ["card_id"], [
                {"card_id": card.card_id, "patron_id": card.patron_id,
                 "data": msgspec.json.encode(CardRecord(card.card_id, card.patron_id)).decode("utf-8"),
                 "rev": rev, "removed": False} for card in found.cards])
        detail = {"kind": row.kind, "rows": staged.read, "added": len(found.added),
                  "changed": len(found.changed), "unchanged": found.unchanged,
                  "possible_duplicates": len(found.duplicates)}
        if found.cards:
            detail["cards_given"] = {card.card_id: card.patron_id for card in found.cards}
        conn.execute(db.audit_log.insert().values(at=db.now(), who=who, action=f"import.{row.kind}",
                                                  target=row.filename[:120],
                                                  detail=json.dumps(detail, ensure_ascii=False)))
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.token == row.token))
    return detail


def cancel(store: db.Store, token: str, who: str) -> None:
    with store.writing() as conn:
        row = _staged_row(conn, token)
        if row is None:
            raise Refused("gone")
        if row.who != who:
            raise Refused("not_yours")
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.token == row.token))


def read_upload(kind: str, filename: str, data: bytes) -> Staged:
    reading = read(kind, filename, data)
    return Staged(reading.rows, reading.problems, reading.ignored, reading.read)


# --- the pages ------------------------------------------------------------------------------------


async def _multipart(site: Site, request: Request) -> Response | tuple[auth.Session, dict[str, Any] | str]:
    """An upload form: signed in, multipart, the session's form token. Returns a refusal,
    or the librarian and either the fields (the file's bytes under ``file``) or the code of
    what is wrong with the file."""
    who = await site.session(request)
    if who is None or request.headers.get("content-type", "").split(";")[0].strip() != "multipart/form-data":
        return site.refused(request, 403)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_UPLOAD_BYTES + _FRAMING_BYTES:
            chunks.append(chunk)
        elif size > _DRAIN_BYTES:
            break
    if size > MAX_UPLOAD_BYTES + _FRAMING_BYTES:
        return who, "too_large"

    async def body() -> AsyncGenerator[bytes, None]:
        yield b"".join(chunks)

    try:
        form = await MultiPartParser(request.headers, body(), max_files=1, max_fields=5).parse()
    except MultiPartException:
        return site.refused(request, 400)
    try:
        if not auth.same(str(form.get("csrf") or ""), who.csrf):
            return site.refused(request, 403)
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return who, "no_file"
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            return who, "too_large"
        if not data:
            return who, "empty"
        # the name is the browser's to give: PostgreSQL refuses a NUL in it (a 500), so no control characters
        filename = "".join(ch for ch in upload.filename if ch.isprintable())[:255] or "upload"
        return who, {"kind": str(form.get("kind") or ""), "filename": filename, "file": data}
    finally:
        await form.close()


def mount(site: Site) -> None:
    site.globals.update(problem_text=problem_text, field_names=field_names, value_text=value_text,
                        detail_fields={ROSTER: ("class_name", "role", "status"),
                                       CATALOGUE: ("author", "isbn13", "call_number", "item_type")})

    async def front(request: Request, who: auth.Session, status: int = 200, error: str = "") -> Response:
        staged = await site.run(waiting, site.store)
        done = await site.run(recent, site.store)
        return site.page(request, "data_in.html", status, who=who, waiting=staged, recent=done, error=error,
                         limit_mb=MAX_UPLOAD_BYTES // (1024 * 1024), applied=request.query_params.get("applied"))

    async def shown(request: Request, who: auth.Session, token: str, status: int = 200, error: str = "") -> Response:
        found = await site.run(preview, site.store, token)
        if found is None:
            return await front(request, who, 404, _refusal_text("gone"))
        row, staged, result = found
        errors = sorted(staged.problems + result.problems, key=lambda p: p.row)
        return site.page(request, "data_in_preview.html", status, who=who, staged=row, rows=staged.read,
                         ignored=staged.ignored, errors=errors, result=result, shown=SHOWN, error=error,
                         mine=row.who == who.name)

    @site.page_route("/data-in")
    async def data_in(request: Request, who: auth.Session) -> Response:
        return await front(request, who)

    @site.app.post(PREFIX + "/data-in/upload", include_in_schema=False)
    async def upload(request: Request) -> Response:
        done = await _multipart(site, request)
        if isinstance(done, Response):
            return done
        who, fields = done
        if isinstance(fields, str):
            return await front(request, who, 413 if fields == "too_large" else 422, _unreadable_text(fields))
        if fields["kind"] not in KINDS:
            return site.refused(request, 422)
        try:
            staged = await site.run(read_upload, fields["kind"], fields["filename"], fields["file"])
        except Unreadable as problem:
            code = str(problem)
            return await front(request, who, 413 if code == "xlsx_too_big" else 422, _unreadable_text(code))
        token = await site.run(stage, site.store, who.name, fields["kind"], fields["filename"], staged)
        return site.redirect(f"/data-in/{token}")

    @site.page_route("/data-in/{token}")
    async def staged_preview(request: Request, who: auth.Session, token: str) -> Response:
        return await shown(request, who, token)

    @site.form_route("/data-in/{token}/confirm")
    async def confirm_import(request: Request, who: auth.Session, fields: dict[str, str], token: str) -> Response:
        try:
            detail = await site.run(confirm, site.store, token, who.name, fields.get("duplicates_checked") == "yes")
        except Refused as refusal:
            code = str(refusal)
            status = {"gone": 404, "not_yours": 403, "errors": 409, "duplicates": 422}[code]
            if code == "gone":
                return await front(request, who, status, _refusal_text(code))
            return await shown(request, who, token, status, _refusal_text(code))
        return site.redirect(f"/data-in?applied={detail['kind']}")

    @site.form_route("/data-in/{token}/cancel")
    async def cancel_import(request: Request, who: auth.Session, _fields: dict[str, str], token: str) -> Response:
        try:
            await site.run(cancel, site.store, token, who.name)
        except Refused as refusal:
            code = str(refusal)
            if code == "gone":
                return await front(request, who, 404, _refusal_text(code))
            return await shown(request, who, token, 403, _refusal_text(code))
        return site.redirect("/data-in")
