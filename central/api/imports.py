"""``POST /v1/imports``: a kiosk's USB export file, brought in by a librarian (``central.imports``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bookcorner.central.api import docs
from bookcorner.central.api.deps import Librarian, Store, body_of, decoded
from bookcorner.central.api.errors import reply
from bookcorner.central.imports import import_export
from bookcorner.protocol.export import ExportFile

router = APIRouter()


@router.post("/imports", summary="Import a kiosk's USB export file", operation_id="import",
             responses=docs.responses("ImportReply", 400, 401, 403, 409, 413, 422, 503, unprocessable=docs.IMPORT_RULES),
             openapi_extra=docs.body("ExportFile"))
async def imports(request: Request, _who: Librarian, store: Store) -> Response:
    raw = await body_of(request)
    decoded(raw, ExportFile)
    return reply(await run_in_threadpool(import_export, store, raw))
