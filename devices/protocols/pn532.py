"""PN532 (13.56 MHz, MIFARE) over UART (HSU), 115200 8N1: a polled, request/response reader.

Frames, as in the NXP PN532 user manual:
  normal information frame  00 00 FF LEN LCS TFI PD0…PDn DCS 00
  ACK                        00 00 FF 00 FF 00
  NACK                       00 00 FF FF 00 00
  application error          00 00 FF 01 FF 7F 81 00
with LCS = -LEN and DCS = -(TFI + PD…) (mod 256), TFI D4 from the host and D5 from the chip.
The host wakes the chip from low-power mode with 55 55 00 00…, configures the SAM (normal
mode), and then polls with InListPassiveTarget; each command is answered by an ACK and
then by a response frame whose command code is the request's plus one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bookcorner.devices.events import Text
from bookcorner.devices.protocols import Rejected
from bookcorner.i18n import N_

HOST_TO_PN532 = 0xD4
PN532_TO_HOST = 0xD5
START_CODE = b"\x00\xff"
ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
WAKE_UP = b"\x55\x55" + bytes(14)

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A

SAM_NORMAL_MODE = 0x01
RF_ITEM_MAX_RETRIES = 0x05
BAUD_106K_TYPE_A = 0x00
UID_LENGTHS = (4, 7, 10)


def checksum(data: bytes) -> int:
    """The byte that makes ``data`` sum to zero (mod 256): LCS for LEN, DCS for TFI + PD."""
    return -sum(data) & 0xFF


def information_frame(tfi: int, data: bytes) -> bytes:
    body = bytes([tfi]) + data
    if len(body) > 0xFF:
        raise ValueError("extended frames are not supported")
    length = len(body)
    return b"\x00" + START_CODE + bytes([length, checksum(bytes([length]))]) + body + bytes([checksum(body)]) + b"\x00"


def command_frame(code: int, params: bytes = b"") -> bytes:
    return information_frame(HOST_TO_PN532, bytes([code]) + params)


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Nack:
    pass


@dataclass(frozen=True)
class ErrorFrame:
    """The chip's syntax error frame: it could not understand the host's frame."""


@dataclass(frozen=True)
class Frame:
    """A checked information frame; ``data`` follows the TFI (command code first)."""

    tfi: int
    data: bytes


Parsed = Ack | Nack | ErrorFrame | Frame | Rejected


class FrameParser:
    """Finds frames in a byte stream from one direction, resynchronising on bad ones."""

    def __init__(self, tfi: int = PN532_TO_HOST) -> None:
        self.tfi = tfi
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Parsed]:
        self._buffer += data
        buffer = self._buffer
        results: list[Parsed] = []
        while True:
            start = buffer.find(START_CODE)
            if start < 0:
                keep = 1 if buffer.endswith(b"\x00") else 0
                self._skip(len(buffer) - keep, results)
                return results
            self._skip(start, results)
            if len(buffer) < 4:
                return results
            length, lcs = buffer[2], buffer[3]
            if (length, lcs) == (0x00, 0xFF):
                results.append(Ack())
                del buffer[:4]
                continue
            if (length, lcs) == (0xFF, 0x00):
                results.append(Nack())
                del buffer[:4]
                continue
            if (length, lcs) == (0xFF, 0xFF):
                results.append(self._reject("unsupported", N_("extended frame not supported"), buffer[:5]))
                del buffer[:2]
                continue
            if (length + lcs) & 0xFF or length == 0:
                results.append(self._reject("checksum", N_("bad length checksum: {bytes}"), buffer[:4]))
                del buffer[:2]
                continue
            if len(buffer) < 4 + length + 1:
                return results
            body = bytes(buffer[4 : 4 + length])
            dcs = buffer[4 + length]
            if (sum(body) + dcs) & 0xFF:
                results.append(self._reject("checksum", N_("bad data checksum: {bytes}"), buffer[: 5 + length]))
                del buffer[:2]
                continue
            del buffer[: 5 + length]
            if body == b"\x7f":
                results.append(ErrorFrame())
            elif body[0] != self.tfi:
                results.append(self._reject("unexpected", N_("frame in the wrong direction: {bytes}"), body))
            else:
                results.append(Frame(body[0], body[1:]))

    def _skip(self, count: int, results: list[Parsed]) -> None:
        """Drop bytes before a start code; only non-zero ones are noise (zeros are pre/postambles)."""
        skipped = bytes(self._buffer[:count])
        del self._buffer[:count]
        if skipped.strip(b"\x00"):
            results.append(self._reject("noise", N_("noise between frames: {bytes}"), skipped))

    @staticmethod
    def _reject(code: str, msgid: str, raw: bytes | bytearray) -> Rejected:
        return Rejected(code, Text.of(msgid, bytes=bytes(raw).hex(" ")), bytes(raw))

    def idle(self) -> list[Parsed]:
        pending = bytes(self._buffer)
        self._buffer.clear()
        if pending.strip(b"\x00"):
            return [self._reject("truncated", N_("truncated frame: {bytes}"), pending)]
        return []


def target_uid(response: bytes) -> bytes | None:
    """The UID in an InListPassiveTarget response (after its command code), None if no card.

    Layout for 106 kbps type A: NbTg, Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID…
    """
    if not response or response[0] == 0:
        return None
    if len(response) < 6:
        raise Pn532Error(Text.of(N_("malformed target data: {bytes}"), bytes=response.hex(" ")))
    uid_length = response[5]
    uid = response[6 : 6 + uid_length]
    if uid_length not in UID_LENGTHS or len(uid) != uid_length:
        raise Pn532Error(Text.of(N_("malformed target data: {bytes}"), bytes=response.hex(" ")))
    return uid


class Pn532Error(Exception):
    """The chip answered wrongly or not at all; the reader thread retries and reports."""

    def __init__(self, message: Text) -> None:
        super().__init__(message.msgid)
        self.message = message


class Pn532Timeout(Pn532Error):
    pass


class SerialPort(Protocol):
    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...

    @property
    def in_waiting(self) -> int: ...


class Pn532:
    """One PN532 on a serial port; blocking calls, used by one reader thread."""

    def __init__(self, port: SerialPort, rejected: Counter[str] | None = None, ack_timeout: float = 0.1,
                 response_timeout: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.port = port
        self.rejected: Counter[str] = rejected if rejected is not None else Counter()
        self.ack_timeout = ack_timeout
        self.response_timeout = response_timeout
        self.clock = clock
        self._parser = FrameParser(PN532_TO_HOST)
        self._pending: list[Parsed] = []

    def _next(self, deadline: float) -> Parsed:
        while True:
            while self._pending:
                item = self._pending.pop(0)
                if isinstance(item, Rejected):
                    self.rejected[item.code] += 1
                    continue
                return item
            if self.clock() >= deadline:
                raise Pn532Timeout(Text.of(N_("PN532 did not answer")))
            data = self.port.read(max(1, self.port.in_waiting))
            if data:
                self._pending += self._parser.feed(data)

    def call(self, code: int, params: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one command; the response's data after its command code."""
        self._parser.idle()
        self._pending.clear()
        self.port.write(command_frame(code, params))
        reply = self._next(self.clock() + self.ack_timeout)
        if isinstance(reply, Nack):
            raise Pn532Error(Text.of(N_("PN532 refused a command (NACK)")))
        if not isinstance(reply, Ack):
            raise Pn532Error(Text.of(N_("PN532 sent no ACK")))
        deadline = self.clock() + (self.response_timeout if timeout is None else timeout)
        while True:
            reply = self._next(deadline)
            if isinstance(reply, ErrorFrame):
                raise Pn532Error(Text.of(N_("PN532 reported a syntax error")))
            if isinstance(reply, Frame) and reply.data[:1] == bytes([code + 1]):
                return reply.data[1:]
            self.rejected["unexpected"] += 1

    def abort(self) -> None:
        """An ACK from the host cancels the command the chip is working on."""
        self.port.write(ACK)

    def wake(self) -> None:
        """Leave low-power mode and set the SAM to normal mode (no secure module in use)."""
        self.port.write(WAKE_UP)
        self.call(SAM_CONFIGURATION, bytes([SAM_NORMAL_MODE, 0x14, 0x01]))

    def firmware_version(self) -> str:
        data = self.call(GET_FIRMWARE_VERSION)
        if len(data) < 4:
            raise Pn532Error(Text.of(N_("malformed firmware version: {bytes}"), bytes=data.hex(" ")))
        return f"PN5{data[0]:02X} {data[1]}.{data[2]}"

    def limit_retries(self, passive_activation: int = 1) -> None:
        """Make InListPassiveTarget give up after a few tries instead of waiting for a card forever."""
        self.call(RF_CONFIGURATION, bytes([RF_ITEM_MAX_RETRIES, 0xFF, 0x01, passive_activation]))

    def poll(self) -> bytes | None:
        """The UID of the card in the field, or None."""
        try:
            response = self.call(IN_LIST_PASSIVE_TARGET, bytes([1, BAUD_106K_TYPE_A]))
        except Pn532Timeout:
            self.abort()
            raise
        return target_uid(response)
