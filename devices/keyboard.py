"""From Linux input events to lines of text: the barcode scanner's decoder.

Pure code over :class:`RawEvent` values, so a live device (python-evdev), a raw capture
(``cat /dev/input/eventN > FILE``) and the tests all go through the same decoder.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bookcorner.devices import keycodes as kc
from bookcorner.devices.keystrokes import Burst, Fragment, KeystrokeClassifier, Result


@dataclass(frozen=True)
class RawEvent:
    """One ``struct input_event``: kernel timestamp, type, code, value."""

    sec: int
    usec: int
    type: int
    code: int
    value: int

    @property
    def time(self) -> float:
        return self.sec + self.usec / 1_000_000


# struct input_event on 64-bit Linux (timeval of two int64) and on 32-bit Linux (two 32-bit longs).
RECORD_64 = struct.Struct("<qqHHi")
RECORD_32 = struct.Struct("<IIHHi")
RECORD_FORMATS = {RECORD_64.size: RECORD_64, RECORD_32.size: RECORD_32}


class NotACapture(ValueError):
    """The bytes are not a stream of input_event records."""


def parse_records(data: bytes, record_size: int = RECORD_64.size) -> list[RawEvent]:
    """Whole records in ``data`` (a trailing partial record is left out)."""
    record = RECORD_FORMATS[record_size]
    whole = len(data) - len(data) % record.size
    return [RawEvent(*fields) for fields in record.iter_unpack(data[:whole])]


def _plausible(events: list[RawEvent]) -> bool:
    return all(0 <= e.type <= kc.EV_MAX and 0 <= e.usec < 1_000_000 for e in events)


def detect_record_size(data: bytes) -> int:
    """24 (64-bit Pi OS, PCs) or 16 (32-bit Pi OS), judged from the capture itself."""
    for size in (RECORD_64.size, RECORD_32.size):
        if data and len(data) % size == 0 and _plausible(parse_records(data, size)):
            return size
    raise NotACapture(len(data))


class RecordStream:
    """Reassembles records from reads of any size (a pipe or a file read in chunks)."""

    def __init__(self, record_size: int = RECORD_64.size) -> None:
        self.record_size = record_size
        self._partial = b""

    def feed(self, data: bytes) -> list[RawEvent]:
        data = self._partial + data
        whole = len(data) - len(data) % self.record_size
        self._partial = data[whole:]
        return parse_records(data[:whole], self.record_size)


class KeyboardDecoder:
    """EV_KEY events of one keyboard device to lines, with that device's own Shift state.

    Key presses (value 1) type; releases (0) only matter for Shift; autorepeat (2) is
    ignored (a scanner never holds a key). EV_SYN reports and EV_MSC scan codes carry no
    characters; a SYN_DROPPED (the kernel's buffer overflowed) discards the pending line,
    since keys of it were lost.
    """

    def __init__(self, classifier: KeystrokeClassifier, terminators: Iterable[str] = ("enter",)) -> None:
        self.classifier = classifier
        self.terminator_codes = frozenset(code for name in terminators for code in kc.TERMINATOR_KEYS[name])
        self._shift_down: set[int] = set()
        self.ignored_keys: Counter[int] = Counter()
        self.last_time: float | None = None

    def feed(self, event: RawEvent) -> list[Result]:
        if event.type == kc.EV_SYN:
            if event.code == kc.SYN_DROPPED:
                self._shift_down.clear()
                return self.classifier.reset("lost-events")
            return []
        if event.type != kc.EV_KEY:
            return []
        code, value = event.code, event.value
        if code in kc.SHIFT_KEYS:
            if value == kc.KEY_DOWN:
                self._shift_down.add(code)
            elif value == kc.KEY_UP:
                self._shift_down.discard(code)
            return []
        if value != kc.KEY_DOWN:
            return []
        now = event.time
        self.last_time = now
        if code in self.terminator_codes:
            return self.classifier.enter(now)
        char = kc.character(code, bool(self._shift_down))
        if char is None:
            self.ignored_keys[code] += 1
            return []
        return self.classifier.key(char, now)

    def feed_all(self, events: Iterable[RawEvent]) -> Iterator[Result]:
        for event in events:
            yield from self.feed(event)

    def expire(self, now: float) -> list[Result]:
        return self.classifier.expire(now)

    def reset(self) -> list[Result]:
        self._shift_down.clear()
        return self.classifier.reset("lost-events")


def decode_capture(data: bytes, max_gap: float, terminators: Iterable[str] = ("enter",),
                   record_size: int | None = None, min_length: int = 1) -> Iterator[Result]:
    """Every line in a raw capture, honouring the capture's own timestamps."""
    size = record_size or detect_record_size(data)
    decoder = KeyboardDecoder(KeystrokeClassifier(max_gap, min_length), terminators)
    yield from decoder.feed_all(parse_records(data, size))
    pending = decoder.classifier.pending
    if pending:
        yield Fragment(pending, False, "unterminated", decoder.last_time or 0.0)


__all__ = [
    "Burst", "Fragment", "KeyboardDecoder", "NotACapture", "RawEvent", "RecordStream",
    "decode_capture", "detect_record_size", "parse_records",
]
