"""Serial card readers end to end: loop:// for readers that push, a pty and a fake PN532."""

import errno

import serial

from bookcorner.devices.events import CardTap, DeviceStatus
from bookcorner.devices.protocols.id12 import id12_frame
from bookcorner.devices.protocols.rdm6300 import rdm6300_frame
from bookcorner.devices.serial_reader import SerialCardReader

from .helpers import Collector, FakePn532, devices_config, wait_until

CARD = bytes.fromhex("010063E9AE")
OTHER = bytes.fromhex("1A2B3C4D5E")


class Clock:
    """The reader's monotonic clock, moved by the test instead of by sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def start_push_reader(protocol="rdm6300", **options):
    port = serial.serial_for_url("loop://", timeout=0.02)
    config = devices_config(reader={"protocol": protocol, "port": "loop://"}, card_hold_off_ms=500)
    sink, clock = Collector(), Clock()
    reader = SerialCardReader(config, sink, open_port=lambda: port, clock=clock, **options)
    reader.start()
    sink.wait_status("connected")
    return reader, port, sink, clock


def test_a_card_held_on_an_rdm6300_is_one_tap_and_a_second_presentation_another():
    reader, port, sink, clock = start_push_reader()
    try:
        for frames in range(1, 9):  # the RDM6300 repeats the frame while the card lies on it
            port.write(rdm6300_frame(CARD))
            wait_until(lambda: reader.counters["frames"] == frames)
            clock.now += 0.1
        assert sink.cards == ["0006547886"]
        clock.now += 0.6  # the card was taken away for longer than the hold-off
        port.write(rdm6300_frame(CARD))
        sink.wait_count(CardTap, 2)
        assert sink.cards == ["0006547886", "0006547886"]
        assert sink.of(CardTap)[0].source == "reader:loop://"
    finally:
        reader.stop()
        reader.join(2)
    assert not reader.is_alive()


def test_another_card_is_never_hidden_by_the_hold_off():
    reader, port, sink, clock = start_push_reader()
    try:
        port.write(rdm6300_frame(CARD) + rdm6300_frame(OTHER))
        sink.wait_count(CardTap, 2)
        assert sink.cards == ["0006547886", "0725372254"]
    finally:
        reader.stop()


def test_bad_checksums_are_counted_and_reported_when_asked():
    reader, port, sink, clock = start_push_reader("id12", report_rejects=True)
    try:
        bad = bytearray(id12_frame(CARD))
        bad[3] = ord("F")
        port.write(b"\x01\x02" + bytes(bad) + id12_frame(CARD))
        sink.wait_count(CardTap, 1)
        wait_until(lambda: reader.counters["rejected-checksum"] == 1)
        assert sink.cards == ["0006547886"]
        assert any("checksum" in s.text() for s in sink.of(DeviceStatus) if s.state == "warning")
    finally:
        reader.stop()


def test_a_missing_reader_is_waited_for_and_a_permission_problem_explained():
    attempts = []

    def open_port():
        attempts.append(1)
        if len(attempts) == 1:
            raise serial.SerialException(errno.ENOENT, "could not open port /dev/ttyUSB0")
        if len(attempts) == 2:
            raise serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0: Permission denied")
        return serial.serial_for_url("loop://", timeout=0.02)

    sink = Collector()
    config = devices_config(reader={"protocol": "rdm6300", "port": "/dev/ttyUSB0"})
    reader = SerialCardReader(config, sink, open_port=open_port)
    reader.start()
    try:
        sink.wait_status("connected")
        states = [(s.state, s.text()) for s in sink.of(DeviceStatus)]
        assert states[0] == ("disconnected", "card reader /dev/ttyUSB0: not connected, waiting for it")
        assert states[1][0] == "error" and "dialout" in states[1][1]
    finally:
        reader.stop()


def test_pn532_polled_over_a_pty_unplugged_and_plugged_back():
    chip = FakePn532()
    chip.start()
    current = {"chip": chip}
    config = devices_config(reader={"protocol": "pn532", "port": chip.path, "poll_interval_ms": 5}, card_hold_off_ms=300)
    sink, clock = Collector(), Clock()

    def open_port():
        return serial.serial_for_url(current["chip"].path, baudrate=115200, timeout=0.02)

    reader = SerialCardReader(config, sink, open_port=open_port, clock=clock)
    reader.start()
    try:
        status = sink.wait_status("connected")
        assert "PN532 1.6" in status.text()
        assert chip.commands[:3] == [0x14, 0x02, 0x32]  # SAMConfiguration, firmware, retries

        chip.card = bytes.fromhex("04A224E2C95E80")
        sink.wait_count(CardTap, 1)
        polls = len(chip.commands)
        wait_until(lambda: len(chip.commands) > polls + 5)  # still lying on the reader: one tap
        assert sink.cards == ["04A224E2C95E80"]
        chip.card = None  # taken away: once two more polls came in, the reader has seen the empty field
        polls = len(chip.commands)
        wait_until(lambda: len(chip.commands) >= polls + 2)
        clock.now += 1.0
        chip.card = bytes.fromhex("DEADBEEF")
        sink.wait_count(CardTap, 2)
        assert sink.cards == ["04A224E2C95E80", "DEADBEEF"]
        assert chip.bad_frames == 0

        chip.unplug()  # a child pulls the USB adapter
        sink.wait_status("disconnected")
        replugged = FakePn532()
        replugged.start()
        current["chip"] = replugged
        sink.wait(lambda events: [e.state for e in events if isinstance(e, DeviceStatus)][-1:] == ["connected"])
        replugged.card = bytes.fromhex("CAFEBABE")
        clock.now += 1.0
        sink.wait_count(CardTap, 3)
        assert sink.cards[-1] == "CAFEBABE"
        assert reader.counters["disconnects"] == 1
    finally:
        reader.stop()
        reader.join(2)
        current["chip"].unplug()
    assert not reader.is_alive()


def test_a_pn532_that_does_not_answer_is_reported_with_what_to_check():
    chip = FakePn532()
    chip.silent = True
    chip.start()
    config = devices_config(reader={"protocol": "pn532", "port": chip.path})
    sink = Collector()
    reader = SerialCardReader(config, sink, open_port=lambda: serial.serial_for_url(chip.path, timeout=0.02))
    reader.start()
    try:
        status = sink.wait_status("error")
        assert "TX/RX" in status.text()
        chip.silent = False  # wiring fixed: the next attempt wakes it
        sink.wait_status("connected")
    finally:
        reader.stop()
        reader.join(2)
        chip.unplug()
