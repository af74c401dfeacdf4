"""The librarian's dashboard, served by ``bookcorner central`` under /dashboard.

Server-side pages (Jinja2, autoescaped: a title or name holding HTML is shown as text),
no JavaScript. Every page needs a signed-in librarian (see ``auth``); every form that
changes something carries the session's form token. Words go through ``i18n`` (the
``central`` catalogue), in the language the librarian chose (English or Chinese).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

import i18n
from central import db
from central.dashboard import auth, exports, queries
from central.replay import CHANGES_ITEMS
from i18n import _

HERE = Path(__file__).parent
PREFIX = "/dashboard"
#: event types whose book or student a librarian may correct (those replay applies to an item)
CORRECTABLE = frozenset(str(t) for t in CHANGES_ITEMS)
LANGUAGE_COOKIE = "bc_lang"
MAX_FORM_BYTES = 16_384
CSS = (HERE / "static" / "dashboard.css").read_bytes()
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                   extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
_env.install_gettext_callables(gettext=lambda message: _(message),  # type: ignore[attr-defined]
                               ngettext=lambda s, p, n: _(s) if n == 1 else _(p), newstyle=True)


def _reason_text(code: str) -> str:
    words = {
        "unknown_event_type": _("The kiosk recorded something this server does not know"),
        "invalid_payload": _("The kiosk's record is incomplete"),
        "not_on_loan": _("A book was returned that was not on loan"),
        "loan_changed": _("The loan had changed elsewhere"),
        "older_than_item_change": _("Older than a later change to the book recorded elsewhere"),
        "journal_damage": _("The kiosk's journal was damaged"),
        "seq_conflict": _("Two different events with one sequence number"),
        "event_id_conflict": _("One event id used for two different events"),
        "events_missing": _("Events the kiosk lost"),
        "card_held_by_other": _("The card belongs to someone else"),
        "item_id_taken": _("The book's id is already used by another book"),
        "not_handled_here": _("The server does not apply this kind of event"),
    }
    return words.get(code, code)


def _fit_text(code: str) -> str:
    return {"nothing_corrected": _("name the right book or student"),
            "not_correctable": _("this kind of event cannot be corrected here"),
            "unknown_item": _("no book with that id in the catalogue"),
            "unknown_patron": _("no student with that id"),
            }.get(code) or _reason_text(code)


def _problem_text(code: str) -> str:
    return {"no_contact_today": _("no contact today"),
            "sequence_gap": _("events missing in its sequence")}.get(code, code)


def language_of(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    return "zh_CN" if accept.startswith("zh") else "en"


def mount(app: FastAPI, store: db.Store, version: str) -> None:
    zone = queries.local_zone()

    def page(request: Request, template: str, status: int = 200, **values) -> HTMLResponse:
        language = language_of(request)
        with i18n.in_language(language):
            html = _env.get_template(template).render(
                prefix=PREFIX, language=language, path=request.url.path, reason_text=_reason_text,
                problem_text=_problem_text, correctable=CORRECTABLE, local=lambda t: t.astimezone(zone) if t else None, **values)
        response = HTMLResponse(html, status, headers=_SECURITY_HEADERS)
        if request.query_params.get("lang") == language:
            response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, path=PREFIX, samesite="strict")
        return response

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    async def session(request: Request) -> auth.Session | None:
        return await run_in_threadpool(auth.session_of, store, request.cookies.get(auth.SESSION_COOKIE))

    def to_sign_in() -> Response:
        return RedirectResponse(f"{PREFIX}/sign-in", 303, headers=_SECURITY_HEADERS)

    def refused(request: Request, status: int = 403) -> HTMLResponse:
        return page(request, "refused.html", status)

    async def form(request: Request) -> dict[str, str] | None:
        """The posted form (urlencoded), or None when it is not one."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return None
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return None
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            return None
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20))
        except (UnicodeDecodeError, ValueError):
            return None

    async def checked(request: Request) -> tuple[auth.Session, dict[str, str]] | Response:
        """A state-changing request: signed in, a form, and the session's form token."""
        who = await session(request)
        if who is None:
            return refused(request, 403)
        fields = await form(request)
        if fields is None or not auth.same(fields.get("csrf"), who.csrf):
            return refused(request, 403)
        return who, fields

    def period(request: Request) -> tuple[date, date] | None:
        today = db.now().astimezone(zone).date()
        try:
            start = date.fromisoformat(request.query_params.get("from") or today.isoformat())
            end = date.fromisoformat(request.query_params.get("to") or start.isoformat())
        except ValueError:
            return None
        if end < start or (end - start) > timedelta(days=3660):
            return None
        return start, end

    @app.get(PREFIX + "/static/dashboard.css", include_in_schema=False)
    async def css() -> Response:
        return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600",
                                                             "X-Content-Type-Options": "nosniff"})

    @app.get(PREFIX + "/sign-in", include_in_schema=False)
    async def sign_in_form(request: Request) -> Response:
        token = auth.new_secret()
        response = page(request, "sign_in.html", csrf=token, failed=False)
        response.set_cookie(auth.SIGN_IN_COOKIE, token, path=PREFIX, httponly=True, samesite="strict",
                            secure=secure(request), max_age=3600)
        return response

    @app.post(PREFIX + "/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        fields = await form(request)
        if fields is None or not auth.same(fields.get("csrf"), request.cookies.get(auth.SIGN_IN_COOKIE)):
            return refused(request, 403)
        secret = await run_in_threadpool(auth.sign_in, store, fields.get("name", "").strip(),
                                         fields.get("credential", "").strip())
        if secret is None:
            return page(request, "sign_in.html", 401, csrf=request.cookies.get(auth.SIGN_IN_COOKIE), failed=True)
        response = RedirectResponse(f"{PREFIX}/end-of-day", 303, headers=_SECURITY_HEADERS)
        response.set_cookie(auth.SESSION_COOKIE, secret, path=PREFIX, httponly=True, samesite="strict",
                            secure=secure(request), max_age=auth.SESSION_HOURS * 3600)
        response.delete_cookie(auth.SIGN_IN_COOKIE, path=PREFIX)
        return response

    @app.post(PREFIX + "/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        done = await checked(request)
        if isinstance(done, Response):
            return done
        await run_in_threadpool(auth.sign_out, store, done[0])
        response = to_sign_in()
        response.delete_cookie(auth.SESSION_COOKIE, path=PREFIX)
        return response

    @app.get(PREFIX, include_in_schema=False)
    @app.get(PREFIX + "/", include_in_schema=False)
    async def home(request: Request) -> Response:
        if await session(request) is None:
            return to_sign_in()
        return RedirectResponse(f"{PREFIX}/end-of-day", 303, headers=_SECURITY_HEADERS)

    @app.get(PREFIX + "/end-of-day", include_in_schema=False)
    async def end_of_day(request: Request) -> Response:
        who = await session(request)
        if who is None:
            return to_sign_in()
        today = db.now().astimezone(zone).date()
        corners, movements = await run_in_threadpool(queries.end_of_day, store, today, zone)
        return page(request, "end_of_day.html", who=who, today=today, corners=corners, movements=movements,
                    loans=sum(m.kind == queries.LOANS for m in movements),
                    returns=sum(m.kind == queries.RETURNS for m in movements),
                    all_in=all(c.all_in for c in corners))

    @app.get(PREFIX + "/reviews", include_in_schema=False)
    async def review_queue(request: Request) -> Response:
        who = await session(request)
        if who is None:
            return to_sign_in()
        waiting = await run_in_threadpool(queries.reviews, store)
        decided = await run_in_threadpool(lambda: queries.reviews(store, resolved=True, limit=50))
        return page(request, "reviews.html", who=who, waiting=waiting, decided=decided,
                    message=request.query_params.get("done"))

    @app.post(PREFIX + "/reviews/{review_id}", include_in_schema=False)
    async def decide(request: Request, review_id: int) -> Response:
        done = await checked(request)
        if isinstance(done, Response):
            return done
        who, fields = done
        decision, note = fields.get("decision", ""), fields.get("note", "").strip()[:2000]
        if decision not in queries.DECISIONS or (decision == "dismiss" and not note):
            waiting = await run_in_threadpool(queries.reviews, store)
            return page(request, "reviews.html", 422, who=who, waiting=waiting, decided=[],
                        error=_("Dismissing needs a note saying why."))
        try:
            if decision == "correct":
                await run_in_threadpool(lambda: queries.correct(
                    store, review_id, who.name, note, item_id=fields.get("item_id", "").strip()[:80],
                    patron_id=fields.get("patron_id", "").strip()[:80]))
            else:
                await run_in_threadpool(queries.decide, store, review_id, decision, note, who.name)
        except queries.DoesNotFit as problem:
            waiting = await run_in_threadpool(queries.reviews, store)
            return page(request, "reviews.html", 422, who=who, waiting=waiting, decided=[],
                        error=_("The correction does not fit: {reason}").format(reason=_fit_text(str(problem))))
        except queries.AlreadyDecided:
            waiting = await run_in_threadpool(queries.reviews, store)
            return page(request, "reviews.html", 409, who=who, waiting=waiting, decided=[],
                        error=_("That item was already decided (or does not exist)."))
        return RedirectResponse(f"{PREFIX}/reviews?done={review_id}", 303, headers=_SECURITY_HEADERS)

    @app.get(PREFIX + "/audit", include_in_schema=False)
    async def audit_page(request: Request) -> Response:
        who = await session(request)
        if who is None:
            return to_sign_in()
        rows = await run_in_threadpool(queries.audit, store, 200)
        return page(request, "audit.html", who=who, rows=rows)

    @app.get(PREFIX + "/exports", include_in_schema=False)
    async def export_page(request: Request) -> Response:
        who = await session(request)
        if who is None:
            return to_sign_in()
        today = db.now().astimezone(zone).date()
        return page(request, "exports.html", who=who, today=today, week_ago=today - timedelta(days=6))

    async def download(request: Request, kind: str) -> Response:
        who = await session(request)
        if who is None:
            return to_sign_in()
        chosen = period(request)
        if chosen is None:
            return page(request, "refused.html", 422, error=_("Choose a valid period (from, to)."))
        start, end = chosen
        if kind == "csv":
            body = await run_in_threadpool(exports.events_csv, store, start, end, zone)
            name, media = f"bookcorner-events-{start}-{end}.csv", "text/csv; charset=utf-8"
        else:
            body = await run_in_threadpool(exports.koc, store, start, end, zone, version)
            name, media = f"bookcorner-{start}-{end}.koc", "text/plain; charset=utf-8"
        await run_in_threadpool(queries.record, store, who.name, f"export.{kind}", name,
                                {"from": start.isoformat(), "to": end.isoformat()})
        return Response(body.encode("utf-8"), media_type=media, headers={
            **_SECURITY_HEADERS, "Content-Disposition": f"attachment; filename=\"{quote(name)}\""})

    @app.get(PREFIX + "/exports/events.csv", include_in_schema=False)
    async def export_csv(request: Request) -> Response:
        return await download(request, "csv")

    @app.get(PREFIX + "/exports/circulation.koc", include_in_schema=False)
    async def export_koc(request: Request) -> Response:
        return await download(request, "koc")


#: every dashboard page and download a signed-in librarian can open (for the security tests)
PAGES = ("", "/", "/end-of-day", "/reviews", "/audit", "/exports", "/exports/events.csv", "/exports/circulation.koc")
#: open to anyone: the sign-in form and the style sheet
PUBLIC = ("/sign-in", "/static/dashboard.css")
#: every state-changing form's address
FORMS = ("/sign-out", "/reviews/1")
