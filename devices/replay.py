"""Decoding captures for bug reports: a scanner's raw events, a reader's raw serial bytes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bookcorner.devices.config import CardIdFormat, TypedFormat
from bookcorner.devices.events import Text
from bookcorner.devices.keyboard import decode_capture
from bookcorner.devices.keystrokes import Burst, Fragment
from bookcorner.devices.protocols import CardRead, Decoded, Rejected, push_decoder
from bookcorner.i18n import N_

FRAGMENT_NOTES = {
    "gap": N_("at {time}: partial scan dropped, keys too far apart: {text}"),
    "unterminated": N_("at {time}: scan without Enter at the end: {text}"),
    "short": N_("at {time}: scan shorter than the minimum length: {text}"),
    "slow-enter": N_("at {time}: partial scan dropped, Enter came too late: {text}"),
    "overflow": N_("at {time}: scan too long, dropped: {text}"),
    "lost-events": N_("at {time}: scan lost, the kernel dropped events (SYN_DROPPED): {text}"),
}


@dataclass(frozen=True)
class Line:
    """One line of a replay: a result for stdout, or a note for stderr."""

    text: str
    note: bool = False


def replay_scanner(data: bytes, max_gap: float, terminators: tuple[str, ...] = ("enter",),
                   record_size: int | None = None) -> Iterator[Line]:
    for result in decode_capture(data, max_gap, terminators, record_size):
        if isinstance(result, Burst):
            yield Line(result.text)
        elif isinstance(result, Fragment) and result.text:
            # "at <time>" on the capture's own clock, to find the spot in a bug report.
            note = Text.of(FRAGMENT_NOTES[result.reason], time=f"{result.time:.6f}", text=repr(result.text))
            yield Line(note.text(), note=True)


def replay_reader(data: bytes, protocol: str, card_id_format: CardIdFormat = "decimal10",
                  ascii_format: TypedFormat = "em4100-decimal") -> Iterator[Decoded]:
    if protocol == "pn532":
        yield from _replay_pn532(data, card_id_format)
        return
    decoder = push_decoder(protocol, card_id_format, ascii_format)
    yield from decoder.feed(data)
    yield from decoder.idle()


def _replay_pn532(data: bytes, card_id_format: CardIdFormat) -> Iterator[Decoded]:
    """The chip's side of a PN532 conversation: one id per InListPassiveTarget answer with a card."""
    from bookcorner.devices.cardid import mifare_card_id
    from bookcorner.devices.protocols.pn532 import IN_LIST_PASSIVE_TARGET, Frame, FrameParser, Pn532Error, target_uid

    parser = FrameParser()
    for item in [*parser.feed(data), *parser.idle()]:
        if isinstance(item, Rejected):
            yield item
        elif isinstance(item, Frame) and item.data[:1] == bytes([IN_LIST_PASSIVE_TARGET + 1]):
            try:
                uid = target_uid(item.data[1:])
            except Pn532Error as error:
                yield Rejected("malformed", error.message, item.data)
                continue
            if uid is not None:
                yield CardRead(mifare_card_id(uid), item.data)
