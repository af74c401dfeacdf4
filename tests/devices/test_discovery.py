"""Finding the configured scanner among the machine's input devices, when the kiosk's user may
open only the scanner (the udev rules hand it that one alone; found in the lab's scenario 2: with
the scanner unplugged the kiosk said "no permission, join the input group" instead of "not
connected", because it could not open the machine's other keyboards)."""

from __future__ import annotations

import os

import pytest

from bookcorner.devices.discovery import InputDeviceInfo, choose_keyboard, list_input_devices, sysfs_identity
from bookcorner.devices.events import Text

from .helpers import devices_config

SCANNER = {"vendor": "05e0", "product": "1200"}
DENIED = Text.of("no permission")


def scanner_match():
    return devices_config(scanner=SCANNER).scanner


def sysfs_device(sysfs, event: str, name: str, vendor: str, product: str) -> None:
    """An input device as the kernel shows it in /sys/class/input/eventN/device."""
    folder = sysfs / event / "device"
    (folder / "id").mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    (folder / "id" / "vendor").write_text(vendor + "\n")
    (folder / "id" / "product").write_text(product + "\n")


def test_sysfs_names_a_device_the_user_cannot_open(tmp_path):
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()
    sysfs_device(sysfs, "event3", "Symbol Technologies, Inc, 2008 Symbol Bar Code Scanner", "05E0", "1200")
    (dev / "event3").touch()
    assert sysfs_identity(str(dev / "event3"), str(sysfs)) == (
        "Symbol Technologies, Inc, 2008 Symbol Bar Code Scanner", "05e0", "1200")
    assert sysfs_identity(str(dev / "event9"), str(sysfs)) == ("", "", "")


def test_other_keyboards_closed_to_the_kiosk_are_not_a_permission_problem():
    machine = [
        InputDeviceInfo("/dev/input/event0", name="Power Button", vendor="0000", product="0001", problem=DENIED),
        InputDeviceInfo("/dev/input/event1", name="AT Translated Set 2 keyboard", vendor="0001", product="0001",
                        problem=DENIED),
    ]
    # the scanner unplugged: not connected (None), not "no permission"
    assert choose_keyboard(machine, scanner_match()) is None
    plugged = [*machine, InputDeviceInfo("/dev/input/event4", name="Symbol Bar Code Scanner", vendor="05e0",
                                         product="1200", is_keyboard=True)]
    assert choose_keyboard(plugged, scanner_match()) == "/dev/input/event4"


def test_the_scanner_itself_closed_to_the_kiosk_is_a_permission_problem():
    closed = InputDeviceInfo("/dev/input/event4", name="Symbol Bar Code Scanner", vendor="05e0", product="1200",
                             problem=DENIED)
    with pytest.raises(PermissionError) as raised:
        choose_keyboard([closed], scanner_match())
    assert raised.value.args == ("/dev/input/event4",)
    # nothing known of it (no sysfs): it may be the scanner, so still a permission problem
    unknown = InputDeviceInfo("/dev/input/event5", problem=DENIED)
    with pytest.raises(PermissionError):
        choose_keyboard([unknown], scanner_match())
    # selected by name: a device of another name is none of the kiosk's business
    by_name = devices_config(scanner={"name": "Honeywell"}).scanner
    assert choose_keyboard([closed], by_name) is None


def test_listing_reads_what_it_can_open_and_names_the_rest_from_sysfs(tmp_path):
    """The real listing over a device folder: as root every node opens (the rest is covered by
    the tests above); as another user a node it may not read is named from sysfs."""
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()
    sysfs_device(sysfs, "event1", "AT Translated Set 2 keyboard", "0001", "0001")
    (dev / "event1").touch(mode=0o000)
    if os.access(dev / "event1", os.R_OK):
        pytest.skip("this user opens every file (root): the sysfs naming is not reached")
    listed = list_input_devices(str(dev), str(sysfs))
    assert [device.path for device in listed] == [str(dev / "event1")]
    assert (listed[0].name, listed[0].vendor) == ("AT Translated Set 2 keyboard", "0001")
    assert choose_keyboard(listed, scanner_match()) is None
