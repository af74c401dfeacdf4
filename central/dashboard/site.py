"""What every dashboard page shares: the templates, the chosen language, the security
headers, errors as pages, downloads, and the session and form behind the dependencies
(``deps``: the signed-in librarian, the checked form).

Each area of the dashboard (``pages`` for end of day, reviews, exports and the audit log;
``reports``, ``registers``, ``data_in``, ``school``) is a module with an ``APIRouter``
(``router``), the template helpers it adds (``GLOBALS``) and the tuples ``PAGES`` (GET
addresses a signed-in librarian may open) and ``FORMS`` (state-changing POST addresses,
with sample values for path parameters); the security tests walk all of them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from bookcorner import i18n
from bookcorner.central import db
from bookcorner.central.schools import Schools, UnknownSchool, school_of_secret
from bookcorner.central.services import sessions
from bookcorner.central.services.reviews import FIRST_DAY, LAST_DAY
from bookcorner.central.zone import school_zone
from bookcorner.i18n import _, ngettext

HERE = Path(__file__).parent
CSS_PATH = HERE / "static" / "dashboard.css"
PREFIX = "/dashboard"
LANGUAGE_COOKIE = "bc_lang"
MAX_FORM_BYTES = 16_384
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: the largest id an address may name: the ids it names (reviews) are INTEGER columns, 32 bits
#: in PostgreSQL, which refuses a larger number outright (SQLite with an OverflowError)
LARGEST_ID = 2**31 - 1
#: control characters no field of the dashboard means (a tab, a newline kept): PostgreSQL's text
#: refuses a NUL outright (a 500), the XLSX downloads the rest
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
env.install_gettext_callables(gettext=lambda message: _(message),  # type: ignore[attr-defined]
                              ngettext=lambda s, p, n: ngettext(s, p, n), newstyle=True)


def language_of(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    return "zh_CN" if accept.startswith("zh") else "en"


class _InLanguage:
    """Every dashboard request answers in the librarian's language, words made in the
    handler (an error message) as much as the template's."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        with i18n.in_language(language_of(Request(scope))):
            await self.app(scope, receive, send)


