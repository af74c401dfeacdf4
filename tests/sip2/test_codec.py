"""The SIP2 codec (protocol/sip2.py): what it writes it reads back, its checksums hold, and
what it writes is read the same way by SIP2 code no one here wrote (pysip2's strict codec,
the Sip2 client's parser)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pysip2 import codec as peer_codec
from pysip2 import models as peer

from bookcorner.protocol import sip2

ENCODINGS = ("utf-8", "gb18030")
CHINESE = "王小明東瑋墊亅倈億读书之星西游记三国演义"
#: values a field may carry: printable, no delimiter (Chinese, with characters whose GB18030 form holds 0x7C)
values = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Co", "Cn"),
                               blacklist_characters="|").filter(str.isprintable) | st.sampled_from(CHINESE),
                 max_size=40)
ascii_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="|"), max_size=40)
codes = st.from_regex(r"\A[A-Z]{2}\Z").filter(lambda c: c not in ("AY", "AZ"))
sequences = st.none() | st.integers(0, 9)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0))


@st.composite
def messages(draw, value_strategy=values):
    command = draw(st.sampled_from(sorted(sip2.FIXED_LENGTH)))
    fixed = draw(st.text(st.sampled_from("0123456789 YN"), min_size=sip2.FIXED_LENGTH[command],
                         max_size=sip2.FIXED_LENGTH[command]))
    fields = draw(st.lists(st.tuples(codes, value_strategy), max_size=8))
    return sip2.Message(command, fixed, tuple(fields), draw(sequences))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.sampled_from(ENCODINGS), st.booleans())
def test_what_is_written_is_read_back(message, encoding, with_checksum):
    frame = sip2.encode(message, encoding, with_checksum=with_checksum)
    assert frame.endswith(b"\r") and b"\r" not in frame[:-1]
    back = sip2.decode(frame, encoding)
    assert (back.command, back.fixed, back.fields, back.sequence) == (
        message.command, message.fixed, message.fields, message.sequence)
    assert back.checksummed is with_checksum


@given(messages(), st.sampled_from(ENCODINGS))
def test_the_checksum_makes_the_bytes_sum_to_zero(message, encoding):
    frame = sip2.encode(message, encoding)[:-1]
    assert frame[-6:-4] == b"AZ"
    assert (sum(frame[:-4]) + int(frame[-4:], 16)) & 0xFFFF == 0


@given(messages(ascii_values), st.data())
def test_a_changed_byte_is_caught_by_the_checksum(message, data):
    frame = bytearray(sip2.encode(message, "utf-8"))
    at = data.draw(st.integers(0, len(frame) - 8))  # a byte before "AZ" and its digits
    frame[at] = data.draw(st.integers(0x20, 0x7E).filter(lambda b: b != frame[at]))
    with pytest.raises(sip2.ChecksumError):
        sip2.decode(bytes(frame))


def test_a_checksum_over_characters_is_taken_too():
    # the Sip2 client (PyPI) adds up characters, not bytes: the same for ASCII, not for 王
    text = "2300120261204    101010AOschool|AA王小明|ACpw|ADx|AY1AZ"
    by_characters = f"{-sum(map(ord, text)) & 0xFFFF:04X}"
    message = sip2.decode((text + by_characters + "\r").encode("utf-8"))
    assert message.get("AA") == "王小明" and message.sequence == 1


@pytest.mark.parametrize("frame, problem", [
    (b"", "two-digit command"),
    (b"XX|\r", "two-digit command"),
    (b"42abc\r", "unknown command"),
    (b"2300120261204\r", "fixed fields"),
    (b"23001202612041010101AOx|A|\r", "field code"),
    (b"23001202612041010101AO\xff\xfe|\r", "not valid utf-8"),
    (b"23001202612041010101AO" + b"x" * 300 + b"|\r", "longer than 255"),
    (b"23001202612041010101AOx|AY1AZFFFF\r", "does not match"),
    (b"2300120261204101\x00101AOx|\r", "NUL"),
])
def test_what_is_not_a_message_is_refused_with_a_reason(frame, problem):
    with pytest.raises(sip2.Sip2Error, match=problem):
        sip2.decode(frame)


def test_a_checksum_without_its_leading_zeros_is_taken():
    # the Sip2 client (PyPI) writes format(value, "X"): 0ABC goes out as ABC. Each 王 adds 512
    # to the byte sum, less than the 4096 values a short checksum covers: one length gives one
    for n in range(1, 200):
        text = f"1720261204    101010AB{'王' * n}|AY1AZ"
        value = -sum(text.encode()) & 0xFFFF
        if value < 0x1000:
            message = sip2.decode(f"{text}{value:X}\r".encode())
            assert message.checksummed and message.get("AB") == "王" * n and message.sequence == 1
            break
    else:
        raise AssertionError("no length gave a short checksum")
    with pytest.raises(sip2.ChecksumError):
        sip2.decode(f"{text}{value + 1:X}\r".encode())


def test_line_feeds_around_a_frame_are_ignored():
    frame = sip2.encode(sip2.Message("99", "0030" + "2.00", (), 3))
    assert sip2.decode(b"\n" + frame + b"\n").sequence == 3


# --- every response the server writes, read by an independent parser ---------------------------

patron_answers = st.builds(
    sip2.PatronAnswer, institution=values, patron_id=values, valid=st.booleans(), name=values,
    status=st.builds(sip2.PatronStatus, *(st.booleans() for _ in range(5))),
    charged=st.lists(values, max_size=4).map(tuple), overdue=st.lists(values, max_size=4).map(tuple),
    limit=st.none() | st.integers(0, 50), screen=st.lists(values, max_size=2).map(tuple))
item_answers = st.builds(
    sip2.ItemAnswer, institution=values, item_id=values, title=values,
    circulation_status=st.sampled_from([sip2.ITEM_ON_SHELF, sip2.ITEM_CHARGED, sip2.ITEM_LOST, sip2.ITEM_OTHER]),
    due=st.none() | moments, patron_id=values, location=values, screen=st.lists(values, max_size=2).map(tuple),
    printed=st.lists(values, max_size=2).map(tuple))
languages = st.sampled_from([sip2.LANGUAGE_UNKNOWN, sip2.LANGUAGE_ENGLISH, sip2.LANGUAGE_CHINESE])

responses = st.one_of(
    st.builds(sip2.login_response, st.booleans(), sequences),
    st.builds(sip2.acs_status, moments, sequences, institution=values, library=values, location=values,
              supported=st.text(st.sampled_from("YN"), min_size=16, max_size=16), screen=values),
    st.builds(sip2.patron_status_response, patron_answers, moments, sequences, languages),
    st.builds(sip2.patron_information_response, patron_answers, moments, sequences, languages),
    st.builds(sip2.item_information_response, item_answers, moments, sequences),
    st.builds(sip2.checkout_response, st.booleans(), st.booleans(), item_answers, moments, sequences),
    st.builds(sip2.renew_response, st.booleans(), item_answers, moments, sequences),
    st.builds(sip2.checkin_response, st.booleans(), item_answers, moments, sequences, alert=st.booleans()),
    st.builds(sip2.end_session_response, values, values, moments, sequences),
    st.just(sip2.resend_request()),
)


def _peer_values(message: peer.SIPMessage) -> set[str]:
    found: set[str] = set()
    for value in (getattr(message, name) for name in message.__struct_fields__):
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, tuple):
            found.update(value)
    return found


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(responses)
def test_pysip2_reads_every_response_we_write(message):
    """pysip2 checks each fixed field's form and each required field; it splits bytes on 0x7C,
    so it reads UTF-8 (GB18030 goes to the Sip2 client's parser below)."""
    frame = sip2.encode(message, "utf-8")
    decoded = peer_codec.decode_message(frame, encoding="utf-8")
    assert decoded.sequence_number == message.sequence
    assert decoded.checksum == frame[-5:-1].decode()
    assert peer.spec_for_type(type(decoded.message)).command_id == message.command
    if message.command in ("24", "64"):  # the language field, after the 14 positions of patron status
        assert decoded.message.language == message.fixed[14:17]
    seen = _peer_values(decoded.message)
    for code, value in message.fields:
        if code not in ("AH", "BX") and value:  # a due date and BX are typed fields there: compared below
            assert value in seen, (code, value)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(responses, st.sampled_from(ENCODINGS))
def test_the_sip2_client_parser_reads_every_response_in_both_encodings(message, encoding):
    from Sip2.sip2 import Sip2

    client = Sip2()
    client.hostEncoding = encoding
    frame = sip2.encode(message, encoding)
    text = frame.decode(encoding)
    parsed = client._response_parse_varData(text, 2 + sip2.FIXED_LENGTH[message.command])
    assert parsed["AZ"] == [frame[-5:-1].decode()]
    for code, value in message.fields:
        assert value in parsed.get(code, []), (code, value, parsed)


# --- every request the client side writes, read by pysip2 ---------------------------------------

identifiers = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="|"),
                      min_size=1, max_size=20) | st.sampled_from(["王小明", "30732000100018", "9787533271169"])
