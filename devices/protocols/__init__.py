"""Serial card reader protocols: one module each, all pure decoders over bytes.

A push decoder (RDM6300, ID-12LA, ASCII lines) takes bytes as they arrive with ``feed()``
and returns :class:`CardRead` for every valid frame and :class:`Rejected` for everything
else (noise, a truncated frame, a bad checksum), then picks up at the next frame start.
``idle()`` says the line went quiet, so a half frame left over is truncated, not waited for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bookcorner.devices.config import CardIdFormat, TypedFormat
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


PUSH_PROTOCOLS = ("rdm6300", "id12", "ascii")


def push_decoder(protocol: str, card_id_format: CardIdFormat = "decimal10",
                 ascii_format: TypedFormat = "em4100-decimal") -> PushDecoder:
    """The decoder for a reader that sends frames on its own (not PN532, which is polled)."""
    if protocol == "rdm6300":
        from bookcorner.devices.protocols.rdm6300 import Rdm6300Decoder

        return Rdm6300Decoder(card_id_format)
    if protocol == "id12":
        from bookcorner.devices.protocols.id12 import Id12Decoder

        return Id12Decoder(card_id_format)
    if protocol == "ascii":
        from bookcorner.devices.protocols.ascii import AsciiLineDecoder

        return AsciiLineDecoder(ascii_format, card_id_format)
    raise ValueError(f"not a push protocol: {protocol}")
