"""Finding input devices and serial ports, and saying plainly why one cannot be used."""

from __future__ import annotations

import getpass
import glob
import grp
import os
from dataclasses import dataclass

from bookcorner.devices.config import KeyboardDeviceConfig
from bookcorner.devices.events import Text
from bookcorner.devices.keycodes import EV_KEY, KEY_1, KEY_A, KEY_ENTER, KEY_KPENTER
from bookcorner.i18n import N_

INPUT_ROOT = "/dev/input"
#: every input device's name and ids (world-readable)
SYSFS_INPUT = "/sys/class/input"
PI_UART = "/dev/serial0"


@dataclass(frozen=True)
class InputDeviceInfo:
    path: str
    by_id: tuple[str, ...] = ()
    name: str = ""
    vendor: str = ""
    product: str = ""
    is_keyboard: bool = False
    problem: Text | None = None


@dataclass(frozen=True)
class SerialPortInfo:
    path: str
    by_id: tuple[str, ...] = ()
    description: str = ""
    vendor: str = ""
    product: str = ""
    problem: Text | None = None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no such user in the password database (OSError from Python 3.13)
        return "USER"


def access_problem(path: str, mode: int = os.R_OK) -> Text | None:
    """Why this process cannot open ``path``, with the fix; None when it can."""
    if os.access(path, mode):
        return None
    try:
        group = grp.getgrgid(os.stat(path).st_gid).gr_name
    except (KeyError, OSError):
        group = "?"
    return Text.of(N_("no permission: the device belongs to group '{group}'; fix: sudo usermod -aG {group} {user}, then log out and in again"),
                   group=group, user=_user())


def _links(folder: str) -> dict[str, tuple[str, ...]]:
    """Real device path -> the stable symlinks pointing at it (by-id names)."""
    found: dict[str, list[str]] = {}
    for link in sorted(glob.glob(os.path.join(folder, "*"))):
        found.setdefault(os.path.realpath(link), []).append(link)
    return {path: tuple(links) for path, links in found.items()}


def _event_number(path: str) -> int:
    digits = path.rsplit("event", 1)[-1]
    return int(digits) if digits.isdigit() else 1 << 30


def sysfs_identity(path: str, sysfs: str = SYSFS_INPUT) -> tuple[str, str, str]:
    """The name, USB vendor and product of the input device at ``path`` as sysfs tells them
    (``""`` where it does not): sysfs is readable by every user, the device node is not."""
    folder = os.path.join(sysfs, os.path.basename(os.path.realpath(path)), "device")

    def read(name: str) -> str:
        try:
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as file:
                return file.read().strip()
        except OSError:
            return ""

    return read("name"), read("id/vendor").lower(), read("id/product").lower()


def list_input_devices(root: str = INPUT_ROOT, sysfs: str = SYSFS_INPUT) -> list[InputDeviceInfo]:
    paths = sorted(glob.glob(os.path.join(root, "event*")), key=_event_number)
    links = _links(os.path.join(root, "by-id"))
    devices = []
    for path in paths:
        by_id = links.get(os.path.realpath(path), ())
        problem = access_problem(path)
        if problem is not None:
            # what it is, from sysfs: a device the kiosk may not open is a problem only when it
            # is the one configured (the udev rules open the scanner alone, never the others)
            name, vendor, product = sysfs_identity(path, sysfs)
            devices.append(InputDeviceInfo(path, by_id, name=name, vendor=vendor, product=product, problem=problem))
            continue
        devices.append(_describe_input(path, by_id))
    return devices


def _describe_input(path: str, by_id: tuple[str, ...]) -> InputDeviceInfo:
    try:
        import evdev
    except ImportError:
        return InputDeviceInfo(path, by_id, problem=Text.of(N_("python-evdev is not installed")))
    try:
        device = evdev.InputDevice(path)
    except PermissionError:
        return InputDeviceInfo(path, by_id, problem=access_problem(path, os.R_OK | os.W_OK)
                               or Text.of(N_("no permission to open the device")))
    except OSError as error:
        return InputDeviceInfo(path, by_id, problem=Text.of(N_("cannot open: {error}"), error=error))
    try:
        keys = set(device.capabilities().get(EV_KEY, []))
        return InputDeviceInfo(
            path, by_id, name=device.name, vendor=f"{device.info.vendor:04x}", product=f"{device.info.product:04x}",
            is_keyboard=bool({KEY_ENTER, KEY_KPENTER} & keys) and bool({KEY_1, KEY_A} & keys),
        )
    finally:
        device.close()