requests_ = st.one_of(
    st.builds(sip2.login_request, identifiers, identifiers, identifiers, sequences),
    st.builds(sip2.sc_status_request, sequences),
    st.builds(sip2.patron_status_request, values, identifiers, moments, sequences, information=st.booleans()),
    st.builds(sip2.item_information_request, values, identifiers, moments, sequences),
    st.builds(sip2.checkout_request, values, identifiers, identifiers, moments, sequences, no_block=st.booleans(),
              done_at=moments, promised_due=moments),
    st.builds(sip2.checkin_request, values, identifiers, moments, sequences, no_block=st.booleans(),
              returned_at=moments, location=values),
    st.builds(sip2.renew_request, values, identifiers, identifiers, moments, sequences, no_block=st.booleans(),
              done_at=moments, promised_due=moments),
    st.builds(sip2.end_session_request, values, identifiers, moments, sequences),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(requests_)
def test_pysip2_reads_every_request_we_write(message):
    frame = sip2.encode(message, "utf-8")
    decoded = peer_codec.decode_message(frame, encoding="utf-8")
    assert peer.spec_for_type(type(decoded.message)).command_id == message.command
    assert decoded.sequence_number == message.sequence
    if message.command in ("24", "64"):  # the language field, after the 14 positions of patron status
        assert decoded.message.language == message.fixed[14:17]
    seen = _peer_values(decoded.message)
    for code, value in message.fields:
        if value:
            assert value in seen, (code, value)


def test_a_no_block_checkout_carries_the_time_it_was_made_and_the_promised_due_date():
    made, due = datetime(2026, 11, 23, 12, 5, 7), datetime(2026, 11, 30, 23, 59, 59)
    frame = sip2.encode(sip2.checkout_request("一小", "0004074018", "30732000100018", datetime(2026, 12, 4, 9), 3,
                                              no_block=True, done_at=made, promised_due=due))
    request = peer_codec.decode_message(frame, encoding="utf-8").message
    assert isinstance(request, peer.CheckoutRequest)
    assert (request.no_block, request.transaction_date, request.nb_due_date) == (
        "Y", "20261123    120507", "20261130    235959")
