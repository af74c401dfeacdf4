"""The central database's ``events.payload`` column: what kiosks sent, as JSON text.

Read back only through here (and ``central.validate`` for what arrives): decoded into the
event type's typed payload (``circulation.events``), or kept raw (``UnknownPayload``) when
it is an event kept for review whose payload its type's struct refuses, or of a type this
server does not know. The two changes the server itself makes to a stored payload live
here too: the retention period's anonymisation and a librarian's correction.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from bookcorner.circulation.events import Payload, decode_json_or_raw, decode_or_raw

#: what an anonymised event's payload carries (compact JSON, as ingest stores payloads), to skip it
ANONYMISED_MARK = '"anonymised":true'


def stored(event_type: str, text: str | bytes) -> Payload:
    """A stored payload, typed (raw when it does not fit its type: an event kept for review)."""
    return decode_json_or_raw(event_type, text)


def raw(text: str | bytes) -> dict[str, Any]:
    """A stored payload as the kiosk sent it ({} when it is no JSON object)."""
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def is_anonymised(text: str) -> bool:
    return ANONYMISED_MARK in text


def anonymised(text: str) -> str:
    """The stored payload with the child's id and card gone (null) and marked anonymised,
    every other field kept (the payload's type does not matter: an unknown one's too)."""
    payload = {**raw(text), "patron_id": None, "card_id": None, "anonymised": True}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def with_correction(event_type: str, text: str, item_id: str | None, patron_id: str | None) -> Payload:
    """A stored payload with the book and the student a librarian's correction named (an
    anonymised payload keeps no student: the correction's is not put back)."""
    changes = {"item_id": item_id} if item_id else {}
    if patron_id and not is_anonymised(text):
        changes["patron_id"] = patron_id
    if not changes:
        return stored(event_type, text)
    return decode_or_raw(event_type, {**raw(text), **changes})


def corrected_raw(text: str, item_id: str | None, patron_id: str | None) -> dict[str, Any]:
    """The stored payload as a librarian corrects it (the book, the student), to check and
    decode again (central.validate.corrected)."""
    payload = raw(text)
    if item_id:
        payload["item_id"] = item_id
    if patron_id:
        payload["patron_id"] = patron_id
    return payload

