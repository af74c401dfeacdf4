"""`bookcorner devices ...` as a technician runs it on the Pi."""

import os
import threading
import time

import pytest

from bookcorner.cli import main
from bookcorner.devices.discovery import InputDeviceInfo, matches, serial_port_problem
from bookcorner.devices.protocols.pn532 import ACK, information_frame
from bookcorner.devices.protocols.rdm6300 import rdm6300_frame

from .helpers import devices_config
from .streams import RECORD_32, Typist

CARD = bytes.fromhex("010063E9AE")


@pytest.fixture
def capture(tmp_path):
    def write(data: bytes, name="capture.bin"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return write


@pytest.fixture
def kiosk_toml(tmp_path):
    def write(text: str):
        path = tmp_path / "kiosk.toml"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def test_replay_scanner_prints_one_scan_per_line(capture, capsys):
    typist = Typist().type("9780306406157").type("LIB-0042").wait(1_000_000).type("97803", enter=False).wait(500_000).type("BOOK-7")
    assert main(["devices", "replay-scanner", capture(typist.bytes())]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["9780306406157", "LIB-0042", "BOOK-7"]
    assert "partial scan dropped" in err and "'97803'" in err


def test_replay_scanner_of_a_32_bit_pi_capture(capture, capsys):
    assert main(["devices", "replay-scanner", capture(Typist(layout=RECORD_32).type("ZERO-W").bytes())]) == 0
    assert capsys.readouterr().out == "ZERO-W\n"


def test_replay_scanner_gap_can_be_overridden(capture, capsys):
    slow = Typist().type("SLOW1", per_key_us=80_000).bytes()
    assert main(["devices", "replay-scanner", capture(slow)]) == 1
    assert main(["devices", "replay-scanner", "--max-gap-ms", "100", capture(slow)]) == 0
    assert capsys.readouterr().out == "SLOW1\n"


@pytest.mark.parametrize(("data", "says"), [
    (b"hello, this is text\n", "not a capture of input events"),
    (Typist().type("NOENTER", enter=False).bytes(), "no scans found"),
])
def test_replay_scanner_refuses_with_a_reason(capture, capsys, data, says):
    assert main(["devices", "replay-scanner", capture(data)]) == 1
    assert says in capsys.readouterr().err


def test_replay_of_a_missing_file(capsys, tmp_path):
    assert main(["devices", "replay-scanner", str(tmp_path / "nope.bin")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_replay_reader_prints_one_id_per_valid_frame(capture, capsys):
    bad = bytearray(rdm6300_frame(CARD))
    bad[12] = ord("6")
    data = b"\x00\xffnoise" + rdm6300_frame(CARD) * 2 + bytes(bad) + rdm6300_frame(bytes.fromhex("1A2B3C4D5E"))[:7]
    assert main(["devices", "replay-reader", "--protocol", "rdm6300", capture(data)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["0006547886", "0006547886"]
    assert [line.split(":")[0] for line in err.splitlines()] == ["rejected"] * 3
    assert "bad checksum 26 (expected 25)" in err and "truncated" in err


def test_replay_reader_with_hex_ids_and_the_wrong_protocol(capture, capsys):
    path = capture(rdm6300_frame(CARD))
    assert main(["devices", "replay-reader", "--protocol", "rdm6300", "--card-id-format", "hex", path]) == 0
    assert capsys.readouterr().out == "0063E9AE\n"
    assert main(["devices", "replay-reader", "--protocol", "id12", path]) == 1
    assert "wrong protocol or baud rate" in capsys.readouterr().err


def test_replay_reader_ascii_and_pn532(capture, capsys):
    assert main(["devices", "replay-reader", "--protocol", "ascii", capture(b"0006547886\r\nxyz\r\n")]) == 0
    assert capsys.readouterr().out == "0006547886\n"
    answer = ACK + information_frame(0xD5, bytes.fromhex("4B 01 01 00 04 08 04 DE AD BE EF"))
    assert main(["devices", "replay-reader", "--protocol", "pn532", capture(ACK + information_frame(0xD5, b"\x4b\x00") + answer)]) == 0
    assert capsys.readouterr().out == "DEADBEEF\n"


def test_list_on_a_machine_with_no_devices(capsys, monkeypatch):
    monkeypatch.delenv("BOOKCORNER_CONFIG", raising=False)
    assert main(["devices", "list"]) == 0
    out = capsys.readouterr().out
    assert "Input devices:" in out and "keyboard wedge" in out


def test_list_explains_what_the_configuration_selects_but_cannot_find(capsys, kiosk_toml):
    path = kiosk_toml('[devices.scanner]\npath = "/dev/input/by-id/usb-Missing-event-kbd"\n'
                      '[devices.reader]\nprotocol = "rdm6300"\nport = "/dev/serial0"\n')
    if os.path.exists("/dev/serial0"):
        pytest.skip("this machine has a /dev/serial0")
    assert main(["--config", path, "devices", "list"]) == 1
    out, err = capsys.readouterr()
    assert "nothing matches /dev/input/by-id/usb-Missing-event-kbd" in err
    assert "enable_uart=1" in out


def test_a_broken_configuration_is_refused(capsys, kiosk_toml):
    assert main(["--config", kiosk_toml('[devices.reader]\nprotocol = "rfid"\n'), "devices", "list"]) == 2
    assert "devices.reader.protocol" in capsys.readouterr().err


def test_watch_shows_taps_from_a_reader_on_a_serial_port(capsys, kiosk_toml):
    master, slave = os.openpty()
    path = kiosk_toml(f'[devices.reader]\nprotocol = "rdm6300"\nport = "{os.ttyname(slave)}"\n')

    def card_reader():
        time.sleep(0.15)
        os.write(master, rdm6300_frame(CARD) * 3)

    threading.Thread(target=card_reader, daemon=True).start()
    try:
        assert main(["--config", path, "devices", "watch", "--duration", "0.4"]) == 0
    finally:
        os.close(master)
        os.close(slave)
    out, err = capsys.readouterr()
    assert "connected: card reader" in out
    assert out.count("card  0006547886") == 1
    assert "frames=3" in err and "taps=1" in err


def test_discovery_matches_by_path_name_and_usb_ids(tmp_path):
    scanner = InputDeviceInfo("/dev/input/event3", name="Honeywell Scanner Keyboard", vendor="0c2e", product="0b61", is_keyboard=True)
    mouse = InputDeviceInfo("/dev/input/event4", name="Logitech Mouse", vendor="046d", product="c077")
    assert matches(scanner, devices_config(scanner={"name": "honeywell"}).scanner)
    assert matches(scanner, devices_config(scanner={"vendor": "0C2E", "product": "0b61"}).scanner)
    assert not matches(scanner, devices_config(scanner={"name": "honeywell", "vendor": "05e0"}).scanner)
    assert not matches(mouse, devices_config(scanner={"vendor": "046d"}).scanner)  # not a keyboard
    assert not matches(scanner, devices_config().scanner)  # nothing configured: never grab a keyboard
    link = tmp_path / "usb-Honeywell-event-kbd"
    link.symlink_to("/dev/input/event3")
    assert matches(scanner, devices_config(scanner={"path": str(link)}).scanner)


def test_serial_port_problems_say_what_to_do(tmp_path):
    assert serial_port_problem("loop://") is None
    assert "does not exist" in serial_port_problem(str(tmp_path / "ttyUSB7")).text()
    if not os.path.exists("/dev/serial0"):
        assert "enable_uart=1" in serial_port_problem("/dev/serial0").text()
