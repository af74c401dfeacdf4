"""The morning storm: a server process takes at most ``push_limit`` pushes at once, lets at
most ``push_queue`` more wait for a turn (each at most ``push_wait_s``), and answers any
other push at once with 429 and Retry-After, before its body is read.

The Retry-After it sends says when this process is likely to have a turn for one more push:
it measures how long a push holds a turn (a moving average), so it takes about
``limit / push_s`` pushes a second, and it books every kiosk it turns away a slot after the
pushes it holds, those waiting, and the kiosks it already told to come back. So 3,000
kiosks refused within a second are told 2, 3, ... 40 s, spread over the time the server
needs for them, rather than all "2 s" (and back together, to be refused again). Never
less than ``busy_retry_after_s`` nor more than ``busy_retry_after_max_s``.

So when thousands of kiosks reconnect at 08:00 the server's memory and its database
connections stay bounded (at most limit + queue bodies held, at most limit connections
busy with pushes), and a kiosk told 429 comes back later (the sync daemon waits at least
Retry-After, plus a random part so that they do not all come back together). Nothing is
lost: a refused push took nothing, and the kiosk sends the same batch again.

One ``Admission`` per process, in ``app.state.admission`` (the app factory makes it from
the settings); the route asks for a turn through the ``Admitted`` dependency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from bookcorner.central.api.errors import HTTPError
from bookcorner.central.config import Settings


@dataclass
class Counts:
    """What the admission did since the process started (for logs and the benchmark)."""

    admitted: int = 0
    waited: int = 0
    refused: int = 0
    peak_in_flight: int = 0
    peak_waiting: int = 0
    #: the longest Retry-After sent
    longest_retry_after_s: int = 0


#: how much of the moving average of a push's time the latest push makes
PUSH_S_WEIGHT = 0.1


class Admission:
    def __init__(self, limit: int, queue: int, wait_s: float, retry_after_s: int,
                 retry_after_max_s: int = 120, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or queue < 0 or wait_s < 0 or retry_after_s < 1 or retry_after_max_s < retry_after_s:
            raise ValueError("push_limit >= 1, push_queue >= 0, push_wait_s >= 0 and "
                             "1 <= busy_retry_after_s <= busy_retry_after_max_s")
        self.limit, self.queue, self.wait_s, self.retry_after_s = limit, queue, wait_s, retry_after_s
        self.retry_after_max_s, self.clock = retry_after_max_s, clock
        self.in_flight = 0
        self.waiting = 0
        self.counts = Counts()
        #: seconds a push holds a turn (moving average; 0 until one was taken)
        self.push_s = 0.0
        #: (monotonic) until when the kiosks told to come back are booked
        self.booked_until = 0.0
        self._turns: asyncio.Semaphore | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(settings.push_limit, settings.push_queue, settings.push_wait_s, settings.busy_retry_after_s,
                   settings.busy_retry_after_max_s)

    def retry_after(self) -> int:
        """Seconds until this process likely has a turn for one more push, and book it:
        each push takes ``push_s / limit`` of the server's time, after those it holds,
        those waiting and those already told to come back."""
        now, slot = self.clock(), self.push_s / self.limit
        start = min(max(self.booked_until, now + (self.in_flight + self.waiting) * slot), now + self.retry_after_max_s)
        self.booked_until = start + slot  # (never past the longest wait: beyond it, all are told that)
        return max(self.retry_after_s, min(self.retry_after_max_s, math.ceil(start - now)))

    def _busy(self, why: str) -> HTTPError:
        self.counts.refused += 1
        wait = self.retry_after()
        self.counts.longest_retry_after_s = max(self.counts.longest_retry_after_s, wait)
        return HTTPError(429, "busy", f"{why}; try again after {wait} s", {"Retry-After": str(wait)})

    def _took(self, seconds: float) -> None:
        self.push_s = seconds if self.push_s == 0 else self.push_s + PUSH_S_WEIGHT * (seconds - self.push_s)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the ``limit`` turns while the body is read and the batch taken."""
        if self._turns is None:  # made on the server's own event loop
            self._turns = asyncio.Semaphore(self.limit)
        turns = self._turns
        if turns.locked():
            await self._wait_for(turns)
        else:
            await turns.acquire()  # (a turn is free: taken at once, without yielding)
        self.in_flight += 1
        self.counts.admitted += 1
        self.counts.peak_in_flight = max(self.counts.peak_in_flight, self.in_flight)
        began = self.clock()
        try:
            yield
        finally:
            self.in_flight -= 1
            self._took(self.clock() - began)
            turns.release()

    async def _wait_for(self, turns: asyncio.Semaphore) -> None:
        """Wait for a turn as one of at most ``queue`` (counted only while really waiting)."""
        if self.waiting >= self.queue:
            raise self._busy(f"the server is taking {self.in_flight} pushes and {self.waiting} wait")
        self.counts.waited += 1
        self.waiting += 1
        self.counts.peak_waiting = max(self.counts.peak_waiting, self.waiting)
        try:
            await asyncio.wait_for(turns.acquire(), self.wait_s)
        except TimeoutError:
            raise self._busy(f"no turn came within {self.wait_s:g} s") from None
        finally:
            self.waiting -= 1


async def _admitted(request: Request) -> AsyncIterator[None]:
    async with request.app.state.admission.turn():
        yield


#: a turn to push (429 with Retry-After when the server has too many already)
Admitted = Annotated[None, Depends(_admitted)]
