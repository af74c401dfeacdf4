"""``GET /v1/kiosks``: the kiosks, for a librarian (``central.kiosks``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bookcorner.central.api import docs
from bookcorner.central.api.deps import Librarian, Store
from bookcorner.central.api.errors import reply
from bookcorner.central.kiosks import list_kiosks

router = APIRouter()


@router.get("/kiosks", summary="Kiosks with their last contact and high-water mark", operation_id="kiosks",
            responses=docs.responses("KioskList", 401, 403, 503), openapi_extra=docs.SECURED)
async def kiosks(_who: Librarian, store: Store) -> Response:
    return reply(await run_in_threadpool(list_kiosks, store))
