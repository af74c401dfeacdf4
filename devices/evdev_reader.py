"""Keyboard devices through evdev: the barcode scanner and card readers that type.

The reader grabs the device (so scans never leak into the console or the kiosk's
terminal), decodes its key events with its own Shift state, and emits one :class:`Scan`
(or :class:`CardTap`) per line. On unplug (ENODEV) it releases the dead fd at once (a
dead fd left in select() spins at 100 % CPU), says so, and looks for the device again,
re-grabbing it when it is back; no restart needed.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable
from typing import Literal, Protocol

from bookcorner.devices.cardid import typed_card_id
from bookcorner.devices.config import DevicesConfig, KeyboardDeviceConfig
from bookcorner.devices.debounce import Debouncer
from bookcorner.devices.events import CardTap, Scan, Sink, Text
from bookcorner.devices.keyboard import RECORD_64, KeyboardDecoder, RawEvent, RecordStream
from bookcorner.devices.keystrokes import Burst, Fragment, KeystrokeClassifier, Result
from bookcorner.devices.reader import ReaderThread
from bookcorner.i18n import N_

Role = Literal["scanner", "card-keyboard"]
IDLE_WAIT = 0.5

FRAGMENT_MESSAGES = {
    "gap": N_("{device}: partial scan dropped, keys too far apart: {text}"),
    "unterminated": N_("{device}: scan without Enter at the end ignored: {text} (set the scanner's suffix to Enter)"),
    "short": N_("{device}: scan shorter than the minimum length ignored: {text}"),
    "slow-enter": N_("{device}: partial scan dropped, Enter came too late: {text}"),
    "overflow": N_("{device}: scan too long, dropped: {text}"),
    "lost-events": N_("{device}: scan lost, the system dropped input events: {text}"),
}


class EventSource(Protocol):
    """An open keyboard device: its events as :class:`RawEvent` values."""

    name: str
    path: str

    def fileno(self) -> int: ...

    def read(self) -> list[RawEvent]:
        """The events available now; OSError when the device is gone."""
        ...

    def close(self) -> None: ...


class EvdevSource:
    """A /dev/input/event* device opened with python-evdev, grabbed when asked."""

    def __init__(self, path: str, grab: bool) -> None:
        import evdev

        self.path = path
        self.device = evdev.InputDevice(path)
        self.name = self.device.name
        self.grabbed = False
        if grab:
            try:
                self.device.grab()
            except OSError:
                self.device.close()
                raise
            self.grabbed = True

    def fileno(self) -> int:
        return self.device.fd

    def read(self) -> list[RawEvent]:
        try:
            return [RawEvent(e.sec, e.usec, e.type, e.code, e.value) for e in self.device.read()]
        except BlockingIOError:
            return []

    def close(self) -> None:
        if self.grabbed:
            try:
                self.device.ungrab()
            except OSError:
                pass  # the device is gone, and its grab with it
        try:
            self.device.close()
        except OSError:
            pass


class RawRecordSource:
    """input_event records read straight from a file descriptor (a pipe, a FIFO, a capture).

    End of file counts as an unplug, as ENODEV does for a real device.
    """

    def __init__(self, fd: int, path: str = "pipe", name: str = "raw input events", record_size: int = RECORD_64.size) -> None:
        self.fd = fd
        self.path = path
        self.name = name
        self._stream = RecordStream(record_size)

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[RawEvent]:
        data = os.read(self.fd, 4096)
        if not data:
            raise OSError(errno.ENODEV, "end of stream")
        return self._stream.feed(data)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def describe_match(match: KeyboardDeviceConfig) -> str:
    if match.path:
        return match.path
    parts = [f"name~{match.name}"] if match.name else []
    parts += [f"vendor={match.vendor}"] if match.vendor else []
    parts += [f"product={match.product}"] if match.product else []
    return ",".join(parts)


class KeyboardReader(ReaderThread):
    """One keyboard device (found by path or by name/vendor), read for the kiosk's lifetime."""

    def __init__(self, role: Role, config: DevicesConfig, sink: Sink,
                 open_source: Callable[[], EventSource | None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.role = role
        self.config = config
        self.match = config.scanner if role == "scanner" else config.card_keyboard
        super().__init__(f"{role}:{describe_match(self.match)}", sink, clock)
        self._open_source = open_source or self._discover
        self.debouncer = Debouncer(config.card_hold_off)
        self.decoder: KeyboardDecoder | None = None

    def _discover(self) -> EventSource | None:
        from bookcorner.devices.discovery import find_keyboard

        path = find_keyboard(self.match)
        return None if path is None else EvdevSource(path, self.match.grab)

    def named(self, device: str) -> Text:
        """The device with what it is, for the people reading the kiosk's top bar: "scanner
        vendor=05e0,product=1200: not connected" (the lab found the bare match said nothing)."""
        if self.role == "scanner":
            return Text.of(N_("scanner {device}"), device=device)
        return Text.of(N_("keyboard card reader {device}"), device=device)

    def serve(self) -> None:
        device = self.named(self.source.split(":", 1)[1])
        try:
            source = self._open_source()
        except PermissionError:
            self.status("error", Text.of(N_("{device}: no permission to read it; the udev rules hand it to the kiosk user (sudo bookcorner udev-rules --output /etc/udev/rules.d/70-bookcorner.rules, then plug it in again), or add that user to the 'input' group"), device=device))
            self.wait(self.config.rescan_interval_s)
            return
        except OSError as error:
            if error.errno == errno.EBUSY:
                self.status("error", Text.of(N_("{device}: another program has grabbed it (is a second kiosk running?)"), device=device))
            elif error.errno in (errno.ENOENT, errno.ENODEV):
                self.status("disconnected", Text.of(N_("{device}: not connected, waiting for it"), device=device))
            else:
                self.status("error", Text.of(N_("{device}: cannot open it: {error}"), device=device, error=error))
            self.wait(self.config.rescan_interval_s)
            return
        if source is None:
            self.status("disconnected", Text.of(N_("{device}: not connected, waiting for it"), device=device))
            self.wait(self.config.rescan_interval_s)
            return
        self.counters["connects"] += 1
        self.status("connected", Text.of(N_("{device}: connected ({name})"), device=self.named(source.path), name=source.name))
        try:
            self._pump(source)
        except OSError as error:
            self.counters["disconnects"] += 1
            reason = os.strerror(error.errno) if error.errno else str(error)
            self.status("disconnected", Text.of(N_("{device}: disconnected ({reason})"), device=self.named(source.path),
                                                reason=reason))
        finally:
            source.close()
            if self.decoder is not None and self.decoder.reset():
                self.counters["dropped-unplugged"] += 1

    def _pump(self, source: EventSource) -> None:
        match = self.match
        min_length = match.min_length
        self.decoder = decoder = KeyboardDecoder(KeystrokeClassifier(self.config.max_key_gap, min_length), match.terminators)
        last_arrival = self.clock()
        while not self.stopping:
            waiting = decoder.classifier.pending
            timeout = self.config.max_key_gap if waiting else IDLE_WAIT
            ready, _, _ = select.select([source.fileno(), self._wake_read], [], [], timeout)
            if self._wake_read in ready:
                return
            if not ready:
                if waiting and decoder.last_time is not None:
                    # The decoder runs on the kernel's event clock; estimate "now" on it.
                    now = decoder.last_time + (self.clock() - last_arrival)
                    self._handle(decoder.expire(now), source.path)
                continue
            events = source.read()
            last_arrival = self.clock()
            for event in events:
                self._handle(decoder.feed(event), source.path)

    def _handle(self, results: list[Result], device: str) -> None:
        for result in results:
            if isinstance(result, Burst):
                self._line(result.text)
            elif isinstance(result, Fragment) and result.text:
                self.counters[f"dropped-{result.reason}"] += 1
                self.status("warning", Text.of(FRAGMENT_MESSAGES[result.reason], device=device, text=result.text))

    def _line(self, text: str) -> None:
        now = self.clock()
        if self.role == "scanner":
            self.counters["scans"] += 1
            self.emit(Scan(text, self.source, now))
            return
        typed_format = self.config.card_keyboard.typed_format
        card_id = typed_card_id(text, typed_format, self.config.card_id_format)
        if card_id is None:
            self.counters["not-a-card"] += 1
            self.status("warning", Text.of(N_("{device}: typed {text!r}, which is not a card number ({format})"),
                                           device=self.source, text=text, format=typed_format))
            return
        self.counters["cards"] += 1
        if self.debouncer.tap(card_id, now):
            self.emit(CardTap(card_id, self.source, now))
