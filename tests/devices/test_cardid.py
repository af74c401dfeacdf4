"""One card, one id: whichever reader saw it."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookcorner.devices.cardid import em4100_card_id, em4100_number, mifare_card_id, typed_card_id, xor_checksum
from bookcorner.devices.protocols.id12 import Id12Decoder, id12_frame
from bookcorner.devices.protocols.rdm6300 import Rdm6300Decoder, rdm6300_frame

CARD = bytes.fromhex("010063E9AE")


def test_the_number_printed_on_the_card_is_the_id():
    assert xor_checksum(CARD) == 0x25
    assert em4100_number(CARD) == 6547886
    assert em4100_card_id(em4100_number(CARD)) == "0006547886"


def test_hex_ids_when_configured():
    assert em4100_card_id(6547886, "hex") == "0063E9AE"
    assert typed_card_id("0006547886", "em4100-decimal", "hex") == "0063E9AE"


def test_mifare_uids_are_upper_case_hex():
    assert mifare_card_id(bytes.fromhex("04a224e2c95e80")) == "04A224E2C95E80"
    assert typed_card_id("de ad be ef".replace(" ", ""), "uid-hex") == "DEADBEEF"
    with pytest.raises(ValueError):
        mifare_card_id(b"\x01\x02")


@pytest.mark.parametrize(("text", "fmt", "expected"), [
    ("0006547886", "em4100-decimal", "0006547886"),
    (" 0006547886 ", "em4100-decimal", "0006547886"),
    ("6547886", "em4100-decimal", None),  # not the 10 digits a reader types
    ("4294967296", "em4100-decimal", None),  # more than 32 bits
    ("010063E9AE", "em4100-hex", "0006547886"),
    ("010063e9ae", "em4100-hex", "0006547886"),
    ("010063E9A", "em4100-hex", None),
    ("0006547886", "uid-hex", None),
    ("hello", "em4100-decimal", None),
])
def test_card_numbers_typed_as_text(text, fmt, expected):
    assert typed_card_id(text, fmt) == expected


@settings(max_examples=200)
@given(st.binary(min_size=5, max_size=5), st.sampled_from(["decimal10", "hex"]))
def test_every_reader_gives_the_same_id_for_the_same_card(card, fmt):
    by_rdm6300 = [r.card_id for r in Rdm6300Decoder(fmt).feed(rdm6300_frame(card))]
    by_id12 = [r.card_id for r in Id12Decoder(fmt).feed(id12_frame(card))]
    typed = typed_card_id(f"{em4100_number(card):010d}", "em4100-decimal", fmt)
    as_hex = typed_card_id(card.hex(), "em4100-hex", fmt)
    assert by_rdm6300 == by_id12 == [typed] == [as_hex]
