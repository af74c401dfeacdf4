"""Real byte streams for the device tests: input_event records as the kernel writes them."""

from __future__ import annotations

import struct

from bookcorner.devices import keycodes as kc

RECORD = struct.Struct("<qqHHi")  # struct input_event on 64-bit Linux
RECORD_32 = struct.Struct("<IIHHi")
EPOCH_US = 1_700_000_000_000_000  # an ordinary wall-clock time, in microseconds

# character -> (key code, with Shift); the main block, as a scanner set to a US layout types.
KEYS: dict[str, tuple[int, bool]] = {}
for _code, (_plain, _shifted) in kc.US_LAYOUT.items():
    if _code in (55, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 98, 117, 121):
        continue  # keypad: only on request
    KEYS.setdefault(_plain, (_code, False))
    KEYS.setdefault(_shifted, (_code, True))
KEYPAD_DIGITS = {str(d): c for d, c in zip(range(10), (82, 79, 80, 81, 75, 76, 77, 71, 72, 73))}
TYPABLE = "".join(sorted(KEYS))


def record(us: int, type_: int, code: int, value: int, layout: struct.Struct = RECORD) -> bytes:
    return layout.pack(us // 1_000_000, us % 1_000_000, type_, code, value)


class Typist:
    """Writes what a USB keyboard device reports: MSC scan code, key, SYN, per key press."""

    def __init__(self, start_us: int = EPOCH_US, layout: struct.Struct = RECORD) -> None:
        self.now = start_us
        self.layout = layout
        self.out = bytearray()

    def _press(self, code: int, value: int) -> None:
        self.out += record(self.now, kc.EV_MSC, 4, 0x70000 + code, self.layout)
        self.out += record(self.now, kc.EV_KEY, code, value, self.layout)
        self.out += record(self.now, kc.EV_SYN, kc.SYN_REPORT, 0, self.layout)

    def tap(self, code: int, shift: bool = False, hold_us: int = 500) -> None:
        if shift:
            self._press(kc.KEY_LEFTSHIFT, 1)
        self._press(code, 1)
        self.now += hold_us
        self._press(code, 0)
        if shift:
            self._press(kc.KEY_LEFTSHIFT, 0)

    def type(self, text: str, per_key_us: int = 3000, enter: bool = True, keypad: bool = False,
             terminator: int = kc.KEY_ENTER) -> Typist:
        for char in text:
            if keypad and char in KEYPAD_DIGITS:
                self.tap(KEYPAD_DIGITS[char])
            else:
                code, shift = KEYS[char]
                self.tap(code, shift)
            self.now += per_key_us - 500
        if enter:
            self.tap(terminator)
            self.now += per_key_us - 500
        return self

    def wait(self, us: int) -> Typist:
        self.now += us
        return self

    def bytes(self) -> bytes:
        return bytes(self.out)
