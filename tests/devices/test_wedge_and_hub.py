"""The keyboard wedge (keystrokes in the terminal) and the hub the kiosk starts."""

from bookcorner.devices import CardTap, Devices, Scan
from bookcorner.devices.keystrokes import Fragment
from bookcorner.devices.wedge import KeyboardWedge

from .helpers import Collector, devices_config


def type_into(wedge, text, start, per_key, enter=True):
    handed_back = []
    now = start
    for char in text:
        handed_back += wedge.key(char, now)
        now += per_key
    if enter:
        handed_back += wedge.enter(now)
    return handed_back, now


def test_a_scanner_typing_into_the_terminal_becomes_a_scan_and_a_person_keeps_their_keys():
    sink = Collector()
    wedge = KeyboardWedge(devices_config(), sink)
    handed_back, now = type_into(wedge, "9780306406157", 0.0, 0.004)
    assert handed_back == [] and sink.scans == ["9780306406157"]

    handed_back, now = type_into(wedge, "Mia", now + 2.0, 0.200)
    handed_back += wedge.expire(now + 0.1)
    assert "".join(f.text for f in handed_back) == "Mia"
    assert handed_back[-1].enter
    assert sink.scans == ["9780306406157"]


def test_a_keyboard_style_card_reader_in_the_terminal_gives_the_same_card_id():
    sink = Collector()
    wedge = KeyboardWedge(devices_config(), sink, clock=lambda: 0.0)
    type_into(wedge, "0006547886", 10.0, 0.003)
    type_into(wedge, "0006547886", 10.5, 0.003)  # typed again while the card is still there
    type_into(wedge, "0006547886", 12.0, 0.003)
    assert sink.cards == ["0006547886", "0006547886"]
    assert all(e.source == "wedge:terminal" for e in sink.events)


def test_card_ids_in_hex_when_configured():
    sink = Collector()
    wedge = KeyboardWedge(devices_config(card_id_format="hex"), sink)
    type_into(wedge, "0006547886", 1.0, 0.003)
    assert sink.cards == ["0063E9AE"]


def test_keys_held_back_can_be_handed_back_at_once_as_a_persons_typing():
    sink = Collector()
    wedge = KeyboardWedge(devices_config(), sink)
    for at, digit in enumerate("2468"):
        wedge.key(digit, 1.0 + at * 0.003)  # as fast as a scanner: held, to see whether it is one
    assert wedge.release(enter=True, now=1.02) == [Fragment("2468", True, "short", 1.02)]
    assert not wedge.holding and sink.events == []
    assert wedge.release(now=1.03) == []


def test_keys_held_back_are_released_after_the_gap():
    sink = Collector()
    wedge = KeyboardWedge(devices_config(), sink)
    assert wedge.key("q", 1.0) == []
    assert wedge.holding
    assert wedge.expire(1.01) == []
    assert wedge.expire(1.2) == [Fragment("q", False, "unterminated", 1.0)]
    assert not wedge.holding


def test_a_machine_with_no_devices_starts_no_reader_and_still_takes_input():
    devices = Devices(devices_config())
    with devices:
        assert devices.readers == []
        devices.simulate_scan("9780306406157")
        devices.simulate_tap("0006547886")
        type_into(devices.wedge(), "LIB-0001", 5.0, 0.003)
        events = [devices.get(1), devices.get(1), devices.get(1)]
        assert devices.get(0.01) is None
    assert [type(e) for e in events] == [Scan, CardTap, Scan]
    assert events[2].text == "LIB-0001"
    assert devices.diagnostics() == {}


def test_the_hub_starts_one_reader_per_configured_device_and_stops_them():
    sink = Collector()
    config = devices_config(scanner={"path": "/nonexistent/by-id/scanner"},
                            reader={"protocol": "rdm6300", "port": "/nonexistent/ttyUSB9"})
    devices = Devices(config, sink).start()
    try:
        assert len(devices.readers) == 2
        sink.wait(lambda events: len([e for e in events if e.state == "disconnected"]) == 2)
        assert {e.source for e in sink.events} == {"scanner:/nonexistent/by-id/scanner", "reader:/nonexistent/ttyUSB9"}
    finally:
        readers = devices.readers
        devices.stop()
    assert not any(reader.is_alive() for reader in readers)
