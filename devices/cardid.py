"""One canonical card id, whichever reader saw the card.

EM4100 (125 kHz) cards carry 5 bytes: a version/customer byte and a 32-bit number. The
number is what is printed on the card (``0006547886``) and what keyboard-style readers
type, so it is the id: by default as 10 zero-padded decimal digits, or (``hex``) as 8
upper-case hex digits. MIFARE (13.56 MHz) cards are known by their UID, in upper-case hex.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import xor

from bookcorner.devices.config import CardIdFormat, TypedFormat

EM4100_BYTES = 5
MIFARE_UID_LENGTHS = (4, 7, 10)


def xor_checksum(data: bytes) -> int:
    return reduce(xor, data, 0)


def em4100_number(data: bytes) -> int:
    """The 32-bit card number in an EM4100 id (its last four bytes)."""
    if len(data) != EM4100_BYTES:
        raise ValueError(f"an EM4100 id has {EM4100_BYTES} bytes, not {len(data)}")
    return int.from_bytes(data[1:], "big")


def em4100_card_id(number: int, card_id_format: CardIdFormat = "decimal10") -> str:
    if not 0 <= number < 1 << 32:
        raise ValueError(f"card number out of range: {number}")
    return f"{number:010d}" if card_id_format == "decimal10" else f"{number:08X}"


def mifare_card_id(uid: bytes) -> str:
    if len(uid) not in MIFARE_UID_LENGTHS:
        raise ValueError(f"a MIFARE UID has 4, 7 or 10 bytes, not {len(uid)}")
    return uid.hex().upper()


_DECIMAL = re.compile(r"[0-9]{10}")
_HEX10 = re.compile(r"[0-9A-Fa-f]{10}")
_UID = re.compile(r"(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{14}|[0-9A-Fa-f]{20})")


def typed_card_id(text: str, typed_format: TypedFormat, card_id_format: CardIdFormat = "decimal10") -> str | None:
    """The canonical id of a card number that arrived as text, or None if it is not one.

    ``em4100-decimal``: the number printed on the card, 10 digits with leading zeros;
    ``em4100-hex``: the 10 hex digits of the whole EM4100 id, as RDM6300 frames carry it;
    ``uid-hex``: a MIFARE UID.
    """
    text = text.strip()
    if typed_format == "em4100-decimal":
        if _DECIMAL.fullmatch(text) and int(text) < 1 << 32:
            return em4100_card_id(int(text), card_id_format)
        return None
    if typed_format == "em4100-hex":
        if _HEX10.fullmatch(text):
            return em4100_card_id(em4100_number(bytes.fromhex(text)), card_id_format)
        return None
    if _UID.fullmatch(text):
        return text.upper()
    return None
