"""The central server's background jobs (the retention period, the overdue notices, the
replay bridge): each a round of work repeated on a daemon thread of its own, started in the
app's lifespan and stopped with the server."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PeriodicJob:
    """Calls ``round`` until stopped, waiting the seconds it returns between rounds (``every``
    after a round that failed: the failure is logged, and the next round tries again)."""

    #: the thread's name, and the job's in the log
    name = "bookcorner-job"
    #: how long ``stop`` waits for a round to end
    stop_timeout_s = 40.0

    def __init__(self, every: float) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.stop_timeout_s)

    def stopping(self) -> bool:
        return self._stop.is_set()

    def first(self) -> None:
        """What the thread does once before its first round (nothing here)."""

    def round(self) -> float:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self.first()
        except Exception:  # not migrated yet, busy: the rounds go on
            log.exception("%s: the start-up step failed", self.name)
        while not self._stop.is_set():
            wait = self.every
            try:
                wait = self.round()
            except Exception:  # busy, unreachable, not migrated yet: the next round tries again
                log.exception("%s: the round failed", self.name)
            if self._stop.wait(wait):
                return
