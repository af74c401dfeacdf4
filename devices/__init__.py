"""Input devices: barcode scanners (evdev), RFID card readers (pyserial), the keyboard wedge.

Knows nothing of loans: it turns device input into :class:`Scan`, :class:`CardTap` and
:class:`DeviceStatus` events (``devices.events``). Start with :class:`devices.hub.Devices`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bookcorner.devices.events import CardTap, DeviceEvent, DeviceStatus, Scan, Sink, Text

if TYPE_CHECKING:
    from bookcorner.devices.hub import Devices

__all__ = ["CardTap", "DeviceEvent", "DeviceStatus", "Devices", "Scan", "Sink", "Text"]


def __getattr__(name: str) -> Any:
    # ``config`` imports devices.config at start-up; the readers load only when used.
    if name == "Devices":
        from bookcorner.devices.hub import Devices

        return Devices
    raise AttributeError(name)
