"""What every long-lived device reader thread shares: stopping, reporting, counting.

One thread per device, for the life of the kiosk: it opens the device, reads it until it
goes away, reports that, and waits for it to come back. Nothing it meets (a dead fd, a
sink that raises, a decoder bug) may end it silently: the kiosk must never freeze on a
device that stopped talking.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

from bookcorner.devices.events import DeviceEvent, DeviceState, DeviceStatus, Sink, Text
from bookcorner.i18n import N_

log = logging.getLogger("devices")


class ReaderThread(threading.Thread):
    def __init__(self, source: str, sink: Sink, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name=f"devices {source}", daemon=True)
        self.source = source
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self._sink = sink
        self._stopping = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._wake_lock = threading.Lock()
        self._wake_closed = False
        self._last_status: tuple[str, Text] | None = None

    # -- life cycle ---------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()
        with self._wake_lock:  # never write to the fd number once it is closed and reused
            if not self._wake_closed:
                os.write(self._wake_write, b"x")

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True when the thread should go on."""
        return not self._stopping.wait(max(0.0, seconds))

    def run(self) -> None:
        try:
            while not self.stopping:
                try:
                    self.serve()
                except Exception as error:  # the last line of defence: report, pause, go on
                    log.exception("device reader %s failed", self.source)
                    self.counters["crashes"] += 1
                    self.status("error", Text.of(N_("{device}: unexpected error, retrying: {error}"), device=self.source, error=error))
                    self.wait(1.0)
        finally:
            with self._wake_lock:
                self._wake_closed = True
                os.close(self._wake_read)
                os.close(self._wake_write)

    def serve(self) -> None:
        """Open, read, close the device once; return to be called again (until stopped)."""
        raise NotImplementedError

    # -- reporting ----------------------------------------------------------------------
    def emit(self, event: DeviceEvent) -> None:
        try:
            self._sink(event)
        except Exception:
            # the kind of event and its device only: a scan or tap carries a child's card number
            log.exception("device event sink failed for a %s from %s", type(event).__name__, self.source)
            self.counters["sink-errors"] += 1

    def status(self, state: DeviceState, message: Text) -> None:
        """Report a change of the device's state; the same state twice in a row is said once."""
        if state != "warning":
            if self._last_status == (state, message):
                return
            self._last_status = (state, message)
        self.emit(DeviceStatus(self.source, state, message, self.clock()))
