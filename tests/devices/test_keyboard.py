"""The scanner's decoder on real input_event records, as `cat /dev/input/eventN` captures them."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookcorner.devices import keycodes as kc
from bookcorner.devices.keyboard import (
    KeyboardDecoder, NotACapture, RawEvent, RecordStream, decode_capture, detect_record_size, parse_records,
)
from bookcorner.devices.keystrokes import Burst, Fragment, KeystrokeClassifier

from .streams import EPOCH_US, RECORD, RECORD_32, TYPABLE, Typist, record

GAP = 0.050


def lines(data, **options):
    return [r.text for r in decode_capture(data, GAP, **options) if isinstance(r, Burst)]


def test_an_isbn_scan_with_enter():
    assert lines(Typist().type("9780306406157").bytes()) == ["9780306406157"]


def test_shift_gives_capitals_and_symbols():
    assert lines(Typist().type("Lib-00042/B!").bytes()) == ["Lib-00042/B!"]


def test_keypad_digits_and_keypad_enter():
    data = Typist().type("0006547886", keypad=True, terminator=kc.KEY_KPENTER).bytes()
    assert lines(data) == ["0006547886"]


def test_tab_terminates_only_when_configured():
    data = Typist().type("BOOK1", terminator=kc.KEY_TAB).wait(1_000_000).bytes()
    assert lines(data) == []
    assert lines(data, terminators=("enter", "tab")) == ["BOOK1"]


def test_a_scan_without_enter_is_reported_not_lost_silently():
    results = list(decode_capture(Typist().type("12345", enter=False).bytes(), GAP))
    assert results == [Fragment("12345", False, "unterminated", pytest.approx((EPOCH_US + 4 * 3000) / 1e6))]


def test_a_cr_lf_suffix_makes_one_scan():
    typist = Typist().type("4006381333931")
    typist.tap(kc.KEY_ENTER)
    assert lines(typist.bytes()) == ["4006381333931"]


def test_shift_state_belongs_to_one_device():
    """A Shift held on the librarian's keyboard must not capitalise the scanner's letters."""
    keyboard = KeyboardDecoder(KeystrokeClassifier(GAP))
    scanner = KeyboardDecoder(KeystrokeClassifier(GAP))
    keyboard.feed(RawEvent(1, 0, kc.EV_KEY, kc.KEY_RIGHTSHIFT, 1))
    results = []
    for event in parse_records(Typist(start_us=1_000_000).type("abc").bytes()):
        results += scanner.feed(event)
    assert [r.text for r in results] == ["abc"]


def test_autorepeat_and_unknown_keys_type_nothing():
    data = bytearray(Typist().type("A1", enter=False).bytes())
    t = EPOCH_US + 7000
    data += record(t, kc.EV_KEY, 3, 2)  # autorepeat of the "2" key
    data += record(t, kc.EV_KEY, 59, 1)  # F1
    data += record(t + 1000, kc.EV_KEY, kc.KEY_ENTER, 1)
    assert lines(bytes(data)) == ["A1"]


def test_events_lost_by_the_kernel_drop_the_pending_scan():
    data = Typist().type("123", enter=False).bytes() + record(EPOCH_US + 9000, kc.EV_SYN, kc.SYN_DROPPED, 0)
    data += Typist(start_us=EPOCH_US + 10_000).type("456").bytes()
    results = list(decode_capture(data, GAP))
    assert [type(r).__name__ for r in results] == ["Fragment", "Burst"]
    assert results[0].reason == "lost-events" and results[1].text == "456"


def test_a_long_pause_drops_the_partial_scan_using_the_events_own_times():
    typist = Typist().type("9780", enter=False).wait(400_000).type("ABC")
    results = list(decode_capture(typist.bytes(), GAP))
    assert [(type(r).__name__, r.text) for r in results] == [("Fragment", "9780"), ("Burst", "ABC")]


def test_sustained_burst_of_twenty_scans_none_merged_or_lost():
    """20 scans of 14 characters at 3 ms per key, back to back (3 ms after each Enter)."""
    scans = [f"BC{i:04d}-{i * 7919 % 100000:05d}X"[:14].ljust(14, "0") for i in range(20)]
    assert all(len(s) == 14 for s in scans) and len(set(scans)) == 20
    typist = Typist()
    for scan in scans:
        typist.type(scan, per_key_us=3000)
    assert lines(typist.bytes()) == scans


def test_32_bit_captures_are_recognised():
    data = Typist(layout=RECORD_32).type("PI-ZERO").bytes()
    assert detect_record_size(data) == 16
    assert lines(data) == ["PI-ZERO"]


def test_a_file_that_is_not_a_capture_is_refused():
    with pytest.raises(NotACapture):
        detect_record_size(b"this is a text file, not input events\n")
    with pytest.raises(NotACapture):
        detect_record_size(b"")


def test_records_split_across_reads_are_reassembled():
    data = Typist().type("SPLIT").bytes()
    stream = RecordStream()
    events = []
    for i in range(0, len(data), 7):
        events += stream.feed(data[i : i + 7])
    assert events == parse_records(data)


def test_key_codes_match_the_kernel_headers_as_python_evdev_knows_them():
    ecodes = pytest.importorskip("evdev.ecodes")
    for name in ("EV_SYN", "EV_KEY", "EV_MSC", "SYN_DROPPED", "KEY_ENTER", "KEY_KPENTER", "KEY_TAB",
                 "KEY_LEFTSHIFT", "KEY_RIGHTSHIFT", "KEY_1", "KEY_A"):
        assert getattr(kc, name) == getattr(ecodes, name), name
    named = {"KEY_Q": "q", "KEY_M": "m", "KEY_0": "0", "KEY_KP0": "0", "KEY_KP7": "7", "KEY_MINUS": "-",
             "KEY_SLASH": "/", "KEY_DOT": ".", "KEY_SPACE": " ", "KEY_KPDOT": ".", "KEY_APOSTROPHE": "'"}
    for name, char in named.items():
        assert kc.character(getattr(ecodes, name), False) == char, name


events = st.builds(
    RawEvent,
    sec=st.integers(0, 2**40), usec=st.integers(0, 999_999),
    type=st.sampled_from([kc.EV_SYN, kc.EV_KEY, kc.EV_KEY, kc.EV_KEY, kc.EV_MSC, 2, 0x11]),
    code=st.one_of(st.integers(0, 0x2FF), st.sampled_from([kc.KEY_ENTER, kc.KEY_LEFTSHIFT, kc.SYN_DROPPED, 30, 2])),
    value=st.integers(-(2**31), 2**31 - 1) | st.integers(0, 2),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(events, max_size=60))
def test_no_event_sequence_breaks_the_decoder(sequence):
    decoder = KeyboardDecoder(KeystrokeClassifier(GAP), ("enter", "tab"))
    for event in sequence:
        for result in decoder.feed(event):
            assert isinstance(result, (Burst, Fragment))
            if isinstance(result, Burst):
                assert result.text and set(result.text) <= set(TYPABLE) | set("*+")
    decoder.expire(2.0**41)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=24 * 40))
def test_arbitrary_bytes_are_refused_or_decoded_never_crash(data):
    try:
        list(decode_capture(data, GAP))
    except NotACapture:
        pass


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=TYPABLE.replace(" ", ""), min_size=1, max_size=30),
       per_key_us=st.integers(1000, 30_000), split=st.integers(1, 100))
def test_any_typable_scan_decodes_exactly_however_the_bytes_arrive(text, per_key_us, split):
    data = Typist().type(text, per_key_us=per_key_us).bytes()
    decoder = KeyboardDecoder(KeystrokeClassifier(GAP))
    stream = RecordStream()
    results = []
    for i in range(0, len(data), split):
        for event in stream.feed(data[i : i + split]):
            results += decoder.feed(event)
    assert [r.text for r in results if isinstance(r, Burst)] == [text]


def test_record_layout_is_the_kernels():
    assert RECORD.size == 24 and RECORD_32.size == 16
    assert struct.calcsize("@llHHi") in (16, 24)
