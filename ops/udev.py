"""udev rules for a kiosk's configured devices: a stable name under /dev and access for
the kiosk's user to those devices alone.

The kiosk user is not put in the ``input`` group (that would let it read every keyboard
on the machine); instead each configured scanner or keyboard-style card reader, matched
by its USB vendor and product, is handed to that user. The serial reader keeps the
``dialout`` group (serial ports only); a USB-serial reader gets a stable name too.

Rendered from the configuration ([devices.scanner] / [devices.card_keyboard] vendor and
product) and installed as /etc/udev/rules.d/70-bookcorner.rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USB_ID = re.compile(r"^[0-9a-f]{4}$")
RULE_FILE = "70-bookcorner.rules"

#: a rule line: KEY{attr}OP"value", separated by commas
_PAIR = re.compile(r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]+)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"\s*')
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
              "ATTR", "ATTRS", "ENV", "TAG", "TAGS", "SYMLINK", "TEST", "PROGRAM", "RESULT", "CONST", "SYSCTL"}
ASSIGN_KEYS = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "ENV", "TAG", "RUN", "LABEL", "GOTO", "OPTIONS",
               "ATTR", "SYSCTL", "IMPORT", "SECLABEL"}


@dataclass(frozen=True)
class UsbDevice:
    """A device to name: its USB ids (4 lower-case hex digits each) and its /dev name."""

    vendor: str
    product: str
    link: str

    @classmethod
    def parse(cls, ids: str, link: str) -> UsbDevice:
        """``"10c4:ea60"`` (as lsusb shows it)."""
        vendor, _, product = ids.strip().lower().partition(":")
        if not (USB_ID.match(vendor) and USB_ID.match(product)):
            raise ValueError(f"{ids!r}: expected VENDOR:PRODUCT, 4 hex digits each, e.g. 10c4:ea60")
        return cls(vendor, product, link)


def devices_from_config(devices, reader_usb: str | None = None) -> tuple[list[UsbDevice], list[UsbDevice]]:
    """(input devices, serial devices) to name, from a [devices] configuration."""
    inputs = []
    for section, link in ((devices.scanner, "bookcorner-scanner"), (devices.card_keyboard, "bookcorner-card-keyboard")):
        if section.vendor and section.product:
            inputs.append(UsbDevice.parse(f"{section.vendor}:{section.product}", link))
    serial = [UsbDevice.parse(reader_usb, "bookcorner-reader")] if reader_usb else []
    return inputs, serial


def render_rules(inputs: list[UsbDevice], serial: list[UsbDevice], user: str = "bookcorner") -> str:
    lines = ["# bookcorner's devices (written by `bookcorner udev-rules`; run it again after changing",
             "# [devices] in the configuration). Only these devices are opened to the kiosk user.", ""]
    for device in inputs:
        # only the keyboard interface: a scanner often also shows a mouse or consumer-control one.
        # The input device's own ids (id/vendor, id/product), as the kiosk matches them: the
        # USB ids for a USB scanner, and there for one without a USB parent too (Bluetooth,
        # a uinput device); ATTRS{idVendor} is the USB device's alone (found by the lab).
        lines.append(f'SUBSYSTEM=="input", KERNEL=="event*", ENV{{ID_INPUT_KEYBOARD}}=="1", '
                     f'ATTRS{{id/vendor}}=="{device.vendor}", ATTRS{{id/product}}=="{device.product}", '
                     f'OWNER="{user}", GROUP="input", MODE="0660", SYMLINK+="{device.link}"')
    for device in serial:
        lines.append(f'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{device.vendor}", ATTRS{{idProduct}}=="{device.product}", '
                     f'OWNER="{user}", GROUP="dialout", MODE="0660", SYMLINK+="{device.link}"')
    if not inputs and not serial:
        lines.append("# no device is configured by its USB ids: nothing to do")
    return "\n".join(lines) + "\n"


def parse_rules(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    """Each rule as (key, attribute, operator, value) tuples; raises ValueError on a line
    udev would not read (an unknown key, a match key used to assign, unquoted values)."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pairs = []
        for part in _split(line):
            found = _PAIR.fullmatch(part)
            if not found:
                raise ValueError(f"line {number}: cannot read {part!r}")
            key, attr, op, value = found["key"], found["attr"], found["op"], found["value"]
            if op in ("==", "!=") and key not in MATCH_KEYS:
                raise ValueError(f"line {number}: {key} cannot be matched")
            if op not in ("==", "!=") and key not in ASSIGN_KEYS:
                raise ValueError(f"line {number}: {key} cannot be assigned")
            if key == "MODE" and not re.fullmatch(r"0[0-7]{3}", value):
                raise ValueError(f"line {number}: MODE {value!r} is not an octal mode")
            pairs.append((key, attr, op, value))
        rules.append(pairs)
    return rules


def _split(line: str) -> list[str]:
    """A rule's comma-separated pairs (commas inside quotes belong to the value)."""
    parts, current, quoted = [], "", False
    for char in line:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    if quoted:
        raise ValueError(f"unbalanced quotes in {line!r}")
    parts.append(current)
    return parts
