"""Every error of the API as ``ErrorReply`` JSON, whatever raised it.

400 not JSON, 401 no or unknown credential, 403 the credential may not do this (a kiosk
pushing as another), 409 a batch id reused for other events, 413 too large, 422 a request
that breaks the protocol's constraints, 503 busy (with Retry-After). A 500 is a bug,
logged with its traceback (frames and the error's class, never its message:
``central.logs``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bookcorner.central import db, logs
from bookcorner.central.ingest import IngestError
from bookcorner.protocol.export import ExportInvalid
from bookcorner.protocol.messages import ErrorReply, encode

log = logging.getLogger(__name__)


class HTTPError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def reply(message: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=encode(message), status_code=status, media_type="application/json", headers=headers)


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return reply(ErrorReply(code, detail), status, headers)


async def _http_error(_request: Request, raised: HTTPError) -> Response:
    return error(raised.status, raised.code, raised.detail, raised.headers)


async def _ingest_error(_request: Request, raised: IngestError) -> Response:
    return error(raised.status, raised.code, raised.detail)


async def _export_invalid(_request: Request, raised: ExportInvalid) -> Response:
    return error(422, "invalid_export", str(raised))


async def _busy(request: Request, raised: db.Busy) -> Response:
    return error(503, "busy", f"the database is busy or unreachable ({raised}); try again",
                 {"Retry-After": str(request.app.state.settings.retry_after_s)})


async def _invalid(_request: Request, raised: RequestValidationError) -> Response:
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in raised.errors())
    return error(422, "invalid_request", problems)


async def _starlette(_request: Request, raised: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(raised.status_code, "http_error")
    return error(raised.status_code, code, str(raised.detail), dict(raised.headers or {}))


async def _bug(request: Request, raised: Exception) -> Response:
    # the frames and the error's class, never its message: it can quote a child's data
    log.error("internal error on %s %s\n%s", request.method, logs.shown_path(request.url.path),
              logs.described(raised))
    return error(500, "internal_error", "the server failed; the error is in its log")


#: in this order (the dashboard wraps each for its own pages: ``central.dashboard.site``)
HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (HTTPError, _http_error), (IngestError, _ingest_error), (ExportInvalid, _export_invalid), (db.Busy, _busy),
    (RequestValidationError, _invalid), (StarletteHTTPException, _starlette), (Exception, _bug))


def install(app: FastAPI) -> None:
    for kind, handler in HANDLERS:
        app.add_exception_handler(kind, handler)
