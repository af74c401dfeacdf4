"""Card reader protocols on real byte streams: noise, truncation, bad checksums, resync."""

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from bookcorner.devices.cardid import xor_checksum
from bookcorner.devices.protocols import CardRead, Rejected, push_decoder
from bookcorner.devices.protocols.ascii import AsciiLineDecoder
from bookcorner.devices.protocols.id12 import Id12Decoder, id12_frame
from bookcorner.devices.protocols.pn532 import (
    ACK, NACK, ErrorFrame, Frame, FrameParser, Ack, Nack, checksum, command_frame, information_frame, target_uid,
)
from bookcorner.devices.protocols.rdm6300 import Rdm6300Decoder, rdm6300_frame

CARD = bytes.fromhex("010063E9AE")
OTHER = bytes.fromhex("1A2B3C4D5E")


def ids(results):
    return [r.card_id for r in results if isinstance(r, CardRead)]


def codes(results):
    return [r.code for r in results if isinstance(r, Rejected)]


def test_rdm6300_frames_through_a_serial_loopback():
    port = serial.serial_for_url("loop://", baudrate=9600, timeout=0.05)
    port.write(rdm6300_frame(CARD) + rdm6300_frame(OTHER))
    decoder = Rdm6300Decoder()
    results = decoder.feed(port.read(100))
    assert ids(results) == ["0006547886", "0725372254"]


def test_a_bad_checksum_is_rejected_and_the_next_frame_still_read():
    bad = bytearray(rdm6300_frame(CARD))
    bad[11:13] = b"00"
    results = Rdm6300Decoder().feed(bytes(bad) + rdm6300_frame(OTHER))
    assert codes(results) == ["checksum"] and ids(results) == ["0725372254"]
    assert "expected 25" in results[0].message.text()


def test_resynchronises_after_a_truncated_frame_and_noise():
    stream = b"\xff\x00garbage" + rdm6300_frame(CARD)[:6] + rdm6300_frame(CARD) + b"\x02\x03" + rdm6300_frame(OTHER)
    results = Rdm6300Decoder().feed(stream)
    assert ids(results) == ["0006547886", "0725372254"]
    assert codes(results) == ["noise", "truncated", "malformed"]


def test_frames_split_across_reads():
    stream = rdm6300_frame(CARD) * 3
    decoder = Rdm6300Decoder()
    results = []
    for byte in stream:
        results += decoder.feed(bytes([byte]))
    assert ids(results) == ["0006547886"] * 3


def test_a_half_frame_left_when_the_line_goes_quiet_is_truncated():
    decoder = Rdm6300Decoder()
    assert decoder.feed(rdm6300_frame(CARD)[:9]) == []
    assert codes(decoder.idle()) == ["truncated"]
    assert ids(decoder.feed(rdm6300_frame(CARD))) == ["0006547886"]


def test_id12_needs_its_cr_lf():
    assert ids(Id12Decoder().feed(id12_frame(CARD))) == ["0006547886"]
    assert ids(Id12Decoder().feed(rdm6300_frame(CARD))) == []
    assert ids(Rdm6300Decoder().feed(id12_frame(CARD))) == []


def test_ascii_lines():
    decoder = AsciiLineDecoder()
    results = decoder.feed(b"0006547886\r\n\r\n0725433694\n\x020006547886\x03\r\nnot a card\r\n\xff\xfe\n")
    assert ids(results) == ["0006547886", "0725433694", "0006547886"]
    assert codes(results) == ["not-a-card", "malformed"]


def test_ascii_overlong_lines_are_refused_once_and_bounded():
    decoder = AsciiLineDecoder()
    results = decoder.feed(b"9" * 10_000 + b"\n0006547886\n")
    assert codes(results) == ["overlong"] and ids(results) == ["0006547886"]


def test_pn532_frames_as_the_datasheet_gives_them():
    assert command_frame(0x4A, b"\x01\x00") == bytes.fromhex("00 00 FF 04 FC D4 4A 01 00 E1 00")
    parser = FrameParser()
    reply = information_frame(0xD5, bytes.fromhex("4B 01 01 00 04 08 04 DE AD BE EF"))
    items = parser.feed(ACK + reply + NACK + bytes.fromhex("00 00 FF 01 FF 7F 81 00"))
    assert items == [Ack(), Frame(0xD5, bytes.fromhex("4B 01 01 00 04 08 04 DE AD BE EF")), Nack(), ErrorFrame()]
    assert target_uid(items[1].data[1:]) == bytes.fromhex("DEADBEEF")
    assert target_uid(b"\x00") is None


def test_pn532_bad_checksums_are_rejected_and_the_parser_resyncs():
    good = information_frame(0xD5, b"\x03\x32\x01\x06\x07")
    bad_data = bytearray(good)
    bad_data[-2] ^= 0xFF
    bad_length = bytearray(good)
    bad_length[4] ^= 0x01
    items = FrameParser().feed(bytes(bad_data) + bytes(bad_length) + good)
    assert [i for i in items if isinstance(i, Frame)] == [Frame(0xD5, b"\x03\x32\x01\x06\x07")]
    assert "checksum" in codes(items)


# -- fuzzing: no exception escapes, every id has a valid checksum behind it ------------------------
noise = st.binary(max_size=40) | st.lists(st.sampled_from(b"\x02\x030123456789ABCDEF\r\n"), max_size=40).map(bytes)


