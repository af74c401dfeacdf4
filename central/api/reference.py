"""``GET /v1/reference``: the reference data a kiosk's snapshot lacks (``central.reference``)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bookcorner.central.api import docs
from bookcorner.central.api.deps import Kiosk, Store
from bookcorner.central.api.errors import HTTPError, reply
from bookcorner.central.reference import delta

router = APIRouter()
_PARAMETERS = {"since", "epoch", "incarnation"}


@router.get("/reference", summary="Reference data changed since a cursor", operation_id="reference",
            responses=docs.responses("ReferenceDelta", 401, 403, 422, 503), openapi_extra=docs.SECURED)
async def reference(
    request: Request,
    who: Kiosk,
    store: Store,
    since: int = Query(0, ge=0, le=2**53, description="the cursor of the kiosk's snapshot (0: everything)"),
    epoch: str | None = Query(None, max_length=64, pattern=r"^[A-Za-z0-9]+$",
                              description="the epoch the cursor came from"),
    incarnation: str | None = Query(None, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$",
                                    description="the kiosk's journal incarnation: applied_seq is counted in it"),
) -> Response:
    unknown = sorted(set(request.query_params) - _PARAMETERS)
    if unknown:
        raise HTTPError(422, "invalid_request", f"unknown query parameter(s): {', '.join(unknown)}")
    return reply(await run_in_threadpool(delta, store, who.kiosk_id or "", since, epoch, incarnation))
