"""What a scanned code is: a card, a known book, or something to show the librarian.

Scanners send what is printed: an EAN-13 ISBN (perhaps with a price add-on), an ISBN-10
if so configured, a library accession label (perhaps with Codabar start/stop letters), or
a 14-digit library barcode. ISBNs are validated and normalised with python-stdnum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from stdnum import isbn as stdnum_isbn
from stdnum import luhn
from stdnum.exceptions import ValidationError

if TYPE_CHECKING:
    from bookcorner.circulation.reference import Reference

_CODABAR_WRAPPED = re.compile(r"^[A-D]([0-9$:/.+\-]+)[A-D]$")
_DIGITS = re.compile(r"^[0-9]+$")


def normalise(raw: str) -> str:
    """The code as it should be looked up: no spaces or control characters, Codabar
    start/stop letters stripped, upper case (so an ISBN-10 check digit ``x`` is ``X``)."""
    text = "".join(ch for ch in raw if ch.isprintable() and not ch.isspace()).upper()
    wrapped = _CODABAR_WRAPPED.match(text)
    if wrapped:
        text = wrapped.group(1)
    return text


def isbn13_of(text: str) -> str | None:
    """The ISBN-13 this code denotes (ISBN-10 converted; EAN add-ons dropped), or None."""
    candidate = text.replace("-", "")
    if _DIGITS.match(candidate) and len(candidate) in (15, 18) and candidate[:3] in ("978", "979"):
        candidate = candidate[:13]  # 2- or 5-digit price add-on (90000 = no price)
    if len(candidate) not in (10, 13):
        return None
    if not stdnum_isbn.is_valid(candidate):
        return None
    return stdnum_isbn.to_isbn13(stdnum_isbn.compact(candidate))


def isbn10_of(isbn13: str) -> str | None:
    """The ISBN-10 form of a 978 ISBN-13 (979 numbers have none)."""
    try:
        return stdnum_isbn.to_isbn10(isbn13)
    except ValidationError:  # stdnum raises InvalidComponent for 979
        return None


class LibraryBarcode(StrEnum):
    PATRON = "patron"
    ITEM = "item"


def library_barcode_kind(text: str) -> LibraryBarcode | None:
    """14-digit library barcodes: 2 = patron, 3 = item, Luhn check digit."""
    if len(text) != 14 or not _DIGITS.match(text) or text[0] not in "23":
        return None
    if not luhn.is_valid(text):
        return None
    return LibraryBarcode.PATRON if text[0] == "2" else LibraryBarcode.ITEM


class CodeKind(StrEnum):
    CARD = "card"
    ITEM = "item"
    UNKNOWN_CARD = "unknown_card"
    UNKNOWN_ITEM = "unknown_item"
    UNREADABLE = "unreadable"


class Source(StrEnum):
    """Where a code came from: a card reader only ever sends cards."""

    SCANNER = "scanner"
    CARD_READER = "card_reader"
    KEYBOARD = "keyboard"


@dataclass(frozen=True, slots=True)
class ScannedCode:
    raw: str
    text: str
    kind: CodeKind
    #: the card id when kind is CARD or UNKNOWN_CARD
    card_id: str | None = None
    #: the matching copies when kind is ITEM (several for a shared ISBN barcode)
    item_ids: tuple[str, ...] = ()
    isbn13: str | None = None


def classify(raw: str, reference: Reference, source: Source = Source.SCANNER) -> ScannedCode:
    """Enrolled card, known item (accession label or either ISBN form), or unknown.

    A card reader only sends cards. From a scanner, an enrolled card wins (student cards
    may carry barcodes), then an accession label, then an ISBN."""
    text = normalise(raw)
    if not text:
        return ScannedCode(raw, text, CodeKind.UNREADABLE)
    card = reference.cards.get(text)
    if card is not None:
        return ScannedCode(raw, text, CodeKind.CARD, card_id=card.card_id)
    if source is Source.CARD_READER:
        return ScannedCode(raw, text, CodeKind.UNKNOWN_CARD, card_id=text)
    item_id = reference.by_barcode.get(text)
    if item_id is not None:
        item = reference.items[item_id]
        return ScannedCode(raw, text, CodeKind.ITEM, item_ids=(item_id,), isbn13=item.isbn13)
    isbn13 = isbn13_of(text)
    if isbn13 is not None:
        copies = reference.by_isbn13.get(isbn13, ())
        kind = CodeKind.ITEM if copies else CodeKind.UNKNOWN_ITEM
        return ScannedCode(raw, text, kind, item_ids=copies, isbn13=isbn13)
    library = library_barcode_kind(text)
    if library is LibraryBarcode.PATRON:
        return ScannedCode(raw, text, CodeKind.UNKNOWN_CARD, card_id=text)
    if library is LibraryBarcode.ITEM:
        return ScannedCode(raw, text, CodeKind.UNKNOWN_ITEM)
    if _DIGITS.match(text) and len(text) == 10 and source is Source.KEYBOARD:
        # keyboard-style card readers type the card's 10-digit number
        return ScannedCode(raw, text, CodeKind.UNKNOWN_CARD, card_id=text)
    if _LOOKS_LIKE_LABEL.match(text):
        return ScannedCode(raw, text, CodeKind.UNKNOWN_ITEM)
    return ScannedCode(raw, text, CodeKind.UNREADABLE)


#: what an unregistered accession label can plausibly look like (letters, digits, dashes)
_LOOKS_LIKE_LABEL = re.compile(r"^[A-Z0-9][A-Z0-9\-]{3,31}$")
