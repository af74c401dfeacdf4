"""``POST /v1/push``: a kiosk's batch of events, taken exactly once (``central.ingest``); at
most so many at once (``admission``: 429 with Retry-After beyond that)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bookcorner.central.api import docs
from bookcorner.central.api.admission import Admitted
from bookcorner.central.api.deps import Arrived, Kiosk, Store, body_of, decoded
from bookcorner.central.ingest import Batch, check, ingest
from bookcorner.protocol.messages import PushRequest, encode

router = APIRouter()


@router.post("/push", summary="Push a batch of events", operation_id="push",
             responses=docs.responses("PushReply", 400, 401, 403, 409, 413, 422, 429, 503, unprocessable=docs.PUSH_RULES),
             openapi_extra=docs.body("PushRequest"))
async def push(request: Request, arrival: Arrived, who: Kiosk, _turn: Admitted, store: Store) -> Response:
    timings = arrival.timings
    timings.lap("auth")
    message: PushRequest = decoded(await body_of(request), PushRequest)
    timings.lap("decode")
    batch = Batch(message.kiosk_id, message.batch_id, message.from_seq, message.to_seq, message.clock,
                  message.events, waiting=message.waiting, journal=message.journal)
    check(batch, who.kiosk_id or "")
    answer = await run_in_threadpool(ingest, store, batch, arrival.received, timings)
    body = encode(answer)
    timings.lap("encode")
    return Response(content=body, media_type="application/json", headers={"Server-Timing": timings.header()})