def _named(device: InputDeviceInfo, match: KeyboardDeviceConfig) -> bool:
    """Whether the device's name and USB ids are those configured (all given must hold)."""
    if match.name and match.name.casefold() not in device.name.casefold():
        return False
    if match.vendor and match.vendor.lower() != device.vendor:
        return False
    return not (match.product and match.product.lower() != device.product)


def matches(device: InputDeviceInfo, match: KeyboardDeviceConfig) -> bool:
    """Whether the configuration selects this device (all given criteria must hold)."""
    if not match.configured:
        return False
    if match.path:
        return os.path.realpath(match.path) == os.path.realpath(device.path)
    return device.is_keyboard and _named(device, match)


def could_be(device: InputDeviceInfo, match: KeyboardDeviceConfig) -> bool:
    """Whether a device this user cannot open may be the one configured: its sysfs name and
    ids say so, or nothing is known of it."""
    if not match.configured:
        return False
    if match.path:
        return os.path.realpath(match.path) == os.path.realpath(device.path)
    return not (device.name or device.vendor or device.product) or _named(device, match)


def choose_keyboard(devices: list[InputDeviceInfo], match: KeyboardDeviceConfig) -> str | None:
    """The path of the first device ``match`` selects; None when none is plugged in.

    Raises PermissionError when one this user may not open could be it (not "not found":
    the fix is a group or a udev rule). Other keyboards it may not open are none of its
    business: with the kiosk's udev rules that is every keyboard but the scanner.
    """
    denied = False
    for device in devices:
        if device.problem is not None:
            denied = denied or could_be(device, match)
            continue
        if matches(device, match):
            return device.path
    if denied:
        raise PermissionError(next(device.path for device in devices if device.problem and could_be(device, match)))
    return None


def find_keyboard(match: KeyboardDeviceConfig, root: str = INPUT_ROOT, sysfs: str = SYSFS_INPUT) -> str | None:
    """The device path to open for ``match``; None when it is not plugged in.

    Raises PermissionError when the device is there but this user may not read it.
    """
    if match.path:
        if not os.path.exists(match.path):
            return None
        if access_problem(match.path) is not None:
            raise PermissionError(match.path)
        return match.path
    return choose_keyboard(list_input_devices(root, sysfs), match)


def list_serial_ports(extra: tuple[str, ...] = ()) -> list[SerialPortInfo]:
    """USB serial adapters and UARTs, plus ``extra`` paths (the configured port)."""
    from serial.tools import list_ports

    links = _links("/dev/serial/by-id")
    ports: dict[str, SerialPortInfo] = {}
    for port in list_ports.comports():
        real = os.path.realpath(port.device)
        ports[real] = SerialPortInfo(
            port.device, links.get(real, ()), port.description if port.description != "n/a" else "",
            f"{port.vid:04x}" if port.vid is not None else "", f"{port.pid:04x}" if port.pid is not None else "",
            access_problem(port.device, os.R_OK | os.W_OK),
        )
    for path in extra:
        if "://" in path or not os.path.exists(path):
            continue
        real = os.path.realpath(path)
        if real not in ports:
            ports[real] = SerialPortInfo(path, links.get(real, ()), problem=access_problem(path, os.R_OK | os.W_OK))
    return list(ports.values())


def serial_port_problem(path: str) -> Text | None:
    """Why the configured serial port cannot be used, with the fix; None when it can."""
    if "://" in path:
        return None
    if not os.path.exists(path):
        if path == PI_UART:
            return Text.of(N_("{port} does not exist: enable the UART (enable_uart=1 in /boot/firmware/config.txt, and no serial console: raspi-config, Interface Options, Serial Port), then reboot"), port=path)
        return Text.of(N_("{port} does not exist: is the reader plugged in?"), port=path)
    return access_problem(path, os.R_OK | os.W_OK)
