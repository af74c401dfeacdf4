"""The librarian's PIN: kept only as a slow salted hash, set with a command that keeps the
rest of the configuration file as it was, guarded by a lock-out that survives restarts."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from bookcorner import config
from bookcorner.kiosk.pin import BadPin, PinGuard, hash_pin, verify_pin
from bookcorner.kiosk.pinfile import with_pin_hash

NOW = datetime(2026, 11, 23, 12, 5, tzinfo=timezone.utc)


def test_a_pin_is_hashed_with_a_salt_and_verified():
    first, second = hash_pin("2468", n=1 << 10), hash_pin("2468", n=1 << 10)
    assert first != second and "2468" not in first and first.startswith("scrypt$1024$8$1$")
    assert verify_pin("2468", first) and not verify_pin("2469", first)
    assert not verify_pin("2468", "garbage") and not verify_pin("2468", "")
    with pytest.raises(BadPin):
        hash_pin("12")
    with pytest.raises(BadPin):
        hash_pin("abcd")


def test_wrong_pins_lock_the_mode_for_a_while_and_the_count_is_kept_on_disk(tmp_path):
    stored = hash_pin("2468", n=1 << 10)
    state = tmp_path / "pin.json"
    guard = PinGuard(stored, state, max_tries=3, lockout=timedelta(minutes=5))
    assert guard.check("1111", NOW).tries_left == 2
    again = PinGuard(stored, state, max_tries=3, lockout=timedelta(minutes=5))  # after a restart
    assert again.check("1111", NOW).tries_left == 1
    locked = again.check("1111", NOW)
    assert not locked.ok and locked.locked_until == NOW + timedelta(minutes=5)
    assert again.check("2468", NOW + timedelta(minutes=4)).locked_until is not None
    assert again.check("2468", NOW + timedelta(minutes=6)).ok
    assert again.check("1111", NOW + timedelta(minutes=7)).tries_left == 2  # a fresh count
    assert PinGuard("", state, 3, timedelta(minutes=5)).check("2468", NOW).no_pin


def test_a_clock_set_back_does_not_lock_the_librarian_out_for_longer(tmp_path):
    guard = PinGuard(hash_pin("2468", n=1 << 10), tmp_path / "pin.json", 1, timedelta(minutes=5))
    guard.check("0000", NOW + timedelta(days=30))  # the clock ran ahead, then NTP fixed it
    assert guard.check("2468", NOW).ok


def test_the_hash_goes_into_the_librarian_section_keeping_everything_else():
    text = '# my kiosk\n[kiosk]\nid = "corner-3-2"   # keep me\n\n[librarian]\n# the PIN\nmax_tries = 4\n'
    updated = with_pin_hash(text, "scrypt$1$8$1$c2FsdA==$a2V5")
    assert updated.startswith('# my kiosk\n[kiosk]\nid = "corner-3-2"   # keep me\n')
    assert '[librarian]\npin_hash = "scrypt$1$8$1$c2FsdA==$a2V5"\n# the PIN\nmax_tries = 4\n' in updated
    again = with_pin_hash(updated, "scrypt$2$8$1$c2FsdA==$a2V5")
    assert again.count("pin_hash") == 1 and "scrypt$2$" in again
    assert config.parse(again).librarian.max_tries == 4
    fresh = with_pin_hash('[kiosk]\nid = "x"', "h")
    assert fresh == '[kiosk]\nid = "x"\n\n[librarian]\npin_hash = "h"\n'


def test_set_pin_writes_the_hash_into_the_config_file(tmp_path):
    settings = tmp_path / "kiosk.toml"
    settings.write_text('[kiosk]\nname = "三年级二班"\n', encoding="utf-8")
    settings.chmod(0o600)
    done = subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(settings), "librarian", "set-pin",
                           "--stdin"], input="2468\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = config.load(settings)
    assert loaded.kiosk.name == "三年级二班" and verify_pin("2468", loaded.librarian.pin_hash)
    assert "2468" not in settings.read_text() and settings.stat().st_mode & 0o777 == 0o600
    refused = subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(settings), "librarian", "set-pin",
                              "--stdin"], input="12\n", capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "4 to 12 digits" in refused.stderr
    assert verify_pin("2468", config.load(settings).librarian.pin_hash)
