"""Reading lists: the school's recommended list for a grade, a festival's theme list, a
teacher's list for a class. The librarian uploads a CSV or XLSX of ISBNs or titles, sees
which rows matched a book and which did not (and why), then saves the list; the kiosks
pull the lists with the reference data and suggest from them offline.
``central.services.reading`` reads, matches, stores and publishes.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central import db
from bookcorner.central.dashboard.data_in import MAX_UPLOAD_BYTES, _unreadable_text, multipart_upload
from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.services import challenges, reading, registers, sessions
from bookcorner.i18n import N_, _

PAGES: tuple[str, ...] = ("/reading", "/reading/preview/sample", "/reading/list/sample")
FORMS: tuple[str, ...] = ("/reading/upload", "/reading/preview/sample/confirm", "/reading/preview/sample/cancel",
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


# -- reading challenges -----------------------------------------------------------------------

CHALLENGE_REFUSALS = {
    "name": N_("Give the challenge a name (at most 200 characters)."),
    "period": N_("Give the first and the last day of the challenge (the last on or after the first)."),
    "goal": N_("The goal is a number of books from 1 to 1000."),
    "goal_categories": N_("A goal of categories is at most 26 (the main classes of the Chinese Library Classification)."),
    "classes": N_("Class names are separated by commas."),
    "gone": N_("There is no such reading challenge."),
    "star_at_least": N_("A reading star's least number of books is a whole number from the goal up to 1000 "
                        "(empty: the goal)."),
    "stars_per_class": N_("The most reading stars per class is a whole number from 1 to 1000 (empty: no limit)."),
    "class_share": N_("A book-loving class's share of students at the goal is a percentage from 1 to 100 "
                      "(empty: no class award)."),
    "class_average": N_("A book-loving class's books per student on average is a whole number from 1 to 1000 "
                        "(empty: no minimum)."),
    "class_average_alone": N_("Give the share of students at the goal too: the average alone makes no "
                              "book-loving class."),
}
#: the award rules' form fields (the refusal code of each is its name)
RULE_FIELDS = ("star_at_least", "stars_per_class", "class_share", "class_average")
STATE_WORDS = {"coming": N_("Coming"), "running": N_("Running"), "over": N_("Over")}

PAGES += ("/reading/challenges", "/reading/challenge/sample", "/reading/challenge/sample/ranking",
          "/reading/challenge/sample/certificates.pdf")
FORMS += ("/reading/challenges/new", "/reading/challenge/sample/save", "/reading/challenge/sample/end")


def _challenge_meta(fields: dict[str, str]) -> challenges.ChallengeMeta:
    """The form's challenge (raises ChallengeRefused for a field that cannot be read)."""
    try:
        starts_on = date.fromisoformat(fields.get("starts_on", "").strip())
        ends_on = date.fromisoformat(fields.get("ends_on", "").strip())
    except ValueError:
        raise challenges.ChallengeRefused("period") from None
    goal_text = fields.get("goal", "").strip()
    if not goal_text.isdigit() or len(goal_text) > 5:
        raise challenges.ChallengeRefused("goal")
    classes = tuple(c.strip() for c in fields.get("class_names", "").replace("，", ",").split(",") if c.strip())
    rules: list[int | None] = []
    for name in RULE_FIELDS:
        text = fields.get(name, "").strip().removesuffix("%").strip()
        if text and (not text.isdigit() or len(text) > 5):
            raise challenges.ChallengeRefused(name)
        rules.append(int(text) if text else None)
    meta = challenges.ChallengeMeta(fields.get("name", ""), starts_on, ends_on, int(goal_text),
                                    fields.get("by") == "categories", classes, challenges.AwardRules(*rules))
    challenges.check(meta)
    return meta


def _form_of(meta: challenges.ChallengeMeta) -> dict[str, str]:
    return {"name": meta.name, "starts_on": meta.starts_on.isoformat(), "ends_on": meta.ends_on.isoformat(),
            "goal": str(meta.goal), "by": "categories" if meta.by_category else "books",
            "class_names": ", ".join(meta.class_names),
            **{name: "" if value is None else str(value)
               for name, value in zip(RULE_FIELDS, (meta.rules.star_at_least, meta.rules.stars_per_class,
                                                    meta.rules.class_share, meta.rules.class_average), strict=True)}}


def _refused_form(fields: dict[str, str], code: str) -> dict[str, str]:
    """The form as sent, with the field the refusal is about (its message shown next to it)."""
    field = "class_share" if code == "class_average_alone" else code
    return {**fields, "_invalid": field} if field in RULE_FIELDS else fields


