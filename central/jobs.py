"""The central server's background jobs (the retention period, the overdue notices, the
replay bridge): each a round of work repeated on a daemon thread of its own, started in the
app's lifespan and stopped with the server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

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


class EverySchool(PeriodicJob):
    """One job for every school of a district (``central.schools``), on one thread: each
    school's own job (made by ``make`` from the school's store, once, and kept, with whatever
    state it keeps between rounds) has its ``first`` step once and a ``round`` in each round
    of this one; the next round comes when the soonest school's is due. A school added while
    the server runs is taken in at the next round; one school's failure is logged and the
    others go on. With one school (a single-school installation) it is that school's job."""

    def __init__(self, make: Callable[[Any], PeriodicJob], stores: Callable[[], Iterable[Any]]) -> None:
        self._make, self._stores = make, stores
        super().__init__(60.0)
        self._jobs: dict[int, tuple[PeriodicJob, float]] = {}

    def first(self) -> None:
        """Nothing before the rounds: each school's first step is taken in its first round."""

    def round(self) -> float:
        moment = time.monotonic()
        soonest = None
        for store in self._stores():
            if self.stopping():
                break
            key = id(store)
            if key not in self._jobs:
                job = self._make(store)
                job._stop = self._stop  # (stopping the district's job stops each school's round)
                self.name = job.name
                try:
                    job.first()
                except Exception:  # not migrated yet, busy: the rounds go on
                    log.exception("%s (%s): the start-up step failed", job.name, _school_named(store))
                self._jobs[key] = (job, moment)
            job, due = self._jobs[key]
            if due <= moment:
                wait = job.every
                try:
                    wait = job.round()
                except Exception:  # busy, unreachable, not migrated yet: the next round tries again
                    log.exception("%s (%s): the round failed", job.name, _school_named(store))
                due = time.monotonic() + wait
                self._jobs[key] = (job, due)
            soonest = due if soonest is None else min(soonest, due)
        if soonest is None:
            return 60.0
        return max(0.0, min(soonest - time.monotonic(), 60.0))


def _school_named(store: Any) -> str:
    return f"school {store.school}" if getattr(store, "school", "") else "the implicit school"
