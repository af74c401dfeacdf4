"""``GET /v1/health``: is the server up (no credential needed), and how this server process's
push admission has done since it started (``admission``: taken, waited, told 429)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central.api.errors import reply
from bookcorner.protocol.messages import PROTOCOL_VERSION

router = APIRouter()
_UP: dict[int | str, dict[str, Any]] = {200: {"description": "up", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"status": {"type": "string"}, "protocol": {"type": "integer"},
                                     "pushes": {"type": "object", "additionalProperties": {"type": "integer"}}},
    "required": ["status", "protocol"]}}}}}


@router.get("/health", summary="Is the server up (no credential needed)", operation_id="health", responses=_UP)
async def health(request: Request) -> Response:
    admission = request.app.state.admission
    pushes = {**asdict(admission.counts), "in_flight": admission.in_flight, "waiting": admission.waiting}
    return reply({"status": "ok", "protocol": PROTOCOL_VERSION, "pushes": pushes})