async def _challenges_page(request: Request, who: sessions.Session, site: Site, status: int = 200,
                           error: str = "", form: dict | None = None) -> Response:
    kept = await site.run(challenges.challenges, site.store)
    today = await site.run(challenges.today, site.store, db.now())
    return site.page(request, "reading_challenges.html", status, who=who, challenges=kept, today=today,
                     states=STATE_WORDS, error=error, form=form or {}, saved=request.query_params.get("saved"))


@router.get("/reading/challenges")
async def challenges_page(request: Request, who: Librarian, site: Dash) -> Response:
    return await _challenges_page(request, who, site)


@router.post("/reading/challenges/new")
async def new_challenge(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    try:
        meta = _challenge_meta(fields)
        challenge_id = await site.run(challenges.save, site.store, meta, who.name, db.now())
    except challenges.ChallengeRefused as refusal:
        return await _challenges_page(request, who, site, 422, words(refusal.code, CHALLENGE_REFUSALS),
                                      _refused_form(fields, refusal.code))
    return site.redirect(f"/reading/challenge/{challenge_id}?saved=1")


async def _challenge_page(request: Request, who: sessions.Session, site: Site, challenge_id: str, status: int = 200,
                          error: str = "", form: dict | None = None) -> Response:
    found = await site.run(challenges.one, site.store, challenge_id)
    if found is None:
        return site.refused(request, 404, error=_("There is no such reading challenge."))
    today = await site.run(challenges.today, site.store, db.now())
    return site.page(request, "reading_challenge.html", status, who=who, c=found, today=today, states=STATE_WORDS,
                     error=error, form=form or _form_of(found.meta), saved=request.query_params.get("saved"))


@router.get("/reading/challenge/{challenge_id}")
async def challenge_page(request: Request, who: Librarian, site: Dash, challenge_id: str) -> Response:
    return await _challenge_page(request, who, site, challenge_id)


@router.post("/reading/challenge/{challenge_id}/save")
async def save_challenge(request: Request, who: Librarian, fields: Form, site: Dash, challenge_id: str) -> Response:
    try:
        meta = _challenge_meta(fields)
        await site.run(challenges.save, site.store, meta, who.name, db.now(), challenge_id)
    except challenges.ChallengeRefused as refusal:
        if refusal.code == "gone":
            return site.refused(request, 404, error=_("There is no such reading challenge."))
        return await _challenge_page(request, who, site, challenge_id, 422,
                                     words(refusal.code, CHALLENGE_REFUSALS), _refused_form(fields, refusal.code))
    return site.redirect(f"/reading/challenge/{challenge_id}?saved=1")


@router.post("/reading/challenge/{challenge_id}/end")
async def end_challenge(request: Request, who: Librarian, _fields: Form, site: Dash, challenge_id: str) -> Response:
    if not await site.run(challenges.end, site.store, challenge_id, who.name, db.now()):
        return site.refused(request, 404, error=_("There is no such reading challenge."))
    return site.redirect(f"/reading/challenge/{challenge_id}?saved=1")


@router.get("/reading/challenge/{challenge_id}/ranking")
async def ranking_page(request: Request, who: Librarian, site: Dash, challenge_id: str) -> Response:
    ranking = await site.run(challenges.ranking, site.store, challenge_id)
    if ranking is None:
        return site.refused(request, 404, error=_("There is no such reading challenge."))
    today = await site.run(challenges.today, site.store, db.now())
    return site.page(request, "reading_ranking.html", who=who, r=ranking, c=ranking.summary, today=today,
                     states=STATE_WORDS)


@router.get("/reading/challenge/{challenge_id}/certificates.pdf")
async def certificates(request: Request, who: Librarian, site: Dash, challenge_id: str) -> Response:
    """A certificate page for every reading star and every book-loving class, Chinese and English."""
    ranking = await site.run(challenges.ranking, site.store, challenge_id)
    if ranking is None:
        return site.refused(request, 404, error=_("There is no such reading challenge."))
    if not any(child.reached for child in ranking.children):
        return site.refused(request, 422, error=_("No student has reached the goal yet: no certificate to print."))
    if not ranking.stars and not ranking.book_loving:
        return site.refused(request, 422, error=_("No student or class has earned an award by the school's rules "
                                                  "yet: no certificate to print."))
    school = await site.run(registers.school_name, site.store)
    body = await site.run(challenges.certificates, ranking, school, site.today())
    return site.download(body, f"bookcorner-certificates-{challenge_id}.pdf", "application/pdf")
