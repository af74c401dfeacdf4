"""The udev rules `bookcorner udev-rules` writes from a kiosk's configuration: readable by
udev (`udevadm verify` where this systemd has it), one rule per configured device, each
matched by its USB ids and handed to the kiosk user alone (the rules' match on a real kernel device:
the lab's scenario 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bookcorner.ops.udev import RULE_FILE, UsbDevice, parse_rules, render_rules

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[kiosk]
id = "corner-1"
[devices.scanner]
vendor = "0c2e"
product = "0b61"
[devices.card_keyboard]
name = "RFID reader"
[devices.reader]
protocol = "rdm6300"
port = "/dev/bookcorner-reader"
"""


def run_cli(*words: str, config: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    return subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(config), *words], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def rules_file(tmp_path) -> Path:
    config = tmp_path / "kiosk.toml"
    config.write_text(CONFIG)
    out = tmp_path / RULE_FILE
    done = run_cli("udev-rules", "--reader-usb", "10C4:EA60", "--output", str(out), config=config)
    assert done.returncode == 0, done.stderr
    return out


def as_dict(rule):
    return {(key, attr, op): value for key, attr, op, value in rule}


def test_the_configured_devices_get_stable_names_and_only_they_are_opened(rules_file):
    rules = [as_dict(rule) for rule in parse_rules(rules_file.read_text())]
    assert len(rules) == 2  # the card keyboard is chosen by name: no USB ids, no rule
    scanner, reader = rules
    assert scanner[("SUBSYSTEM", None, "==")] == "input"
    assert scanner[("ENV", "ID_INPUT_KEYBOARD", "==")] == "1"
    # the input device's own ids (the kiosk matches those): a Bluetooth or uinput scanner has no USB parent
    assert (scanner[("ATTRS", "id/vendor", "==")], scanner[("ATTRS", "id/product", "==")]) == ("0c2e", "0b61")
    assert scanner[("SYMLINK", None, "+=")] == "bookcorner-scanner"
    assert reader[("SUBSYSTEM", None, "==")] == "tty"
    assert (reader[("ATTRS", "idVendor", "==")], reader[("ATTRS", "idProduct", "==")]) == ("10c4", "ea60")
    assert reader[("SYMLINK", None, "+=")] == "bookcorner-reader"
    for rule in rules:
        assert rule[("OWNER", None, "=")] == "bookcorner"
        assert rule[("MODE", None, "=")] == "0660"
        # never a rule that would match every input device or every serial port
        assert {("ATTRS", "idVendor", "=="), ("ATTRS", "idProduct", "==")} <= rule.keys() or \
            {("ATTRS", "id/vendor", "=="), ("ATTRS", "id/product", "==")} <= rule.keys()


def test_wrong_usb_ids_are_a_usage_mistake(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text("")
    done = run_cli("udev-rules", "--reader-usb", "cp2102", config=config)
    assert done.returncode == 2
    assert "VENDOR:PRODUCT" in done.stderr


def test_nothing_configured_gives_a_rule_file_without_rules():
    text = render_rules([], [])
    assert parse_rules(text) == []
    assert text.startswith("#")


def test_the_checker_refuses_what_udev_would_not_read():
    device = UsbDevice.parse("0c2e:0b61", "x")
    assert device.vendor == "0c2e"
    for broken in ('SUBSYSTEM=="input", OWNER=bookcorner', 'OWNER=="bookcorner"', 'MODE="rw"',
                   'SUBSYSTEM=="input, MODE="0660"', 'FOO="bar"'):
        with pytest.raises(ValueError):
            parse_rules(broken)


def test_udevadm_verify_accepts_the_rules(rules_file):
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm is not installed")
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("this udevadm has no `verify` (it came with systemd 254; Bookworm has 252): "
                    "the rules are checked by ops.udev.parse_rules only")
    done = subprocess.run([udevadm, "verify", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
