"""The OpenAPI document's parts the route declarations cannot state themselves: the
protocol's msgspec types as JSON Schemas (from the same types the bodies are decoded
with), each route's answers, and the bearer credential."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from bookcorner.protocol.export import ExportFile
from bookcorner.protocol.messages import ErrorReply, ImportReply, KioskList, PushReply, PushRequest, ReferenceDelta

MODELS = [PushRequest, PushReply, ReferenceDelta, KioskList, ImportReply, ErrorReply, ExportFile]
#: an operation that needs ``Authorization: Bearer <credential>``
SECURED: dict[str, Any] = {"security": [{"bearer": []}]}
_DESCRIBED = {400: "not JSON", 401: "no credential, or one the server does not know",
              403: "this credential may not do this", 409: "batch id reused for other events",
              413: "request too large", 422: "the request breaks the protocol's constraints",
              429: "too many pushes at once: try again after Retry-After seconds (with jitter)",
              503: "busy: try again after Retry-After seconds"}


def ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def body(name: str) -> dict[str, Any]:
    """``openapi_extra`` of a secured operation whose request body is the model ``name``."""
    return {"requestBody": {"required": True, **ref(name)}, **SECURED}


#: the rules of a push that no JSON Schema can state (they relate fields to each other)
PUSH_RULES = ("the request breaks the protocol's constraints (error invalid_request), or a rule no schema "
              "can state (error invalid_batch): to_seq is at least from_seq - 1; the events' seq strictly "
              "increasing, each above from_seq - 1 and at most to_seq; no event id twice in the batch")
#: what an export file must be beyond its shape: the server's records decide it
IMPORT_RULES = ("the request is not an export file's shape (error invalid_request), or the file cannot be "
                "imported (error invalid_export): no such kiosk on this server, a signature that does not "
                "match the body, a signed body that is not a valid export or names another kiosk; or its "
                "events break a push's rules (error invalid_batch: see push)")


def responses(ok: str, *errors: int, unprocessable: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The documented answers: ``ok`` on 200, and each error status (``unprocessable`` for a 422 whose
    rules the operation states)."""
    out: dict[int | str, dict[str, Any]] = {200: {"description": "done", **ref(ok)}}
    for status in errors:
        described = unprocessable if status == 422 and unprocessable else _DESCRIBED[status]
        out[status] = {"description": described, **ref("ErrorReply")}
    return out


def openapi(app: FastAPI) -> dict[str, Any]:
    """The app's document, made once, with the protocol's schemas and the bearer scheme."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        _, models = msgspec.json.schema_components(MODELS, ref_template="#/components/schemas/{name}")
        components.setdefault("schemas", {}).update(models)
        components["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "a kiosk's credential (bookcorner central add-kiosk) or a librarian's "
                           "(bookcorner central add-librarian)"}}
        app.openapi_schema = schema
    return app.openapi_schema
