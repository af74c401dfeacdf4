"""What a decoder makes of the bytes: a card read, or bytes rejected with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bookcorner.devices.events import Text


@dataclass(frozen=True)
class CardRead:
    """A card id from one valid frame; ``frame`` is the frame as received."""

    card_id: str
    frame: bytes


@dataclass(frozen=True)
class Rejected:
    """Bytes that were not a valid frame. ``code`` keys the diagnostic counters."""

    code: str
    message: Text
    raw: bytes


Decoded = CardRead | Rejected


class PushDecoder(Protocol):
    def feed(self, data: bytes) -> list[Decoded]: ...

    def idle(self) -> list[Decoded]: ...
