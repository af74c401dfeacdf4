"""``GET /v1/health``: is the server up (no credential needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from bookcorner.central.api.errors import reply
from bookcorner.protocol.messages import PROTOCOL_VERSION

router = APIRouter()
_UP: dict[int | str, dict[str, Any]] = {200: {"description": "up", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"status": {"type": "string"}, "protocol": {"type": "integer"}},
    "required": ["status", "protocol"]}}}}}


@router.get("/health", summary="Is the server up (no credential needed)", operation_id="health", responses=_UP)
async def health() -> Response:
    return reply({"status": "ok", "protocol": PROTOCOL_VERSION})
