"""The ``[devices]`` section of the kiosk configuration.

Defaults suit a machine with no devices at all: no scanner is grabbed, no serial reader is
opened, and scans and keyboard-style card readers arrive as keystrokes in the terminal
(the keyboard wedge). ``config/kiosk.example.toml`` documents every option.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

Milliseconds = Annotated[int, msgspec.Meta(ge=1, le=60_000)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
UsbId = Annotated[str, msgspec.Meta(pattern=r"^([0-9A-Fa-f]{4})?$")]

# How a card number arrives as text (keyboard-style readers, the wedge, ASCII serial readers).
TypedFormat = Literal["em4100-decimal", "em4100-hex", "uid-hex"]
# How an EM4100 card id is written in the rest of the program.
CardIdFormat = Literal["decimal10", "hex"]
Protocol = Literal["none", "rdm6300", "id12", "ascii", "pn532"]

DEFAULT_BAUD = {"rdm6300": 9600, "id12": 9600, "ascii": 9600, "pn532": 115200, "none": 9600}


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class KeyboardDeviceConfig(_Section):
    """An evdev keyboard device: the barcode scanner (and the base of a card reader that types)."""

    path: str = ""
    name: str = ""
    vendor: UsbId = ""
    product: UsbId = ""
    grab: bool = True
    min_length: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    terminators: list[Literal["enter", "tab"]] = msgspec.field(default_factory=lambda: ["enter"])

    @property
    def configured(self) -> bool:
        return bool(self.path or self.name or self.vendor or self.product)


class CardKeyboardConfig(KeyboardDeviceConfig):
    """A USB card reader that types the card number like a keyboard."""

    typed_format: TypedFormat = "em4100-decimal"


class ReaderConfig(_Section):
    """A serial RFID card reader."""

    protocol: Protocol = "none"
    port: str = "/dev/serial0"
    baud: Annotated[int, msgspec.Meta(ge=0, le=4_000_000)] = 0
    poll_interval_ms: Milliseconds = 100
    reconnect_interval_s: Seconds = 2.0
    ascii_format: TypedFormat = "em4100-decimal"

    @property
    def baudrate(self) -> int:
        return self.baud or DEFAULT_BAUD[self.protocol]


class WedgeConfig(_Section):
    """Keystrokes in the terminal from devices that are plain keyboards (no grab)."""

    enabled: bool = True
    min_length: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    card_pattern: str = r"^[0-9]{10}$"
    card_format: TypedFormat = "em4100-decimal"

    def __post_init__(self) -> None:
        try:
            re.compile(self.card_pattern)
        except re.error as error:
            raise ValueError(f"card_pattern is not a valid regular expression: {error}") from None


class DevicesConfig(_Section):
    card_id_format: CardIdFormat = "decimal10"
    max_key_gap_ms: Annotated[int, msgspec.Meta(ge=5, le=1000)] = 50
    card_hold_off_ms: Milliseconds = 1000
    rescan_interval_s: Seconds = 2.0
    scanner: KeyboardDeviceConfig = msgspec.field(default_factory=KeyboardDeviceConfig)
    card_keyboard: CardKeyboardConfig = msgspec.field(default_factory=CardKeyboardConfig)
    reader: ReaderConfig = msgspec.field(default_factory=ReaderConfig)
    wedge: WedgeConfig = msgspec.field(default_factory=WedgeConfig)

    @property
    def max_key_gap(self) -> float:
        return self.max_key_gap_ms / 1000

    @property
    def card_hold_off(self) -> float:
        return self.card_hold_off_ms / 1000
