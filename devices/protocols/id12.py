"""ID-12LA / ID-20LA (125 kHz EM4100) in ASCII mode, 9600 8N1:
``02`` + 10 hex + 2 hex checksum + CR LF + ``03``, once when a card enters the field.
"""

from __future__ import annotations

from bookcorner.devices.config import CardIdFormat
from bookcorner.devices.protocols.em4100_frames import StxEtxDecoder, frame

TRAILER = b"\r\n"


class Id12Decoder(StxEtxDecoder):
    def __init__(self, card_id_format: CardIdFormat = "decimal10") -> None:
        super().__init__(TRAILER, card_id_format)


def id12_frame(card: bytes) -> bytes:
    return frame(card, TRAILER)
