"""`install --role both` pairs the kiosk with the central server on the same machine (found by the
lab, issue 16: a one-machine school's kiosk booted to "sync problem"): the address it reaches the
server at, and the one edit made to the school's settings file."""

from __future__ import annotations

import pytest

from bookcorner.config import parse
from bookcorner.ops.install import EXAMPLE_CONFIG
from bookcorner.ops.pairing import PairingError, local_server_url, server_url_of, with_server_url


@pytest.mark.parametrize(("arguments", "url"), [
    ("", "http://127.0.0.1:8443"),
    ("--host 127.0.0.1 --port 8443", "http://127.0.0.1:8443"),
    ("--host 0.0.0.0 --port 9000", "http://127.0.0.1:9000"),
    ("--host=:: --port=8080 --workers 2", "http://127.0.0.1:8080"),
    ("--host 10.0.0.5", "http://10.0.0.5:8443"),
])
def test_the_kiosk_reaches_the_server_beside_it(arguments, url):
    assert local_server_url(arguments) == url


@pytest.mark.parametrize(("arguments", "words"), [
    ("--host 0.0.0.0 --certfile /etc/bookcorner/tls/server.pem --keyfile k", "HTTPS"),
    ("--port eighty", "not a number: eighty"),
    ("--port 0", "--port 0"),
])
def test_a_server_it_cannot_pair_by_itself_is_said(arguments, words):
    with pytest.raises(PairingError, match=words):
        local_server_url(arguments)


def test_the_example_settings_get_the_address_and_keep_everything_else():
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    changed = with_server_url(text, "http://127.0.0.1:8443")
    assert parse(changed, "kiosk.toml").sync.server_url == "http://127.0.0.1:8443"
    before, after = text.splitlines(), changed.splitlines()
    assert len(before) == len(after)
    assert [line for line in after if line not in before] == [
        'server_url = "http://127.0.0.1:8443"  # the central server on this machine (bookcorner install --role both)']


@pytest.mark.parametrize("text", [
    "",
    '[kiosk]\nid = "room-3"\n',
    '[kiosk]\nid = "room-3"',
    '[sync]\nbatch_size = 100\n\n[screen]\ntheme = "ansi-dark"\n',
    '[sync]\nserver_url = ""\n',
])
def test_settings_without_a_server_get_one(text):
    changed = with_server_url(text, "http://127.0.0.1:8443")
    config = parse(changed, "kiosk.toml")
    assert config.sync.server_url == "http://127.0.0.1:8443"
    assert server_url_of(changed) == "http://127.0.0.1:8443"
    if "room-3" in text:
        assert config.kiosk.id == "room-3"
    if "batch_size" in text:
        assert (config.sync.batch_size, config.screen.theme) == (100, "ansi-dark")

