"""All of a kiosk's input devices behind one object and one stream of events.

    devices = Devices(config.devices, sink=lambda event: app.post_message(DeviceInput(event)))
    devices.start()
    ...
    devices.stop()

``sink`` is called from the reader threads (Textual's ``post_message`` is thread-safe);
without a sink, events go to ``devices.events``, a thread-safe queue. The terminal's
keystrokes go through :meth:`Devices.wedge`; demos and tests can :meth:`simulate_scan` and
:meth:`simulate_tap`.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from bookcorner.devices.config import DevicesConfig
from bookcorner.devices.events import CardTap, DeviceEvent, Scan, Sink
from bookcorner.devices.reader import ReaderThread
from bookcorner.devices.wedge import KeyboardWedge


class Devices:
    def __init__(self, config: DevicesConfig, sink: Sink | None = None, report_rejects: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.events: queue.Queue[DeviceEvent] = queue.Queue()
        self.sink: Sink = sink or self.events.put
        self.clock = clock
        self.report_rejects = report_rejects
        self.readers: list[ReaderThread] = []
        self._wedge: KeyboardWedge | None = None

    def start(self) -> Devices:
        """Start one reader thread per configured device (none: keyboard wedge only)."""
        if self.readers:
            raise RuntimeError("devices already started; make a new Devices to start again")
        config = self.config
        if config.scanner.configured:
            from bookcorner.devices.evdev_reader import KeyboardReader

            self.readers.append(KeyboardReader("scanner", config, self.sink, clock=self.clock))
        if config.card_keyboard.configured:
            from bookcorner.devices.evdev_reader import KeyboardReader

            self.readers.append(KeyboardReader("card-keyboard", config, self.sink, clock=self.clock))
        if config.reader.protocol != "none":
            from bookcorner.devices.serial_reader import SerialCardReader

            self.readers.append(SerialCardReader(config, self.sink, clock=self.clock, report_rejects=self.report_rejects))
        for reader in self.readers:
            reader.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        for reader in self.readers:
            reader.stop()
        deadline = time.monotonic() + timeout
        for reader in self.readers:
            reader.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Devices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get(self, timeout: float | None = None) -> DeviceEvent | None:
        """The next event from ``events`` (when no sink was given), None after ``timeout``."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def wedge(self) -> KeyboardWedge:
        """Where the kiosk feeds terminal keystrokes (one wedge per kiosk, sharing the sink)."""
        if self._wedge is None:
            self._wedge = KeyboardWedge(self.config, self.sink, clock=self.clock)
        return self._wedge

    def simulate_scan(self, text: str) -> None:
        self.sink(Scan(text, "simulated:scanner", self.clock()))

    def simulate_tap(self, card_id: str) -> None:
        self.sink(CardTap(card_id, "simulated:reader", self.clock()))

    def diagnostics(self) -> dict[str, dict[str, int]]:
        """Per device: frames, scans, rejects by reason, connects, disconnects (also after stop)."""
        return {reader.source: dict(sorted(reader.counters.items())) for reader in self.readers}
