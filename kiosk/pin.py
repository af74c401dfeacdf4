"""The librarian's PIN: stored only as a salted scrypt hash, guarded by a lock-out.

A PIN is short, so the hash is deliberately slow (scrypt, 16 MiB) and the kiosk counts
wrong tries: after ``max_tries`` in a row the librarian's mode locks for ``lockout_s``.
The count is kept on disk, so pulling the plug does not buy a child more guesses.
Checking takes a noticeable fraction of a second on a Pi: the screen does it in a worker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

SCHEME = "scrypt"
#: CPU/memory cost 2**14, block size 8, parallelism 1: 16 MiB, ~50 ms here, ~0.3 s on a Pi
N, R, P = 1 << 14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_DIGITS, MAX_DIGITS = 4, 12


class BadPin(ValueError):
    """Not a PIN the kiosk accepts (the message says why)."""


def looks_like_pin(text: str) -> bool:
    return text.isdigit() and MIN_DIGITS <= len(text) <= MAX_DIGITS


def check_pin_format(pin: str) -> str:
    if not looks_like_pin(pin):
        raise BadPin(f"a PIN is {MIN_DIGITS} to {MAX_DIGITS} digits")
    return pin


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = N, r: int = R, p: int = P) -> str:
    """``scrypt$n$r$p$salt$key``, both in base64: what goes into ``[librarian] pin_hash``."""
    check_pin_format(pin)
    salt = salt or secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=KEY_BYTES)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches ``stored``; False for any malformed hash, never an error."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(key, validate=True)
        actual = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt, validate=True), n=int(n), r=int(r),
                                p=int(p), maxmem=64 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def valid_hash(stored: str) -> bool:
    parts = stored.split("$")
    return len(parts) == 6 and parts[0] == SCHEME and all(x.isdigit() for x in parts[1:4])


@dataclass(frozen=True)
class PinAnswer:
    ok: bool
    #: wrong tries left before the lock-out (when not ok and not locked)
    tries_left: int = 0
    #: until when the librarian's mode is locked (when locked)
    locked_until: datetime | None = None
    #: no PIN has been set: the librarian's mode cannot open
    no_pin: bool = False


class PinGuard:
    """Checks PINs and counts wrong ones in a small file under the data directory."""

    def __init__(self, stored_hash: str, state_file: Path, max_tries: int, lockout: timedelta) -> None:
        self.stored_hash = stored_hash
        self.state_file = state_file
        self.max_tries = max_tries
        self.lockout = lockout

    def _load(self) -> tuple[int, datetime | None]:
        try:
            data = json.loads(self.state_file.read_text())
            until = datetime.fromisoformat(data["locked_until"]) if data.get("locked_until") else None
            return int(data.get("failures", 0)), until
        except (OSError, ValueError, KeyError, TypeError):
            return 0, None

    def _save(self, failures: int, locked_until: datetime | None) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"failures": failures,
                                         "locked_until": locked_until.isoformat() if locked_until else None}))
        os.replace(temporary, self.state_file)

    def locked_until(self, now: datetime) -> datetime | None:
        _failures, until = self._load()
        # a clock set backwards must not lock the librarian out for longer than one lock-out
        if until is not None and now < until <= now + self.lockout:
            return until
        return None

    def check(self, pin: str, now: datetime) -> PinAnswer:
        if not self.stored_hash:
            return PinAnswer(False, no_pin=True)
        locked = self.locked_until(now)
        if locked is not None:
            return PinAnswer(False, locked_until=locked)
        if verify_pin(pin, self.stored_hash):
            self._save(0, None)
            return PinAnswer(True)
        failures, _until = self._load()
        failures += 1
        if failures >= self.max_tries:
            until = now + self.lockout
            self._save(0, until)
            return PinAnswer(False, locked_until=until)
        self._save(failures, None)
        return PinAnswer(False, tries_left=self.max_tries - failures)
