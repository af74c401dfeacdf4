"""The scanner reader thread on real input_event bytes through a pipe; UInput where it exists."""

import errno
import os
import time

import pytest

from bookcorner.devices.events import CardTap, DeviceStatus, Scan
from bookcorner.devices.evdev_reader import KeyboardReader, RawRecordSource

from .helpers import Collector, devices_config, wait_until
from .streams import Typist


class Plug:
    """Where the reader finds its device: a pipe the test writes input_event records into."""

    def __init__(self) -> None:
        self.plugged: list[int] = []
        self.errors: list[OSError] = []
        self.opened = 0

    def plug_in(self) -> int:
        read_end, write_end = os.pipe()
        self.plugged.append(read_end)
        return write_end

    def __call__(self):
        if self.errors:
            raise self.errors.pop(0)
        if not self.plugged:
            return None
        self.opened += 1
        return RawRecordSource(self.plugged.pop(0), path="/dev/input/by-id/usb-Test_Scanner-event-kbd", name="Test Scanner")


def start(role="scanner", **config):
    plug, sink = Plug(), Collector()
    section = "scanner" if role == "scanner" else "card_keyboard"
    reader = KeyboardReader(role, devices_config(**{section: {"name": "Test"}}, **config), sink, open_source=plug)
    return reader, plug, sink


def test_scans_arrive_as_events_and_a_replug_needs_no_restart():
    reader, plug, sink = start()
    device = plug.plug_in()
    reader.start()
    try:
        sink.wait_status("connected", "Test Scanner")
        os.write(device, Typist().type("9780306406157").type("LIB-0042").bytes())
        sink.wait_count(Scan, 2)
        assert sink.scans == ["9780306406157", "LIB-0042"]
        assert sink.of(Scan)[0].source == "scanner:name~Test"

        os.close(device)  # unplugged: ENODEV
        sink.wait_status("disconnected")
        wait_until(lambda: any("waiting" in s.text() for s in sink.of(DeviceStatus)))
        device = plug.plug_in()  # plugged back in
        sink.wait(lambda events: [e.state for e in events if isinstance(e, DeviceStatus)][-1] == "connected")
        os.write(device, Typist().type("AFTER-REPLUG").bytes())
        sink.wait_count(Scan, 3)
        assert sink.scans[-1] == "AFTER-REPLUG"
        assert reader.counters["connects"] == 2 and reader.counters["disconnects"] == 1
    finally:
        reader.stop()
        reader.join(2)
        os.close(device)
    assert not reader.is_alive()


def test_sustained_burst_through_the_live_reader():
    reader, plug, sink = start()
    device = plug.plug_in()
    reader.start()
    scans = [f"SCAN{i:02d}-{i * 37:07d}" for i in range(20)]
    typist = Typist()
    for scan in scans:
        typist.type(scan, per_key_us=3000)
    data = typist.bytes()
    try:
        for i in range(0, len(data), 4096):  # as fast as the pipe takes it
            os.write(device, data[i : i + 4096])
        sink.wait_count(Scan, 20)
        assert sink.scans == scans
        assert [len(s) for s in sink.scans] == [14] * 20
    finally:
        reader.stop()
        os.close(device)


def test_a_scanner_without_an_enter_suffix_is_explained():
    reader, plug, sink = start()
    device = plug.plug_in()
    reader.start()
    try:
        os.write(device, Typist(start_us=int(time.time() * 1e6)).type("12345", enter=False).bytes())
        status = sink.wait_status("warning")
        assert "12345" in status.text() and "suffix" in status.text()
        assert sink.scans == []
    finally:
        reader.stop()
        os.close(device)


