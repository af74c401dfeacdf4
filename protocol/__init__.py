"""The wire protocol between a kiosk's sync daemon and the central server.

Both sides import this package and nothing of each other: the server knows kiosks only
through these messages. Messages are msgspec Structs (JSON on the wire), so the kiosk
needs no web framework to speak them and the server decodes a batch of thousands of
events without building an object per field. ``docs/protocol.md`` describes the
exchange; the server serves the same shapes as an OpenAPI document (``/openapi.json``).
"""

from bookcorner.protocol.messages import (
    API_PREFIX,
    MAX_BATCH,
    PROTOCOL_VERSION,
    ClockReading,
    ErrorReply,
    EventResult,
    ImportReply,
    KioskInfo,
    KioskList,
    Outcome,
    PushReply,
    PushRequest,
    ReferenceDelta,
    WireEvent,
    decode,
    encode,
)

__all__ = [
    "API_PREFIX",
    "MAX_BATCH",
    "PROTOCOL_VERSION",
    "ClockReading",
    "ErrorReply",
    "EventResult",
    "ImportReply",
    "KioskInfo",
    "KioskList",
    "Outcome",
    "PushReply",
    "PushRequest",
    "ReferenceDelta",
    "WireEvent",
    "decode",
    "encode",
]
