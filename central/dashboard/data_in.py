"""Data in as pages: the librarian uploads a roster or a catalogue, sees what it would
change, then confirms all of it or cancels (``central.services.data_in`` stages, compares
and imports). The upload is a multipart form read here, within its limits, and checked
against the session's form token like every other form.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Answered, Site
from bookcorner.central.reference_files import (
    CATALOGUE,
    KINDS,
    MAX_XLSX_CELLS,
    MAX_XLSX_ROW_CELLS,
    MAX_XLSX_UNPACKED,
    ROSTER,
    Problem,
    Unreadable,
)
from bookcorner.central.services import data_in, sessions
from bookcorner.central.services.data_in import Refused
from bookcorner.i18n import _

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: room for the form's other fields and the multipart framing around the file
_FRAMING_BYTES = 64 * 1024
#: a larger upload is read to its end (and dropped) so the browser gets the answer
_DRAIN_BYTES = 64 * 1024 * 1024
#: how many added or changed rows a preview lists (all are counted)
SHOWN = 300
PAGES = ("/data-in", "/data-in/sample-token")
FORMS = ("/data-in/upload", "/data-in/sample-token/confirm", "/data-in/sample-token/cancel")


def field_names() -> dict[str, str]:
    return {"patron_id": _("student id"), "name": _("name"), "class_name": _("class"), "role": _("role"),
            "status": _("status"), "item_id": _("book id"), "barcode": _("barcode"), "title": _("title"),
            "author": _("author"), "isbn13": "ISBN-13", "isbn10": "ISBN-10", "call_number": _("call number"),
            "item_type": _("item type"), "home_corner": _("home corner"), "card_id": _("card"),
            "teacher_email": _("teacher's e-mail")}


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
        "bad_email": _("“{value}” is not an e-mail address."),
        "email_without_class": _("The teacher's address {value} needs a class on its row."),
        "two_emails": _("Another address for this class's teacher than on row {other}: one class, one address."),
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


#: what the data-in templates call
GLOBALS = {"problem_text": problem_text, "field_names": field_names, "value_text": value_text,
           "detail_fields": {ROSTER: ("class_name", "role", "status"),
                             CATALOGUE: ("author", "isbn13", "call_number", "item_type")}}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


async def _upload_body(request: Request) -> bytes | None:
    """The upload's bytes, or None when it is too large (read to its end all the same, up to a point)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_UPLOAD_BYTES + _FRAMING_BYTES:
            chunks.append(chunk)
        elif size > _DRAIN_BYTES:
            break
    return None if size > MAX_UPLOAD_BYTES + _FRAMING_BYTES else b"".join(chunks)


async def multipart_upload(site: Site, request: Request, who: sessions.Session) -> dict[str, Any] | str:
    """An upload form of a signed-in librarian: multipart, the session's form token. Raises
    a refusal, or returns either the fields (the file's bytes under ``file``) or the code of
    what is wrong with the file. The form's other text fields come as they are (the
    reading lists' name, kind, grades and class)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "multipart/form-data":
        raise Answered(site.refused(request, 403))
    raw = await _upload_body(request)
    if raw is None:
        return "too_large"

    async def body() -> AsyncGenerator[bytes, None]:
        yield raw

    try:
        form = await MultiPartParser(request.headers, body(), max_files=1, max_fields=8).parse()
    except MultiPartException:
        raise Answered(site.refused(request, 400)) from None
    try:
        if not sessions.same(str(form.get("csrf") or ""), who.csrf):
            raise Answered(site.refused(request, 403))
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return "no_file"
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            return "too_large"
        if not data:
            return "empty"
        # the name is the browser's to give: PostgreSQL refuses a NUL in it (a 500), so no control characters
        filename = "".join(ch for ch in upload.filename if ch.isprintable())[:255] or "upload"
        texts = {name: value for name, value in form.multi_items() if isinstance(value, str) and name != "csrf"}
        return {**texts, "kind": str(form.get("kind") or ""), "filename": filename, "file": data}
    finally:
        await form.close()


async def _front(request: Request, who: sessions.Session, site: Site, status: int = 200, error: str = "") -> Response:
    staged = await site.run(data_in.waiting, site.store)
    done = await site.run(data_in.recent, site.store)
    return site.page(request, "data_in.html", status, who=who, waiting=staged, recent=done, error=error,
                     limit_mb=MAX_UPLOAD_BYTES // (1024 * 1024), applied=request.query_params.get("applied"))


async def _shown(request: Request, who: sessions.Session, site: Site, token: str, status: int = 200,
                 error: str = "") -> Response:
    found = await site.run(data_in.preview, site.store, token)
    if found is None:
        return await _front(request, who, site, 404, _refusal_text("gone"))
    row, staged, result = found
    errors = sorted(staged.problems + result.problems, key=lambda p: p.row)
    return site.page(request, "data_in_preview.html", status, who=who, staged=row, rows=staged.read,
                     ignored=staged.ignored, errors=errors, result=result, shown=SHOWN, error=error,
                     mine=row.who == who.name)


@router.get("/data-in")
async def front(request: Request, who: Librarian, site: Dash) -> Response:
    return await _front(request, who, site)


@router.post("/data-in/upload")
async def upload(request: Request, who: Librarian, site: Dash) -> Response:
    fields = await multipart_upload(site, request, who)
    if isinstance(fields, str):
        return await _front(request, who, site, 413 if fields == "too_large" else 422, _unreadable_text(fields))
    if fields["kind"] not in KINDS:
        return site.refused(request, 422)
    try:
        staged = await site.run(data_in.read_upload, fields["kind"], fields["filename"], fields["file"])
    except Unreadable as problem:
        code = str(problem)
        return await _front(request, who, site, 413 if code == "xlsx_too_big" else 422, _unreadable_text(code))
    token = await site.run(data_in.stage, site.store, who.name, fields["kind"], fields["filename"], staged)
    return site.redirect(f"/data-in/{token}")


@router.get("/data-in/{token}")
async def staged_preview(request: Request, who: Librarian, site: Dash, token: str) -> Response:
    return await _shown(request, who, site, token)


@router.post("/data-in/{token}/confirm")
async def confirm_import(request: Request, who: Librarian, fields: Form, site: Dash, token: str) -> Response:
    try:
        detail = await site.run(data_in.confirm, site.store, token, who.name,
                                fields.get("duplicates_checked") == "yes")
    except Refused as refusal:
        code = str(refusal)
        status = {"gone": 404, "not_yours": 403, "errors": 409, "duplicates": 422}[code]
        if code == "gone":
            return await _front(request, who, site, status, _refusal_text(code))
        return await _shown(request, who, site, token, status, _refusal_text(code))
    return site.redirect(f"/data-in?applied={detail['kind']}")


@router.post("/data-in/{token}/cancel")
async def cancel_import(request: Request, who: Librarian, _fields: Form, site: Dash, token: str) -> Response:
    try:
        await site.run(data_in.cancel, site.store, token, who.name)
    except Refused as refusal:
        code = str(refusal)
        if code == "gone":
            return await _front(request, who, site, 404, _refusal_text(code))
        return await _shown(request, who, site, token, 403, _refusal_text(code))
    return site.redirect("/data-in")
