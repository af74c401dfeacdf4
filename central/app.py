"""The central server's HTTP API (FastAPI), described by the OpenAPI document it serves.

Request bodies are decoded with msgspec against the protocol's own types (one source of
truth for the kiosk and the server, and a batch of 5,000 events decodes in
milliseconds); their JSON Schemas are put into the OpenAPI document from the same types.
Blocking database work runs in the thread pool, never on the event loop.

Errors always answer ``ErrorReply`` JSON: 400 not JSON, 401 no or unknown credential,
403 the credential may not do this (a kiosk pushing as another), 409 a batch id reused
for other events, 413 too large, 422 a request that breaks the protocol's constraints,
503 busy (with Retry-After). A 500 is a bug, logged with its traceback (frames and the
error's class, never its message: ``central.logs``).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bookcorner.central import db, logs
from bookcorner.central.imports import import_export
from bookcorner.central.ingest import Batch, IngestError, Timings, check, ingest
from bookcorner.central.kiosks import KIOSK, LIBRARIAN, Authenticator, Principal, list_kiosks
from bookcorner.central.reference import delta
from bookcorner.protocol.export import ExportFile, ExportInvalid
from bookcorner.protocol.messages import (
    API_PREFIX,
    MAX_BODY_BYTES,
    PROTOCOL_VERSION,
    ErrorReply,
    ImportReply,
    KioskList,
    PushReply,
    PushRequest,
    ReferenceDelta,
    decode,
    encode,
)

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
_MODELS = [PushRequest, PushReply, ReferenceDelta, KioskList, ImportReply, ErrorReply, ExportFile]


class HTTPError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def reply(message: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=encode(message), status_code=status, media_type="application/json", headers=headers)


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return reply(ErrorReply(code, detail), status, headers)


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _responses(ok: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    described = {400: "not JSON", 401: "no credential, or one the server does not know",
                 403: "this credential may not do this", 409: "batch id reused for other events",
                 413: "request too large", 422: "the request breaks the protocol's constraints",
                 503: "busy: try again after Retry-After seconds"}
    out: dict[int | str, dict[str, Any]] = {200: {"description": "done", **_ref(ok)}}
    for status in errors:
        out[status] = {"description": described[status], **_ref("ErrorReply")}
    return out


_SECURED: dict[str, Any] = {"security": [{"bearer": []}]}


def create_app(store: db.Store) -> FastAPI:
    authenticate = Authenticator(store)
    app = FastAPI(
        title="bookcorner central server",
        version=f"{PROTOCOL_VERSION}",
        description="Takes kiosk events exactly once and serves reference data. See docs/protocol.md.",
        docs_url=None, redoc_url=None,
    )

    def principal(request: Request, role: str) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            raise HTTPError(401, "unauthorized", "send the credential as 'Authorization: Bearer <token>'",
                            {"WWW-Authenticate": "Bearer"})
        found = authenticate(token)
        if found is None:
            raise HTTPError(401, "unauthorized", "this credential is not known here (or was revoked)",
                            {"WWW-Authenticate": "Bearer"})
        if found.role != role:
            raise HTTPError(403, "forbidden", f"a {found.role} credential cannot do this")
        return found

    async def body_of(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise HTTPError(413, "too_large", f"a request body may hold at most {MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise HTTPError(413, "too_large", f"a request body may hold at most {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def decoded(raw: bytes, kind: type) -> Any:
        try:
            return decode(raw, kind)
        except msgspec.ValidationError as error:
            raise HTTPError(422, "invalid_request", str(error)) from None
        except msgspec.DecodeError as error:
            raise HTTPError(400, "not_json", f"the body is not JSON: {error}") from None
        except RecursionError:
            # msgspec decodes nested arrays and objects by recursion: a body nested deeper than
            # the interpreter allows is no kiosk's batch (their events nest 3 deep at most)
            raise HTTPError(400, "too_deep", "the body's JSON is nested too deeply") from None

    @app.post(f"{API_PREFIX}/push", summary="Push a batch of events", operation_id="push",
              responses=_responses("PushReply", 400, 401, 403, 409, 413, 422, 503),
              openapi_extra={"requestBody": {"required": True, **_ref("PushRequest")}, **_SECURED})
    async def push(request: Request) -> Response:
        received = db.now()
        timings = Timings()
        who = principal(request, KIOSK)
        timings.lap("auth")
        message: PushRequest = decoded(await body_of(request), PushRequest)
        timings.lap("decode")
        batch = Batch(message.kiosk_id, message.batch_id, message.from_seq, message.to_seq, message.clock,
                      message.events, waiting=message.waiting, journal=message.journal)
        check(batch, who.kiosk_id or "")
        answer = await run_in_threadpool(ingest, store, batch, received, timings)
        body = encode(answer)
        timings.lap("encode")
        return Response(content=body, media_type="application/json", headers={"Server-Timing": timings.header()})

    @app.get(f"{API_PREFIX}/reference", summary="Reference data changed since a cursor", operation_id="reference",
             responses=_responses("ReferenceDelta", 401, 403, 422, 503), openapi_extra=_SECURED)
    async def reference(
        request: Request,
        since: int = Query(0, ge=0, le=2**53, description="the cursor of the kiosk's snapshot (0: everything)"),
        epoch: str | None = Query(None, max_length=64, pattern=r"^[A-Za-z0-9]+$",
                                  description="the epoch the cursor came from"),
        incarnation: str | None = Query(None, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$",
                                        description="the kiosk's journal incarnation: applied_seq is counted in it"),
    ) -> Response:
        who = principal(request, KIOSK)
        unknown = sorted(set(request.query_params) - {"since", "epoch", "incarnation"})
        if unknown:
            raise HTTPError(422, "invalid_request", f"unknown query parameter(s): {', '.join(unknown)}")
        return reply(await run_in_threadpool(delta, store, who.kiosk_id or "", since, epoch, incarnation))

    @app.get(f"{API_PREFIX}/kiosks", summary="Kiosks with their last contact and high-water mark",
             operation_id="kiosks", responses=_responses("KioskList", 401, 403, 503), openapi_extra=_SECURED)
    async def kiosks(request: Request) -> Response:
        principal(request, LIBRARIAN)
        return reply(await run_in_threadpool(list_kiosks, store))

    @app.post(f"{API_PREFIX}/imports", summary="Import a kiosk's USB export file", operation_id="import",
              responses=_responses("ImportReply", 400, 401, 403, 409, 413, 422, 503),
              openapi_extra={"requestBody": {"required": True, **_ref("ExportFile")}, **_SECURED})
    async def imports(request: Request) -> Response:
        principal(request, LIBRARIAN)
        raw = await body_of(request)
        decoded(raw, ExportFile)
        return reply(await run_in_threadpool(import_export, store, raw))

    @app.get(f"{API_PREFIX}/health", summary="Is the server up (no credential needed)", operation_id="health",
             responses={200: {"description": "up", "content": {"application/json": {"schema": {
                 "type": "object", "properties": {"status": {"type": "string"}, "protocol": {"type": "integer"}},
                 "required": ["status", "protocol"]}}}}})
    async def health() -> Response:
        return reply({"status": "ok", "protocol": PROTOCOL_VERSION})

    @app.exception_handler(HTTPError)
    async def _http_error(_request: Request, error: HTTPError) -> Response:
        return _error(error.status, error.code, error.detail, error.headers)

    @app.exception_handler(IngestError)
    async def _ingest_error(_request: Request, error: IngestError) -> Response:
        return _error(error.status, error.code, error.detail)

    @app.exception_handler(ExportInvalid)
    async def _export_invalid(_request: Request, error: ExportInvalid) -> Response:
        return _error(422, "invalid_export", str(error))

    @app.exception_handler(db.Busy)
    async def _busy(_request: Request, error: db.Busy) -> Response:
        return _error(503, "busy", f"the database is busy or unreachable ({error}); try again",
                      {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in error.errors())
        return _error(422, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(_request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return _error(error.status_code, code, str(error.detail), dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> Response:
        # the frames and the error's class, never its message: it can quote a child's data
        log.error("internal error on %s %s\n%s", request.method, logs.shown_path(request.url.path),
                  logs.described(error))
        return _error(500, "internal_error", "the server failed; the error is in its log")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {})
            _, models = msgspec.json.schema_components(_MODELS, ref_template="#/components/schemas/{name}")
            components.setdefault("schemas", {}).update(models)
            components["securitySchemes"] = {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "a kiosk's credential (bookcorner central add-kiosk) or a librarian's "
                               "(bookcorner central add-librarian)"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    from bookcorner.central.dashboard import mount

    mount(app, store, _version())
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bookcorner")
    except PackageNotFoundError:
        return "0"
