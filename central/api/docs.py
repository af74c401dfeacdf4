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
              503: "busy: try again after Retry-After seconds"}


def ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def body(name: str) -> dict[str, Any]:
    """``openapi_extra`` of a secured operation whose request body is the model ``name``."""
    return {"requestBody": {"required": True, **ref(name)}, **SECURED}


def responses(ok: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {200: {"description": "done", **ref(ok)}}
    for status in errors:
        out[status] = {"description": _DESCRIBED[status], **ref("ErrorReply")}
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