def test_a_keyboard_card_reader_taps_cards_and_refuses_other_text():
    reader, plug, sink = start("card-keyboard")
    device = plug.plug_in()
    reader.start()
    try:
        os.write(device, Typist().type("0006547886", keypad=True).wait(2_000_000).type("HELLO").bytes())
        sink.wait_count(CardTap, 1)
        status = sink.wait_status("warning")
        assert sink.cards == ["0006547886"] and "HELLO" in status.text()
        assert sink.of(CardTap)[0].source == "card-keyboard:name~Test"
    finally:
        reader.stop()
        os.close(device)


@pytest.mark.parametrize(("error", "says"), [
    (PermissionError(errno.EACCES, "Permission denied"), "bookcorner udev-rules"),
    (OSError(errno.EBUSY, "Device or resource busy"), "grabbed"),
])
def test_devices_that_cannot_be_opened_are_explained(error, says):
    reader, plug, sink = start()
    plug.errors.append(error)
    reader.start()
    try:
        status = sink.wait_status("error")
        assert says in status.text()
    finally:
        reader.stop()


def test_a_failing_sink_does_not_stop_the_reader():
    calls = []

    def sink(event):
        calls.append(event)
        if isinstance(event, Scan) and event.text == "FIRST":
            raise RuntimeError("the screen was busy")

    plug = Plug()
    reader = KeyboardReader("scanner", devices_config(scanner={"name": "Test"}), sink, open_source=plug)
    device = plug.plug_in()
    reader.start()
    try:
        os.write(device, Typist().type("FIRST").type("SECOND").bytes())
        wait_until(lambda: [e.text for e in calls if isinstance(e, Scan)] == ["FIRST", "SECOND"])
        assert reader.counters["sink-errors"] == 1
    finally:
        reader.stop()
        os.close(device)


def test_stopping_is_prompt():
    reader, plug, sink = start()
    device = plug.plug_in()
    reader.start()
    sink.wait_status("connected")
    started = time.monotonic()
    reader.stop()
    reader.join(2)
    assert not reader.is_alive() and time.monotonic() - started < 0.2
    os.close(device)


UINPUT = "/dev/uinput"


@pytest.mark.skipif(not os.path.exists(UINPUT), reason="no /dev/uinput on this machine (no uinput kernel module, e.g. a container or CI VM)")
def test_a_virtual_scanner_through_the_kernel():
    evdev = pytest.importorskip("evdev")
    from bookcorner.devices.hub import Devices

    if not os.access(UINPUT, os.W_OK):
        pytest.skip(f"{UINPUT} exists but is not writable by this user")
    e = evdev.ecodes
    keys = [e.KEY_ENTER, e.KEY_LEFTSHIFT, *range(e.KEY_1, e.KEY_0 + 1), *range(e.KEY_Q, e.KEY_P + 1),
            *range(e.KEY_A, e.KEY_L + 1), *range(e.KEY_Z, e.KEY_M + 1), e.KEY_MINUS]
    with evdev.UInput({e.EV_KEY: keys}, name="bookcorner test scanner") as scanner:
        devices = Devices(devices_config(scanner={"name": "bookcorner test scanner"}))
        with devices:
            status = devices.get(timeout=3)
            while status is not None and not (isinstance(status, DeviceStatus) and status.state == "connected"):
                status = devices.get(timeout=3)
            assert status is not None, "the reader never found the virtual scanner"
            for code, shift in [(e.KEY_B, True), (e.KEY_K, False), (e.KEY_MINUS, False), (e.KEY_4, False), (e.KEY_2, False), (e.KEY_ENTER, False)]:
                if shift:
                    scanner.write(e.EV_KEY, e.KEY_LEFTSHIFT, 1)
                scanner.write(e.EV_KEY, code, 1)
                scanner.write(e.EV_KEY, code, 0)
                if shift:
                    scanner.write(e.EV_KEY, e.KEY_LEFTSHIFT, 0)
                scanner.syn()
            event = devices.get(timeout=3)
            while isinstance(event, DeviceStatus):
                event = devices.get(timeout=3)
            assert isinstance(event, Scan) and event.text == "Bk-42"