def em4100_frames_in(stream, trailer):
    """Every valid frame that occurs anywhere in the stream, by its card bytes."""
    found = []
    length = 1 + 12 + len(trailer) + 1
    for start in range(len(stream) - length + 1):
        chunk = stream[start : start + length]
        if chunk[0] != 2 or chunk[-1] != 3 or chunk[13:-1] != trailer:
            continue
        try:
            card, sent = bytes.fromhex(chunk[1:11].decode()), int(chunk[11:13].decode(), 16)
        except ValueError:
            continue
        if all(c in b"0123456789ABCDEFabcdef" for c in chunk[1:13]) and xor_checksum(card) == sent:
            found.append(f"{int.from_bytes(card[1:], 'big'):010d}")
    return found


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.one_of(noise, st.binary(min_size=5, max_size=5).map(lambda c: ("frame", c))), max_size=12),
       protocol=st.sampled_from(["rdm6300", "id12"]), split=st.integers(1, 64))
def test_em4100_readers_never_crash_and_never_invent_a_card(chunks, protocol, split):
    trailer = b"" if protocol == "rdm6300" else b"\r\n"
    make = rdm6300_frame if protocol == "rdm6300" else id12_frame
    stream = b"".join(make(c[1]) if isinstance(c, tuple) else c for c in chunks)
    sent_frames = [f"{int.from_bytes(c[1][1:], 'big'):010d}" for c in chunks if isinstance(c, tuple)]
    decoder = push_decoder(protocol)
    results = []
    for i in range(0, len(stream), split):
        results += decoder.feed(stream[i : i + split])
    results += decoder.idle()
    emitted = ids(results)
    assert emitted == em4100_frames_in(stream, trailer)  # exactly the valid frames, checksums included
    it = iter(emitted)
    assert all(card in it for card in sent_frames)  # every intact frame sent is read, in order


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["em4100-decimal", "em4100-hex", "uid-hex"]))
def test_ascii_reader_never_crashes_and_emits_only_well_formed_numbers(data, fmt):
    decoder = AsciiLineDecoder(fmt)
    results = decoder.feed(data) + decoder.idle()
    for card_id in ids(results):
        assert card_id.isalnum() and len(card_id) in (8, 10, 14, 20)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=30) | st.binary(min_size=1, max_size=20).map(lambda d: information_frame(0xD5, d)), max_size=10))
def test_pn532_parser_never_crashes_and_every_frame_has_valid_checksums(parts):
    stream = b"".join(parts)
    parser = FrameParser()
    items = parser.feed(stream) + parser.idle()
    for item in items:
        if isinstance(item, Frame):
            body = bytes([item.tfi]) + item.data
            wire = bytes([len(body), checksum(bytes([len(body)]))]) + body + bytes([checksum(body)])
            assert wire in stream  # LEN, LCS, TFI, data and DCS all as received and all valid


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.binary(max_size=20).map(lambda b: b.replace(b"\xff", b"")), st.binary(min_size=1, max_size=40)), max_size=8),
       split=st.integers(1, 50))
def test_pn532_intact_frames_are_all_found_between_noise(pairs, split):
    stream = b"".join(noise + information_frame(0xD5, data) for noise, data in pairs)
    parser = FrameParser()
    items = []
    for i in range(0, len(stream), split):
        items += parser.feed(stream[i : i + split])
    assert [item.data for item in items if isinstance(item, Frame)] == [data for _, data in pairs]


def test_the_labs_reader_frames_decode_to_the_printed_card_number():
    """The lab's scenario 2 writes RDM6300 and ID-12LA frames from the datasheets (lab/kernel_devices.py,
    standard library only): the kiosk's decoders read them as the card printed on the front."""
    from lab.kernel_devices import em4100_frame

    assert em4100_frame("0006547886") == b"\x02010063E9AE25\x03"  # PLATFORM.md's worked example
    rdm6300, id12 = push_decoder("rdm6300"), push_decoder("id12")
    assert [read.card_id for read in rdm6300.feed(em4100_frame("0014431799") * 3)] == ["0014431799"] * 3
    assert [read.card_id for read in id12.feed(em4100_frame("0014431799", b"\r\n"))] == ["0014431799"]
    assert not any(isinstance(result, CardRead) for result in rdm6300.feed(em4100_frame("0014431799", b"\r\n")))


def test_the_labs_uinput_scanner_types_what_the_kiosk_reads():
    """The lab's scanner (lab/guest_scanner.py) writes each key to /dev/uinput as raw input_event
    records in one write; the kiosk's decoder must read those records as the scan, capitals and all
    (a wrong layout would only show in the lab, as a scan that never arrives)."""
    pytest.importorskip("evdev")
    from lab.guest_scanner import key_bytes, keys_of

    from bookcorner.devices.keyboard import KeyboardDecoder, RecordStream
    from bookcorner.devices.keystrokes import Burst, KeystrokeClassifier

    for code in ("9787500751939", "30732000101214", "LIB-42b"):
        data = b"".join(key_bytes(key, shift) for key, shift in keys_of(code))
        decoder = KeyboardDecoder(KeystrokeClassifier(0.05))
        results = list(decoder.feed_all(RecordStream().feed(data)))
        assert [result.text for result in results if isinstance(result, Burst)] == [code]
        assert len(results) == 1
