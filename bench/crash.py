"""Crash soak: a child process records scans into the journal while being killed with
SIGKILL at random instants; after every kill the journal must open and hold every event
whose success the child reported.

    python -m bench.crash --kills 2000        # the long soak
    (tests/journal/test_crash.py runs 200 kills on every test run)

The child reports an event only after ``Journal.append`` returned (the moment the kiosk
would show "done"), through a pipe, one line per decision. Decisions of two events
(an implicit return and a checkout) must be all there or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from bookcorner.circulation.events import Checkin, Checkout, EventDraft, EventType
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import Journal, JournalReader

KIOSK = "crash-soak"


@dataclass
class SoakResult:
    kills: int = 0
    acknowledged: int = 0
    recorded: int = 0
    torn_tails_repaired: int = 0
    lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.problems


def _drafts(decision: int, rng: random.Random) -> list[EventDraft]:
    parts = 2 if rng.random() < 0.3 else 1
    kinds = [EventType.CHECKED_IN, EventType.CHECKED_OUT][-parts:]
    item = f"I{decision % 997:05d}"
    # which decision, which part of it, of how many (and a padding of random length): in the
    # checkout's code, the checkin's loan id
    marks = [f"crash:{decision}:{i}:{parts}:" + "x" * rng.randrange(0, 200) for i in range(parts)]
    return [
        EventDraft(kind, "S01", Checkout(item_id=item, patron_id="S01", code=mark, due=date(2026, 11, 30))
                   if kind is EventType.CHECKED_OUT else Checkin(item_id=item, patron_id="S01", loan_id=mark))
        for kind, mark in zip(kinds, marks, strict=True)
    ]


def _child(directory: Path, pipe: int, segment_events: int, seed: int) -> None:
    rng = random.Random(seed)
    clock = FixedClock(datetime(2026, 11, 23, 4, 5, tzinfo=timezone.utc))
    with Journal(directory, KIOSK, clock, segment_events=segment_events) as journal:
        decision = journal.last_seq * 10 + seed % 10  # unique enough: only a tag for grouping
        while True:
            decision += 1
            events = journal.append(_drafts(decision, rng))
            os.write(pipe, (" ".join(f"{e.seq}:{e.event_id}" for e in events) + "\n").encode())


def soak(directory: Path, kills: int, seed: int = 1, segment_events: int = 16, max_delay_ms: float = 25.0,
         progress: bool = False) -> SoakResult:
    rng = random.Random(seed)
    result = SoakResult()
    acknowledged: dict[str, int] = {}
    started = time.perf_counter()
    for round_ in range(kills):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                _child(directory, write_end, segment_events, seed * 100_003 + round_)
            finally:
                os._exit(1)
        os.close(write_end)
        time.sleep(rng.uniform(0, max_delay_ms) / 1000)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reported = b""
        while chunk := os.read(read_end, 1 << 16):
            reported += chunk
        os.close(read_end)
        fresh = {}
        for line in reported.decode().splitlines():
            for pair in line.split():
                seq, event_id = pair.split(":")
                fresh[event_id] = int(seq)
        acknowledged.update(fresh)
        result.kills += 1
        # the writer reopens (cutting off a torn append), then we look at what is there
        with Journal(directory, KIOSK, FixedClock(datetime.now(timezone.utc)), segment_events=segment_events) as j:
            if j.damage:
                result.problems.append(f"round {round_}: a crash was reported as damage: {j.damage}")
            if j._storage is not None and j._storage.parsed.torn_tail:
                result.torn_tails_repaired += 1
        if fresh:
            since = min(fresh.values()) - 1
            present = {e.event_id for e in JournalReader(directory).events_after(since)}
            result.lost.extend(event_id for event_id in fresh if event_id not in present)
        if progress and round_ % 100 == 99:
            print(f"  {round_ + 1} kills, {len(acknowledged)} events acknowledged", file=sys.stderr)
    # a final full check: every acknowledged event, no gap, every decision whole
    events = list(JournalReader(directory).events_after(0))
    present = {e.event_id for e in events}
    result.lost.extend(sorted(set(acknowledged) - present - set(result.lost)))
    result.problems.extend(d.describe() for d in JournalReader(directory).check())
    parts: dict[int, list[int]] = {}
    for event in events:
        p = event.payload
        mark = p.code if isinstance(p, Checkout) else p.loan_id if isinstance(p, Checkin) else None
        if mark and mark.startswith("crash:"):
            _, decision, _part, of, _pad = mark.split(":")
            parts.setdefault(int(decision), []).append(int(of))
    for decision, seen in parts.items():
        if len(seen) != seen[0]:
            result.problems.append(f"decision {decision}: {len(seen)} of {seen[0]} events recorded")
    result.acknowledged = len(acknowledged)
    result.recorded = len(events)
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--segment-events", type=int, default=16)
    parser.add_argument("--dir", help="journal directory (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bookcorner-crash-"))
    result = soak(directory, args.kills, args.seed, args.segment_events, progress=True)
    summary = {"kills": result.kills, "acknowledged_events": result.acknowledged,
               "recorded_events": result.recorded, "torn_tails_repaired": result.torn_tails_repaired,
               "lost": len(result.lost), "problems": result.problems[:10], "seconds": round(result.seconds, 1),
               "directory": str(directory)}
    print(f"{result.kills} kills: {result.acknowledged} events acknowledged, {len(result.lost)} lost, "
          f"{result.torn_tails_repaired} torn appends cut off on reopen, {len(result.problems)} problem(s)")
    print(json.dumps(summary))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
