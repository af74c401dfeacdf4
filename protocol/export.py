"""The USB export file: a kiosk's unacknowledged events for a corner with no network.

The signed body is kept as the exact JSON text that was signed (``body``), so the
signature checks the bytes the kiosk wrote whatever a JSON library would reorder. The
server imports it through the same idempotent path as a push: importing it twice, or
after the kiosk pushed the same events, changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta, Struct

from bookcorner.protocol.credentials import sign, verify
from bookcorner.protocol.messages import (
    ClockReading,
    Identifier,
    JournalIdentity,
    KioskId,
    Seq,
    SeqOrZero,
    Timestamp,
    WireEvent,
)

EXPORT_FORMAT: Final = "bookcorner.export"
SIGNED_FORMAT: Final = "bookcorner.export.signed"
EXPORT_VERSION = 1
SUFFIX = ".bcx"


class ExportBody(Struct, kw_only=True):
    format: Literal["bookcorner.export"] = EXPORT_FORMAT
    version: int = EXPORT_VERSION
    kiosk_id: KioskId
    batch_id: Identifier
    #: the kiosk's clocks when the file was written
    clock: ClockReading
    from_seq: Seq
    to_seq: SeqOrZero
    events: list[WireEvent]
    #: the journal incarnation the events come from (absent from older kiosks)
    journal: JournalIdentity | None = None


class ExportFile(Struct, kw_only=True):
    format: Literal["bookcorner.export.signed"] = SIGNED_FORMAT
    kiosk_id: KioskId
    algorithm: Literal["HMAC-SHA256"] = "HMAC-SHA256"
    signature: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
    #: the JSON text of an ExportBody, exactly as signed
    body: str
    created: Timestamp


class ExportInvalid(ValueError):
    """Not an export file, damaged, or not signed by the kiosk it names."""


def seal(body: ExportBody, key: bytes, created: str) -> bytes:
    text = msgspec.json.encode(body).decode("utf-8")
    signed = ExportFile(kiosk_id=body.kiosk_id, signature=sign(text.encode("utf-8"), key), body=text, created=created)
    return msgspec.json.format(msgspec.json.encode(signed), indent=1)


def open_envelope(data: bytes) -> ExportFile:
    try:
        return msgspec.json.decode(data, type=ExportFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ExportInvalid(f"not a bookcorner export file: {error}") from None
    except RecursionError:
        raise ExportInvalid("not a bookcorner export file: its JSON is nested too deeply") from None


def open_body(envelope: ExportFile, key: bytes) -> ExportBody:
    raw = envelope.body.encode("utf-8")
    if not verify(raw, key, envelope.signature):
        raise ExportInvalid("the signature does not match: the file was changed, or it is not from this kiosk")
    try:
        body = msgspec.json.decode(raw, type=ExportBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ExportInvalid(f"the signed content is not a valid export: {error}") from None
    except RecursionError:
        raise ExportInvalid("the signed content is not a valid export: its JSON is nested too deeply") from None
    if body.kiosk_id != envelope.kiosk_id:
        raise ExportInvalid("the signed content names another kiosk")
    return body
