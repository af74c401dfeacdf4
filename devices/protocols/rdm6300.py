"""RDM6300 / RDM630 (125 kHz EM4100), 9600 8N1: ``02`` + 10 hex + 2 hex checksum + ``03``.

The reader repeats the frame while the card stays in the field; debouncing is the
reader thread's job, this module only validates frames.
"""

from __future__ import annotations

from bookcorner.devices.config import CardIdFormat
from bookcorner.devices.protocols.em4100_frames import StxEtxDecoder, frame

TRAILER = b""


class Rdm6300Decoder(StxEtxDecoder):
    def __init__(self, card_id_format: CardIdFormat = "decimal10") -> None:
        super().__init__(TRAILER, card_id_format)


def rdm6300_frame(card: bytes) -> bytes:
    return frame(card, TRAILER)
