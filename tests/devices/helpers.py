"""Collecting events from reader threads, and a PN532 on the far end of a pty."""

from __future__ import annotations

import os
import select
import threading
import time
import tty

import msgspec

from bookcorner.devices.config import DevicesConfig
from bookcorner.devices.events import CardTap, DeviceStatus, Scan


def devices_config(**fields) -> DevicesConfig:
    """A [devices] section as the TOML would give it, with quick retries for tests."""
    raw = {"rescan_interval_s": 0.02, **fields}
    reader = raw.setdefault("reader", {})
    reader.setdefault("reconnect_interval_s", 0.02)
    return msgspec.convert(raw, DevicesConfig, strict=True)


class Collector:
    """A thread-safe sink that a test can wait on."""

    def __init__(self) -> None:
        self.events: list = []
        self._changed = threading.Condition()

    def __call__(self, event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait(self, predicate, timeout: float = 3.0):
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout):
                raise AssertionError(f"timed out; events so far: {self.events}")

    def wait_count(self, kind, count: int, timeout: float = 3.0) -> list:
        self.wait(lambda events: len([e for e in events if isinstance(e, kind)]) >= count, timeout)
        return self.of(kind)

    def wait_status(self, state: str, containing: str = "", timeout: float = 3.0) -> DeviceStatus:
        def found(events):
            return [e for e in events if isinstance(e, DeviceStatus) and e.state == state and containing in e.text()]

        self.wait(lambda events: bool(found(events)), timeout)
        return found(self.events)[-1]

    def of(self, kind) -> list:
        with self._changed:
            return [e for e in self.events if isinstance(e, kind)]

    @property
    def scans(self) -> list[str]:
        return [e.text for e in self.of(Scan)]

    @property
    def cards(self) -> list[str]:
        return [e.card_id for e in self.of(CardTap)]


def wait_until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.002)


def _frame(data: bytes) -> bytes:
    body = b"\xd5" + data
    return b"\x00\x00\xff" + bytes([len(body), -len(body) & 0xFF]) + body + bytes([-sum(body) & 0xFF]) + b"\x00"


class FakePn532(threading.Thread):
    """A PN532 in HSU mode behind a pty: answers the host's frames as the chip does.

    Written from the user manual independently of devices.protocols.pn532, so the test
    checks the driver against the datasheet and not against itself. ``unplug()`` closes
    the master side, which the host sees exactly as a USB serial adapter pulled out.
    """

    ACK = bytes.fromhex("0000ff00ff00")

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.card: bytes | None = None
        self.commands: list[int] = []
        self.bad_frames = 0
        self.silent = False
        self._unplug = threading.Event()

    def unplug(self) -> None:
        self._unplug.set()
        self.join(2)

    def run(self) -> None:
        buffer = bytearray()
        try:
            while not self._unplug.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.01)
                if ready:
                    buffer += os.read(self.master, 1024)
                    self._answer(buffer)
        finally:
            os.close(self.master)
            os.close(self.slave)

    def _answer(self, buffer: bytearray) -> None:
        while True:
            start = buffer.find(b"\x00\xff")
            if start < 0 or len(buffer) < start + 4:
                return
            length, lcs = buffer[start + 2], buffer[start + 3]
            if (length, lcs) == (0x00, 0xFF):  # the host's ACK: abort, nothing to answer
                del buffer[: start + 4]
                continue
            if len(buffer) < start + 5 + length:
                return
            body = bytes(buffer[start + 4 : start + 4 + length])
            dcs = buffer[start + 4 + length]
            del buffer[: start + 5 + length]
            if (length + lcs) & 0xFF or (sum(body) + dcs) & 0xFF or body[:1] != b"\xd4":
                self.bad_frames += 1
                os.write(self.master, bytes.fromhex("0000ffff0000"))  # NACK
                continue
            command = body[1]
            self.commands.append(command)
            if self.silent:
                continue
            reply = self._reply(command)
            os.write(self.master, self.ACK + _frame(reply))

    def _reply(self, command: int) -> bytes:
        if command == 0x14:  # SAMConfiguration
            return b"\x15"
        if command == 0x02:  # GetFirmwareVersion: PN532 v1.6
            return bytes([0x03, 0x32, 0x01, 0x06, 0x07])
        if command == 0x32:  # RFConfiguration
            return b"\x33"
        if command == 0x4A:  # InListPassiveTarget
            card = self.card
            if card is None:
                return b"\x4b\x00"
            return bytes([0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, len(card)]) + card
        return b"\x7f"
