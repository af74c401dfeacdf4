"""Linux input event codes (linux/input-event-codes.h) and the US keyboard layout scanners use.

Integer codes, not names: some codes have several names in python-evdev, and decoding must
not need evdev at all (replaying a capture on a laptop). The numbers are kernel ABI.
"""

from __future__ import annotations

EV_SYN = 0x00
EV_KEY = 0x01
EV_MSC = 0x04
EV_MAX = 0x1F
SYN_REPORT = 0
SYN_DROPPED = 3

KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2

KEY_TAB = 15
KEY_ENTER = 28
KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
KEY_KPENTER = 96
SHIFT_KEYS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
TERMINATOR_KEYS = {"enter": (KEY_ENTER, KEY_KPENTER), "tab": (KEY_TAB,)}

KEY_1 = 2
KEY_A = 30

# code: (character, character with Shift)
_MAIN = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"),
    7: ("6", "^"), 8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"),
    12: ("-", "_"), 13: ("=", "+"),
    26: ("[", "{"), 27: ("]", "}"), 39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"),
    43: ("\\", "|"), 51: (",", "<"), 52: (".", ">"), 53: ("/", "?"), 57: (" ", " "),
}
_LETTERS = {
    16: "q", 17: "w", 18: "e", 19: "r", 20: "t", 21: "y", 22: "u", 23: "i", 24: "o", 25: "p",
    30: "a", 31: "s", 32: "d", 33: "f", 34: "g", 35: "h", 36: "j", 37: "k", 38: "l",
    44: "z", 45: "x", 46: "c", 47: "v", 48: "b", 49: "n", 50: "m",
}
# Keypad keys type the same with or without Shift; scanners use them for digits.
_KEYPAD = {
    82: "0", 79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8", 73: "9",
    83: ".", 74: "-", 78: "+", 55: "*", 98: "/", 117: "=", 121: ",",
}

US_LAYOUT: dict[int, tuple[str, str]] = {
    **_MAIN,
    **{code: (letter, letter.upper()) for code, letter in _LETTERS.items()},
    **{code: (char, char) for code, char in _KEYPAD.items()},
}


def character(code: int, shifted: bool) -> str | None:
    """The character a key types, or None for keys that type nothing (F1, Ctrl...)."""
    pair = US_LAYOUT.get(code)
    if pair is None:
        return None
    return pair[1] if shifted else pair[0]
