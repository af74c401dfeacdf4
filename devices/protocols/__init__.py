"""Serial card reader protocols: one module each, all pure decoders over bytes.

A push decoder (RDM6300, ID-12LA, ASCII lines) takes bytes as they arrive with ``feed()``
and returns :class:`CardRead` for every valid frame and :class:`Rejected` for everything
else (noise, a truncated frame, a bad checksum), then picks up at the next frame start.
``idle()`` says the line went quiet, so a half frame left over is truncated, not waited for.
"""

from __future__ import annotations

from bookcorner.devices.config import CardIdFormat, TypedFormat
from bookcorner.devices.protocols.ascii import AsciiLineDecoder
from bookcorner.devices.protocols.decoded import CardRead, Decoded, PushDecoder, Rejected
from bookcorner.devices.protocols.id12 import Id12Decoder
from bookcorner.devices.protocols.rdm6300 import Rdm6300Decoder

__all__ = ["PUSH_PROTOCOLS", "CardRead", "Decoded", "PushDecoder", "Rejected", "push_decoder"]


PUSH_PROTOCOLS = ("rdm6300", "id12", "ascii")


def push_decoder(protocol: str, card_id_format: CardIdFormat = "decimal10",
                 ascii_format: TypedFormat = "em4100-decimal") -> PushDecoder:
    """The decoder for a reader that sends frames on its own (not PN532, which is polled)."""
    if protocol == "rdm6300":
        return Rdm6300Decoder(card_id_format)
    if protocol == "id12":
        return Id12Decoder(card_id_format)
    if protocol == "ascii":
        return AsciiLineDecoder(ascii_format, card_id_format)
    raise ValueError(f"not a push protocol: {protocol}")
