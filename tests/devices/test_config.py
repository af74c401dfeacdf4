"""The [devices] section: defaults for a machine with no devices, precise refusals."""

import tomllib

import pytest

from bookcorner import config
from bookcorner.devices.config import DevicesConfig

EXAMPLE = config.EXAMPLE  # the kiosk example holds the [devices] section


def test_defaults_need_no_device():
    devices = config.parse("").devices
    assert devices == DevicesConfig()
    assert not devices.scanner.configured and devices.reader.protocol == "none" and devices.wedge.enabled
    assert devices.card_id_format == "decimal10" and devices.max_key_gap == 0.05


def test_a_configured_kiosk():
    devices = config.parse("""
[devices]
card_id_format = "hex"
[devices.scanner]
path = "/dev/input/by-id/usb-Honeywell_Scanner-event-kbd"
[devices.reader]
protocol = "pn532"
port = "/dev/ttyUSB0"
""").devices
    assert devices.scanner.configured and devices.reader.baudrate == 115200
    assert devices.card_id_format == "hex"


@pytest.mark.parametrize(("toml", "where"), [
    ('[devices.reader]\nprotocol = "rdm6301"', "devices.reader.protocol"),
    ('[devices.scanner]\nnmae = "x"', "devices.scanner.nmae"),
    ('[devices]\nmax_key_gap_ms = 0', "devices.max_key_gap_ms"),
    ('[devices.scanner]\nvendor = "0c2e0"', "devices.scanner.vendor"),
    ('[devices.wedge]\ncard_pattern = "(["', "devices.wedge"),
])
def test_mistakes_are_refused_with_their_location(toml, where):
    with pytest.raises(config.ConfigError) as refused:
        config.parse(toml, "kiosk.toml")
    assert f"kiosk.toml: {where}" in str(refused.value)


def test_the_example_documents_every_option_with_its_default():
    text = EXAMPLE.read_text(encoding="utf-8")
    assert config.parse(text).devices == DevicesConfig()
    documented = tomllib.loads(text)["devices"]
    defaults = DevicesConfig()
    sections = {"": (documented, DevicesConfig)}
    for name in ("scanner", "card_keyboard", "reader", "wedge"):
        sections[name] = (documented[name], type(getattr(defaults, name)))
    for name, (options, struct) in sections.items():
        for field in struct.__struct_fields__:
            assert field in options, f"devices.{name + '.' if name else ''}{field} is missing from {EXAMPLE.name}"
