"""Reading lists: the school's recommended list for a grade, a festival's theme list, a
teacher's list for a class. The librarian uploads a CSV or XLSX of ISBNs or titles, sees
which rows matched a book and which did not (and why), then saves the list; the kiosks
pull the lists with the reference data and suggest from them offline.
``central.services.reading`` reads, matches, stores and publishes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central import db
from bookcorner.central.dashboard.data_in import MAX_UPLOAD_BYTES, _unreadable_text, multipart_upload
from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.services import reading, sessions
from bookcorner.i18n import N_, _

PAGES = ("/reading", "/reading/preview/sample", "/reading/list/sample")
FORMS = ("/reading/upload", "/reading/preview/sample/confirm", "/reading/preview/sample/cancel",
         "/reading/list/sample/delete")
GLOBALS: dict[str, object] = {}

router = APIRouter(prefix=PREFIX, include_in_schema=False)

KIND_WORDS = {"grade": N_("The school's list for a grade"), "festival": N_("A festival's theme list"),
              "class": N_("A teacher's list for a class")}
PROBLEM_WORDS = {
    "isbn_checksum": N_("The ISBN's last digit does not fit: check it against the book's back cover."),
    "isbn_format": N_("This is not an ISBN (13 digits, or 10 with an X at the end)."),
    "no_book": N_("No book in the catalogue has this ISBN or title: catalogue the book first, or correct the row."),
    "title_ambiguous": N_("Several books have this title: give the ISBN to say which."),
    "empty": N_("This row has no ISBN and no title."),
}
REFUSAL_WORDS = {
    "name": N_("Give the list a name (at most 200 characters)."),
    "kind": N_("Choose what kind of list it is."),
    "grades": N_("Grades are numbers from 1 to 12, separated by commas."),
    "class_name": N_("A teacher's list needs the class it is for."),
    "no_books": N_("No row of the file matched a book in the catalogue: nothing to save."),
    "gone": N_("This upload is no longer waiting (saved, cancelled, or older than a day): upload the file again."),
    "not_yours": N_("Another librarian uploaded this list: only they can save it."),
    "too_many_books": N_("A list holds at most 500 books: split the file."),
}


def words(code: str, table: dict[str, str]) -> str:
    return _(table[code]) if code in table else code


def _grades(text: str) -> tuple[int, ...] | None:
    parts = [p for p in text.replace("，", ",").replace(" ", ",").split(",") if p]
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


async def _front(request: Request, who: sessions.Session, site: Site, status: int = 200, error: str = "",
                 form: dict | None = None) -> Response:
    kept = await site.run(reading.lists, site.store)
    return site.page(request, "reading.html", status, who=who, lists=kept, error=error, kinds=KIND_WORDS,
                     form=form or {}, saved=request.query_params.get("saved"),
                     limit_mb=MAX_UPLOAD_BYTES // (1024 * 1024))


@router.get("/reading")
async def front(request: Request, who: Librarian, site: Dash) -> Response:
    return await _front(request, who, site)


@router.post("/reading/upload")
async def upload(request: Request, who: Librarian, site: Dash) -> Response:
    fields = await multipart_upload(site, request, who)
    if isinstance(fields, str):
        return await _front(request, who, site, 413 if fields == "too_large" else 422, _unreadable_text(fields))
    grades = _grades(str(fields.get("grades", "")))
    meta = reading.ListMeta(str(fields.get("name", "")), fields["kind"], grades or (),
                            str(fields.get("class_name", "")).strip() or None)
    try:
        if grades is None:
            raise reading.ListRefused("grades")
        reading.check_meta(meta)
    except reading.ListRefused as refusal:
        return await _front(request, who, site, 422, words(refusal.code, REFUSAL_WORDS), fields)
    token = await site.run(_read_and_stage, site.store, who.name, meta, fields["filename"], fields["file"])
    if token.startswith("!"):
        code = token[1:]
        text = words(code, REFUSAL_WORDS) if code in REFUSAL_WORDS else _unreadable_text(code)
        return await _front(request, who, site, 422, text, fields)
    return site.redirect(f"/reading/preview/{token}")


def _read_and_stage(store: db.Store, who: str, meta: reading.ListMeta, filename: str, data: bytes) -> str:
    with store.reading() as conn:
        books = reading.catalogue(conn)
    preview = reading.read_list(filename, data, books)
    if preview.unreadable:
        return "!" + preview.unreadable
    return reading.stage(store, who, meta, filename, preview, db.now())


async def _preview(request: Request, who: sessions.Session, site: Site, token: str, status: int = 200,
                   error: str = "") -> Response:
    found = await site.run(reading.staged, site.store, token)
    if found is None:
        return await _front(request, who, site, 404, words("gone", REFUSAL_WORDS))
    uploader, filename, meta, preview = found
    return site.page(request, "reading_preview.html", status, who=who, token=token, filename=filename, meta=meta,
                     preview=preview, kinds=KIND_WORDS, problems=PROBLEM_WORDS, error=error,
                     mine=uploader == who.name)


@router.get("/reading/preview/{token}")
async def preview_page(request: Request, who: Librarian, site: Dash, token: str) -> Response:
    return await _preview(request, who, site, token)


@router.post("/reading/preview/{token}/confirm")
async def confirm(request: Request, who: Librarian, _fields: Form, site: Dash, token: str) -> Response:
    try:
        await site.run(reading.confirm, site.store, token, who.name, db.now())
    except reading.ListRefused as refusal:
        status = {"gone": 404, "not_yours": 403}.get(refusal.code, 409)
        if refusal.code == "gone":
            return await _front(request, who, site, status, words(refusal.code, REFUSAL_WORDS))
        return await _preview(request, who, site, token, status, words(refusal.code, REFUSAL_WORDS))
    return site.redirect("/reading?saved=1")


@router.post("/reading/preview/{token}/cancel")
async def cancel(request: Request, who: Librarian, _fields: Form, site: Dash, token: str) -> Response:
    await site.run(reading.forget, site.store, token)
    return site.redirect("/reading")


@router.get("/reading/list/{list_id}")
async def list_page(request: Request, who: Librarian, site: Dash, list_id: str) -> Response:
    found = await site.run(reading.list_books, site.store, list_id)
    if found is None:
        return site.refused(request, 404, error=_("There is no such reading list."))
    meta, rows = found
    return site.page(request, "reading_list.html", who=who, list_id=list_id, meta=meta, rows=rows, kinds=KIND_WORDS,
                     problems=PROBLEM_WORDS)


@router.post("/reading/list/{list_id}/delete")
async def delete(request: Request, who: Librarian, _fields: Form, site: Dash, list_id: str) -> Response:
    if not await site.run(reading.delete_list, site.store, list_id, who.name, db.now()):
        return site.refused(request, 404, error=_("There is no such reading list."))
    return site.redirect("/reading?saved=1")
