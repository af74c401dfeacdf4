"""Reading the time as the Pi can know it.

A Pi has no real-time clock: after a power cut the wall clock may be hours or days off
until NTP syncs, and may jump. Every event therefore carries the boot id, a monotonic
reading and whether the clock was synced, so the server can correct its time later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
#: adjtimex() answers TIME_ERROR while the kernel clock is not synchronised
_TIME_ERROR = 5
_SYNC_RECHECK_NS = 30 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class ClockReading:
    wall: datetime
    monotonic_ns: int
    boot_id: str
    synced: bool


def read_boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


def kernel_clock_synced() -> bool:
    """Whether NTP (timesyncd, chrony) has synchronised the kernel clock."""
    if TIMESYNC_FLAG.exists():
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        return libc.adjtimex(timex) not in (-1, _TIME_ERROR)
    except (OSError, AttributeError):
        return False


class SystemClock:
    """The machine's clocks, in the school's time zone."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.boot_id = read_boot_id()
        self._synced = False
        self._synced_checked: int | None = None

    def now(self) -> datetime:
        return datetime.now(self.zone)

    def read(self) -> ClockReading:
        mono = time.monotonic_ns()
        if self._synced_checked is None or mono - self._synced_checked > _SYNC_RECHECK_NS:
            self._synced = kernel_clock_synced()
            self._synced_checked = mono
        return ClockReading(datetime.now(self.zone), mono, self.boot_id, self._synced)


class FixedClock:
    """A clock that reads what it is told: for the demo's scripted days, tests and replays."""

    def __init__(self, wall: datetime, *, boot_id: str = "00000000-0000-0000-0000-000000000000", synced: bool = True):
        if wall.tzinfo is None:
            wall = wall.replace(tzinfo=timezone.utc)
        self.wall = wall
        self.zone = wall.tzinfo
        self.boot_id = boot_id
        self.synced = synced
        self._mono = 1_000_000_000

    def now(self) -> datetime:
        return self.wall

    def read(self) -> ClockReading:
        self._mono += 1_000
        return ClockReading(self.wall, self._mono, self.boot_id, self.synced)

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        step = timedelta(**delta)
        # in elapsed time, as the monotonic clock: across a daylight-saving change the wall
        # clock of an IANA zone moves by an hour more or less than ``step`` (aware arithmetic
        # in one zone would add wall-clock time instead)
        self.wall = (self.wall.astimezone(timezone.utc) + step).astimezone(self.zone)
        self._mono += int(step.total_seconds() * 1e9)
