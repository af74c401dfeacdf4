"""EM4100 ids in STX…ETX frames of ASCII hex, as RDM6300 and ID-12LA readers send them.

Frame: 0x02, 10 hex digits (version byte + 32-bit number), 2 hex digits of checksum (the
XOR of the 5 bytes), an optional trailer (CR LF on the ID-12LA), 0x03.
"""

from __future__ import annotations

from bookcorner.devices.cardid import em4100_card_id, em4100_number, xor_checksum
from bookcorner.devices.config import CardIdFormat
from bookcorner.devices.events import Text
from bookcorner.devices.protocols import CardRead, Decoded, Rejected
from bookcorner.i18n import N_

STX, ETX = 0x02, 0x03
HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")
ID_DIGITS = 10
CHECKSUM_DIGITS = 2


def frame(card: bytes, trailer: bytes = b"") -> bytes:
    """The frame a reader sends for the 5-byte EM4100 id ``card``."""
    body = card.hex().upper() + f"{xor_checksum(card):02X}"
    return bytes([STX]) + body.encode("ascii") + trailer + bytes([ETX])


def _show(raw: bytes | bytearray) -> str:
    return raw.hex(" ")


class StxEtxDecoder:
    def __init__(self, trailer: bytes, card_id_format: CardIdFormat = "decimal10") -> None:
        self.trailer = trailer
        self.card_id_format = card_id_format
        self.frame_length = 1 + ID_DIGITS + CHECKSUM_DIGITS + len(trailer) + 1
        self._buffer = bytearray()

    def _fits(self, position: int, byte: int) -> bool:
        """Whether ``byte`` may stand at ``position`` of a frame."""
        if position <= ID_DIGITS + CHECKSUM_DIGITS:
            return byte in HEX_DIGITS
        trailer_at = position - (1 + ID_DIGITS + CHECKSUM_DIGITS)
        if trailer_at < len(self.trailer):
            return byte == self.trailer[trailer_at]
        return byte == ETX

    def feed(self, data: bytes) -> list[Decoded]:
        self._buffer += data
        results: list[Decoded] = []
        buffer = self._buffer
        while buffer:
            start = buffer.find(STX)
            if start != 0:
                end = len(buffer) if start < 0 else start
                results.append(Rejected("noise", Text.of(N_("noise between frames: {bytes}"), bytes=_show(buffer[:end])), bytes(buffer[:end])))
                del buffer[:end]
                continue
            misfit = next((i for i in range(1, min(len(buffer), self.frame_length)) if not self._fits(i, buffer[i])), None)
            if misfit is not None:
                restart = buffer.find(STX, 1)
                end = len(buffer) if restart < 0 else restart
                raw = bytes(buffer[:end])
                if buffer[misfit] == STX:
                    results.append(Rejected("truncated", Text.of(N_("truncated frame: {bytes}"), bytes=_show(raw[:misfit])), raw[:misfit]))
                    end = misfit
                else:
                    results.append(Rejected("malformed", Text.of(N_("malformed frame: {bytes}"), bytes=_show(raw)), raw))
                del buffer[:end]
                continue
            if len(buffer) < self.frame_length:
                break
            results.append(self._complete(bytes(buffer[: self.frame_length])))
            del buffer[: self.frame_length]
        return results

    def _complete(self, raw: bytes) -> Decoded:
        digits = raw[1 : 1 + ID_DIGITS + CHECKSUM_DIGITS].decode("ascii")
        card = bytes.fromhex(digits[:ID_DIGITS])
        sent = int(digits[ID_DIGITS:], 16)
        expected = xor_checksum(card)
        if sent != expected:
            return Rejected(
                "checksum",
                Text.of(N_("bad checksum {sent} (expected {expected}) in frame {frame}"),
                        sent=f"{sent:02X}", expected=f"{expected:02X}", frame=digits),
                raw,
            )
        return CardRead(em4100_card_id(em4100_number(card), self.card_id_format), raw)

    def idle(self) -> list[Decoded]:
        if not self._buffer:
            return []
        raw = bytes(self._buffer)
        self._buffer.clear()
        return [Rejected("truncated", Text.of(N_("truncated frame: {bytes}"), bytes=_show(raw)), raw)]