class Answered(Exception):
    """A dependency's answer instead of the route's (to sign in, refused, an error page)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _answered(_request: Request, error: Exception) -> Response:
    assert isinstance(error, Answered)
    return error.response


class Site:
    """The dashboard being served: the ``store``, the server's ``version``, the school's ``zone``,
    the store the heavy ``reports`` read, and the ``globals`` every template sees (the areas' helpers)."""

    def __init__(self, store: db.Store, version: str, zone: tzinfo, reports: db.Store | None = None,
                 schools: Schools | None = None) -> None:
        self.store, self.version, self.zone = store, version, zone
        #: where the heavy reports read (a hot standby, ``Settings.report_database``; else ``store``)
        self.reports = reports or store
        #: values every template sees (areas may add their own helpers)
        self.globals: dict[str, Any] = {}
        #: the district's schools: each is served by a ``Site`` of its own (``for_request``)
        self.schools = schools or Schools(store, self.reports)
        self._sites: dict[str, Site] = {store.school: self}

    def for_school(self, slug: str) -> Site:
        """The dashboard as one school's librarians see it: that school's store, reports and time
        zone, with everything else shared. Raises UnknownSchool."""
        site = self._sites.get(slug)
        if site is None:
            store = self.schools.store(slug)
            site = copy.copy(self)
            site.store, site.reports = store, self.schools.reports(slug)
            site.zone = school_zone(store)
            site = self._sites.setdefault(slug, site)
        return site

    def for_request(self, request: Request) -> Site:
        """The school the request's session names (``central.schools``); a session that names no
        school, or one this server does not have, gets the implicit school's (where such a session
        is unknown, so the librarian is sent to sign in)."""
        slug = self.school_asked(request)
        try:
            return self.for_school(slug)
        except UnknownSchool:
            return self.for_school(self.store.school)

    def for_school_of(self, credential: str) -> Site:
        """The site of the school a credential names; the implicit school's when it names none
        this server has (the credential is then simply unknown there)."""
        try:
            return self.for_school(school_of_secret(credential)[0])
        except UnknownSchool:
            return self.for_school(self.store.school)

    @staticmethod
    def school_asked(request: Request) -> str:
        """The slug of the school the request's session cookie names ("" for none)."""
        return school_of_secret(request.cookies.get(sessions.SESSION_COOKIE) or "")[0]

    def known_site(self, request: Request) -> Site | None:
        """``for_request``'s answer when it needs no database (the school's site made already)."""
        return self._sites.get(self.school_asked(request))

    def install(self, app: FastAPI) -> None:
        """Serve this dashboard from ``app`` (its routers are included by ``central.dashboard``):
        pages in the librarian's language, errors as pages, the dependencies' answers."""
        app.state.dashboard = self
        app.add_middleware(_InLanguage)
        self._error_pages(app)
        app.add_exception_handler(Answered, _answered)

    # --- answering ---------------------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        language = language_of(request)
        with i18n.in_language(language):
            html = env.get_template(template).render(
                prefix=PREFIX, language=language, path=request.url.path,
                local=lambda t: t.astimezone(self.zone) if t else None, **self.globals, **values)
        response = HTMLResponse(html, status, headers=SECURITY_HEADERS)
        if request.query_params.get("lang") == language:
            response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, path=PREFIX, samesite="strict")
        return response

    def redirect(self, path: str) -> Response:
        """To another dashboard address (``path`` after the prefix), after a form."""
        return RedirectResponse(PREFIX + path, 303, headers=SECURITY_HEADERS)

    def to_sign_in(self) -> Response:
        return self.redirect("/sign-in")

    def refused(self, request: Request, status: int = 403, **values: Any) -> HTMLResponse:
        return self.page(request, "refused.html", status, **values)

    def download(self, body: bytes, name: str, media: str) -> Response:
        return Response(body, media_type=media, headers={
            **SECURITY_HEADERS, "Content-Disposition": f"attachment; filename=\"{quote(name)}\""})

    def _error_pages(self, app: FastAPI) -> None:
        """The dashboard's errors as pages in the librarian's language (an address that is no
        page, a method it does not take, a malformed path parameter, the database busy, a
        bug), where the API under /v1 answers JSON. The API's own handler still runs first
        (it logs a bug) and gives the status and headers (Allow, Retry-After)."""
        for kind, api in list(app.exception_handlers.items()):
            async def handler(request: Request, error: Exception, api: Callable[..., Any] = api) -> Response:
                answer = await api(request, error)
                path = request.url.path
                if not isinstance(answer, Response) or not (path == PREFIX or path.startswith(PREFIX + "/")):
                    return answer
                with i18n.in_language(language_of(request)):  # a bug's answer comes from outside _InLanguage
                    message = self.error_text(answer.status_code)
                page = self.page(request, "error.html", answer.status_code, message=message)
                for name in ("allow", "retry-after"):
                    if name in answer.headers:
                        page.headers[name] = answer.headers[name]
                return page
            app.add_exception_handler(kind, handler)

    @staticmethod
    def error_text(status: int) -> str:
        return {
            404: _("There is no such page. Use the links above to find the one you want."),
            405: _("This address does not take that kind of request: open it from the dashboard's own links "
                   "and forms."),
            422: _("This address holds something the dashboard cannot read: open it from the dashboard's own "
                   "links."),
            503: _("The database is busy or out of reach. Wait a moment and try again."),
        }.get(status, _("Something went wrong on the server; what happened is in its log. Try again, and if it "
                        "happens again, tell whoever looks after the server."))

    # --- who is asking -----------------------------------------------------------------------

    @staticmethod
    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    async def session(self, request: Request) -> sessions.Session | None:
        cookie = request.cookies.get(sessions.SESSION_COOKIE)
        slug, secret = school_of_secret(cookie or "")
        if slug != self.store.school:  # (another school's cookie, on a site that is not its school's)
            return None
        return await run_in_threadpool(sessions.session_of, self.store, secret)

    async def form(self, request: Request, max_fields: int = 20) -> dict[str, str] | None:
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
            fields = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
        except (UnicodeDecodeError, ValueError):
            return None
        return {CONTROL.sub("", name): CONTROL.sub("", value) for name, value in fields}

    def period(self, request: Request, default: tuple[date, date] | None = None) -> tuple[date, date] | None:
        """The ``from``/``to`` days asked for, or None when they make no sense; without
        ``from``: ``default`` (today when there is none)."""
        if default is not None and not request.query_params.get("from"):
            return default
        start = self.day(request, "from")
        end = self.day(request, "to", start) if start is not None else None
        if start is None or end is None or end < start or (end - start) > timedelta(days=3660):
            return None
        return start, end

    def day(self, request: Request, name: str, default: date | None = None) -> date | None:
        """The day the query parameter ``name`` gives (``default``, else today, without it),
        or None when it is no day between FIRST_DAY and LAST_DAY."""
        text = request.query_params.get(name)
        if not text:
            return default or self.today()
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return day if FIRST_DAY <= day <= LAST_DAY else None

    def today(self) -> date:
        return db.now().astimezone(self.zone).date()

    # --- running -----------------------------------------------------------------------------

    @staticmethod
    async def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Database work, off the event loop."""
        return await run_in_threadpool(function, *args, **kwargs)
