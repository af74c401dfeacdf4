"""Re-timing kiosk events on the server (a Pi has no real-time clock: ../shared/PLATFORM.md).

Every event carries its boot id, a monotonic reading and the wall clock as the kiosk read
it. Within one boot the monotonic clock is exact and never jumps, so one trustworthy
(monotonic, real time) pair of a boot, an *anchor*, re-times every event of that boot:

* a push carries the kiosk's clocks at the moment it was sent; the server pairs that
  monotonic reading with its own time of receipt: events of the **current boot** are
  re-timed to within the request's time in flight ("corrected");
* that anchor is kept, so events of that boot pushed later, after a reboot, are
  re-timed the same way ("corrected");
* a boot with no push but an NTP-synced event is anchored at that event ("synced");
* a boot with neither is **bounded**: its times are the wall clock's, held between the
  kiosk's previous known event time (or its provisioning) and the next known one (or the
  receipt), and never earlier than the event before it; a wall time before provisioning,
  in the future or going backwards is flagged.

Pairing is not a bound on the past: a kiosk lends books before it is paired with a server
(``bookcorner central add-kiosk``), and those events keep the time their boot's anchor
gives them, however long before the pairing. Whatever vouches for a boot's clock (an
NTP-synced reading of that boot; the server's receipt of a push from that boot, kept
or current, which the monotonic clock carries back to events recorded before it) anchors
the boot; only the times of a boot nothing vouches for are bounded, and a wall time of
such a boot before pairing is flagged, never moved in silence. No time is after the
receipt, and none is before the time given to the event before it.

Pure functions: the caller (central.ingest) brings the anchors and bounds from the database
and the time of receipt; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import NamedTuple

UTC = timezone.utc
#: a wall time this far past the receipt is in the future (beyond any clock drift)
FUTURE_TOLERANCE = timedelta(minutes=5)
#: a wall clock this much behind the event before it went backwards (not a small NTP slew)
BACKWARDS_TOLERANCE = timedelta(minutes=1)


class TimeQuality(StrEnum):
    CORRECTED = "corrected"
    SYNCED = "synced"
    BOUNDED = "bounded"


class TimeFlag(StrEnum):
    BEFORE_PROVISIONING = "time_before_provisioning"
    IN_THE_FUTURE = "time_in_the_future"
    WENT_BACKWARDS = "time_went_backwards"
    OUT_OF_BOUNDS = "time_out_of_bounds"
    UNREADABLE = "time_unreadable"


class Anchor(NamedTuple):
    boot_id: str
    monotonic_ns: int
    time: datetime
    quality: TimeQuality = TimeQuality.CORRECTED

    def at(self, monotonic_ns: int) -> datetime:
        return self.time + timedelta(microseconds=(monotonic_ns - self.monotonic_ns) / 1000)


class Stamp(NamedTuple):
    """What correction needs of one event."""

    seq: int
    boot_id: str
    monotonic_ns: int
    wall: datetime | None
    synced: bool


class Timing(NamedTuple):
    time: datetime
    quality: TimeQuality
    lower: datetime | None = None
    upper: datetime | None = None
    flags: tuple[TimeFlag, ...] = ()


def parse_wall(text: str) -> datetime | None:
    """An ISO 8601 time with its offset, in UTC; None when unreadable or without an offset."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if value.tzinfo is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _runs(stamps: Sequence[Stamp]) -> list[list[int]]:
    """Indexes of consecutive events of the same boot (stamps are in sequence order)."""
    runs: list[list[int]] = []
    for index, stamp in enumerate(stamps):
        if runs and stamps[runs[-1][-1]].boot_id == stamp.boot_id:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def retime(
    stamps: Sequence[Stamp],
    *,
    anchors: Mapping[str, Anchor],
    received: datetime,
    provisioned: datetime,
    previous: datetime | None = None,
    known: datetime | None = None,
) -> list[Timing]:
    """The corrected time of each event (``stamps`` in sequence order, one kiosk).

    ``anchors``: known anchors by boot id (the push's own included); ``received``: when
    the server got them (nothing can be later); ``provisioned``: when the kiosk was paired
    (a bounded estimate's lower bound when nothing earlier is known; a wall time of an
    unanchored boot before it is flagged; an anchored time before it is kept);
    ``previous``: the time given to the kiosk's event just before these (none is placed
    earlier); ``known``: the last time the server is sure of before these (the lower bound
    of a bounded estimate)."""
    runs = _runs(stamps)
    anchored: list[Anchor | None] = []
    for run in runs:
        boot = stamps[run[0]].boot_id
        anchor = anchors.get(boot)
        if anchor is None:
            synced = next((stamps[i] for i in run if stamps[i].synced and stamps[i].wall is not None), None)
            if synced is not None:
                anchor = Anchor(boot, synced.monotonic_ns, synced.wall, TimeQuality.SYNCED)  # type: ignore[arg-type]
        anchored.append(anchor)

    timings: list[Timing | None] = [None] * len(stamps)
    for run, anchor in zip(runs, anchored, strict=True):
        if anchor is not None:
            for i in run:
                timings[i] = Timing(anchor.at(stamps[i].monotonic_ns), anchor.quality)

    floor = previous  # the time given to the event before (ordering, not a guess at the truth)
    sure = known      # the latest time the server is sure of so far
    latest = received + FUTURE_TOLERANCE
    last_wall: datetime | None = None
    out: list[Timing] = []
    for r, (run, anchor) in enumerate(zip(runs, anchored, strict=True)):
        upper = received
        if anchor is None:
            for later_run, later_anchor in zip(runs[r + 1:], anchored[r + 1:], strict=True):
                if later_anchor is not None:
                    upper = min(upper, timings[later_run[0]].time)  # type: ignore[union-attr]
                    break
            if floor is not None:
                upper = max(upper, floor)
        for i in run:
            if anchor is None:
                lower = min(sure if sure is not None else provisioned, upper)
                timing = _bounded(stamps[i], lower, upper, received, provisioned, last_wall)
                if floor is not None and timing.time < floor:  # in sequence order, after the estimate before it
                    timing = timing._replace(time=floor)
            else:
                timing = timings[i]  # type: ignore[assignment]
                if floor is not None and timing.time < floor:  # never before the event before it
                    timing = timing._replace(time=floor)
                sure = timing.time if sure is None else max(sure, timing.time)
            if timing.time > received:  # nothing happened after the server got it
                flags = timing.flags
                if timing.time > latest and TimeFlag.IN_THE_FUTURE not in flags:
                    flags += (TimeFlag.IN_THE_FUTURE,)
                timing = timing._replace(time=received, flags=flags)
            if floor is None or timing.time > floor:
                floor = timing.time
            if stamps[i].wall is not None:
                last_wall = stamps[i].wall
            out.append(timing)
    return out


def last_known(timings: Sequence[Timing]) -> datetime | None:
    """The latest time among those not merely bounded (the next batch's lower bound)."""
    return max((t.time for t in timings if t.quality is not TimeQuality.BOUNDED), default=None)


def _bounded(
    stamp: Stamp,
    lower: datetime,
    upper: datetime,
    received: datetime,
    provisioned: datetime,
    last_wall: datetime | None,
) -> Timing:
    wall = stamp.wall
    flags: list[TimeFlag] = []
    if wall is None:
        return Timing(lower, TimeQuality.BOUNDED, lower, upper, (TimeFlag.UNREADABLE,))
    if wall < provisioned:
        flags.append(TimeFlag.BEFORE_PROVISIONING)
    elif wall < lower or (last_wall is not None and wall < last_wall - BACKWARDS_TOLERANCE):
        flags.append(TimeFlag.WENT_BACKWARDS)
    if wall > received + FUTURE_TOLERANCE:
        flags.append(TimeFlag.IN_THE_FUTURE)
    elif wall > upper and not flags:
        flags.append(TimeFlag.OUT_OF_BOUNDS)
    time = min(max(wall, lower), upper)
    return Timing(time, TimeQuality.BOUNDED, lower, upper, tuple(flags))
