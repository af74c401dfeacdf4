"""Generic serial readers that send one line of ASCII per card (``0006547886\\r\\n``).

There is no checksum: a line is a card only when it is exactly a card number in the
configured form (see :func:`devices.cardid.typed_card_id`); anything else is rejected.
"""

from __future__ import annotations

from bookcorner.devices.cardid import typed_card_id
from bookcorner.devices.config import CardIdFormat, TypedFormat
from bookcorner.devices.events import Text
from bookcorner.devices.protocols import CardRead, Decoded, Rejected
from bookcorner.i18n import N_

LINE_ENDS = b"\r\n"
FRAMING = b"\x02\x03"
MAX_LINE = 64


class AsciiLineDecoder:
    def __init__(self, typed_format: TypedFormat = "em4100-decimal", card_id_format: CardIdFormat = "decimal10") -> None:
        self.typed_format = typed_format
        self.card_id_format = card_id_format
        self._line = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[Decoded]:
        results: list[Decoded] = []
        for byte in data:
            if byte in LINE_ENDS:
                results += self._end_of_line()
            elif len(self._line) >= MAX_LINE:
                if not self._overlong:
                    results.append(Rejected("overlong", Text.of(N_("line longer than {limit} bytes ignored"), limit=MAX_LINE), bytes(self._line)))
                self._overlong = True
            else:
                self._line.append(byte)
        return results

    def _end_of_line(self) -> list[Decoded]:
        raw = bytes(self._line)
        overlong = self._overlong
        self._line.clear()
        self._overlong = False
        if overlong:
            return []
        text = raw.strip(FRAMING + b" \t")
        if not text:
            return []
        try:
            line = text.decode("ascii")
        except UnicodeDecodeError:
            return [Rejected("malformed", Text.of(N_("not ASCII text: {bytes}"), bytes=raw.hex(" ")), raw)]
        card_id = typed_card_id(line, self.typed_format, self.card_id_format) if line.isprintable() else None
        if card_id is None:
            return [Rejected("not-a-card", Text.of(N_("not a card number ({format}): {line!r}"), format=self.typed_format, line=line), raw)]
        return [CardRead(card_id, raw)]

    def idle(self) -> list[Decoded]:
        if not self._line:
            self._overlong = False
            return []
        raw = bytes(self._line)
        self._line.clear()
        overlong, self._overlong = self._overlong, False
        if overlong:
            return []
        return [Rejected("truncated", Text.of(N_("line without an end: {bytes}"), bytes=raw.hex(" ")), raw)]
