"""The normalised input events the rest of the program sees, whatever device produced them.

Every event is a small frozen value. ``time`` is ``time.monotonic()`` when the input was
complete (the Pi's wall clock is not trusted, see PLATFORM.md); the kiosk stamps events with
its own clocks when it records them. ``source`` is ``role:device``, for example
``scanner:/dev/input/by-id/usb-Scanner-event-kbd``, ``reader:/dev/serial0`` or
``wedge:terminal``; the part before the colon says what kind of device it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bookcorner.i18n import _, translate


@dataclass(frozen=True)
class Text:
    """A user-facing message kept untranslated until it is shown, in whatever language.

    ``msgid`` is an English source string marked with ``N_()`` where it is written;
    ``args`` fill its ``{placeholders}``.
    """

    msgid: str
    args: tuple[tuple[str, str | Text], ...] = ()

    @classmethod
    def of(cls, msgid: str, **args: object) -> Text:
        """``args`` that are Text themselves are worded in the same language as the message."""
        return cls(msgid, tuple((key, value if isinstance(value, Text) else str(value)) for key, value in args.items()))

    def text(self, language: str | None = None) -> str:
        """The message in ``language`` (default: the active language)."""
        template = _(self.msgid) if language is None else translate(self.msgid, language)
        return template.format(**{key: value.text(language) if isinstance(value, Text) else value
                                  for key, value in self.args})

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Scan:
    """A complete barcode read: the characters between the start and the terminator."""

    text: str
    source: str
    time: float


@dataclass(frozen=True)
class CardTap:
    """A card presented to a reader, once per tap (a card left on the reader is one tap)."""

    card_id: str
    source: str
    time: float


DeviceState = Literal["connected", "disconnected", "warning", "error"]


@dataclass(frozen=True)
class DeviceStatus:
    """A device came or went, or something a person should know about it happened.

    ``state`` is ``connected`` or ``disconnected`` when the device itself changed,
    ``warning`` when an input was refused (a partial scan, an unreadable card), ``error``
    when the device cannot be used until someone acts (permissions, wiring, a busy port).
    """

    source: str
    state: DeviceState
    message: Text
    time: float = field(compare=False, default=0.0)

    def text(self, language: str | None = None) -> str:
        return self.message.text(language)


DeviceEvent = Scan | CardTap | DeviceStatus
Sink = Callable[[DeviceEvent], None]
