"""What every dashboard page shares: the templates, the signed-in librarian, form
tokens, the chosen language, the security headers and downloads.

Each area of the dashboard (``pages`` for end of day, reviews, exports and the audit log;
``reports``, ``registers``, ``data_in``, ``school``) is a module with ``mount(site)``
and the tuples ``PAGES`` (GET addresses a signed-in librarian may open) and ``FORMS``
(state-changing POST addresses, with sample values for path parameters); the security
tests walk all of them. Areas add their addresses with ``site.page_route`` and
``site.form_route``, which answer only a signed-in librarian, so no handler can forget to ask.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
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
from bookcorner.central.dashboard import auth
from bookcorner.i18n import _

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
#: a dashboard handler: ``(request, who[, fields], **path_params)`` to its answer
Handler = Callable[..., Awaitable[Response]]
#: the days an address may name (``from``, ``to``, ``day``, ``since``): any a school means, and
#: none near the ends of the calendar, where a day's end (9999-12-31 + 1) or its time in UTC
#: (0001-01-01 east of Greenwich) is no date at all
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
#: the largest id an address may name: the ids it names (reviews) are INTEGER columns, 32 bits
#: in PostgreSQL, which refuses a larger number outright (SQLite with an OverflowError)
_LARGEST_ID = 2**31 - 1
#: control characters no field of the dashboard means (a tab, a newline kept): PostgreSQL's text
#: refuses a NUL outright (a 500), the XLSX downloads the rest
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: media types of the downloads
CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
env.install_gettext_callables(gettext=lambda message: _(message),  # type: ignore[attr-defined]
                              ngettext=lambda s, p, n: _(s) if n == 1 else _(p), newstyle=True)


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


class Site:
    """The dashboard being served: ``app`` to add routes to, ``store``, the school's ``zone``."""

    def __init__(self, app: FastAPI, store: db.Store, version: str, zone: tzinfo) -> None:
        self.app, self.store, self.version, self.zone = app, store, version, zone
        app.add_middleware(_InLanguage)
        #: values every template sees (areas may add their own helpers)
        self.globals: dict[str, Any] = {}
        self._error_pages()

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

    def _error_pages(self) -> None:
        """The dashboard's errors as pages in the librarian's language (an address that is no
        page, a method it does not take, a malformed path parameter, the database busy, a
        bug), where the API under /v1 answers JSON. The API's own handler still runs first
        (it logs a bug) and gives the status and headers (Allow, Retry-After)."""
        for kind, api in list(self.app.exception_handlers.items()):
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
            self.app.add_exception_handler(kind, handler)

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

    async def session(self, request: Request) -> auth.Session | None:
        return await run_in_threadpool(auth.session_of, self.store, request.cookies.get(auth.SESSION_COOKIE))

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
        return {_CONTROL.sub("", name): _CONTROL.sub("", value) for name, value in fields}

    async def checked(self, request: Request, max_fields: int = 20) -> tuple[auth.Session, dict[str, str]] | Response:
        """A state-changing request: signed in, a form, and the session's form token."""
        who = await self.session(request)
        if who is None:
            return self.refused(request, 403)
        fields = await self.form(request, max_fields)
        if fields is None or not auth.same(fields.get("csrf"), who.csrf):
            return self.refused(request, 403)
        return who, fields

    # --- routes only a signed-in librarian reaches ---------------------------------------------

    def page_route(self, path: str, **route: Any) -> Callable[[Handler], Handler]:
        """A GET address (``path`` after the prefix), answered by ``handler(request, who,
        **path_params)`` for a signed-in librarian; anyone else is sent to sign in."""
        async def guard(request: Request) -> tuple[auth.Session] | Response:
            who = await self.session(request)
            return self.to_sign_in() if who is None else (who,)
        return self._guarded("GET", path, guard, 1, route)

    def form_route(self, path: str, max_fields: int = 20, **route: Any) -> Callable[[Handler], Handler]:
        """A state-changing POST address, answered by ``handler(request, who, fields,
        **path_params)`` only when ``checked`` passes it; anyone else is refused."""
        async def guard(request: Request) -> tuple[auth.Session, dict[str, str]] | Response:
            return await self.checked(request, max_fields)
        return self._guarded("POST", path, guard, 2, route)

    def _guarded(self, method: str, path: str, guard: Callable[[Request], Awaitable[tuple | Response]],
                 gives: int, route: dict[str, Any]) -> Callable[[Handler], Handler]:
        """Registers ``handler`` behind ``guard``, whose ``gives`` values follow ``request`` in the
        handler's arguments. FastAPI binds parameters by the endpoint's signature, so the
        endpoint shows ``request`` and the handler's path parameters, not what the guard gives."""

        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request, **path_params: Any) -> Response:
                passed = await guard(request)
                if isinstance(passed, Response):
                    return passed
                if any(isinstance(value, int) and not 0 <= value <= _LARGEST_ID for value in path_params.values()):
                    return self.refused(request, 404, error=_("There is nothing with that number."))
                asked = [*request.query_params.multi_items(), *path_params.items()]
                if any(_CONTROL.search(f"{name}{value}") for name, value in asked):
                    return self.page(request, "error.html", 422, message=self.error_text(422))
                return await handler(request, *passed, **path_params)

            params = list(inspect.signature(handler, eval_str=True).parameters.values())[1 + gives:]
            endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
                [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request), *params],
                return_annotation=Response)
            self.app.add_api_route(PREFIX + path, endpoint, methods=[method], include_in_schema=False,
                                   **{"name": handler.__name__, **route})
            return handler
        return register

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
