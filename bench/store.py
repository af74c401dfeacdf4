"""Scan-to-durable latency: one checkout decision plus its durable append.

    python -m bench.store [--sizes 1000,10000,100000] [--samples 1000] [--dir DIR]

For each history size the journal is first given that many events (checkouts and
returns, in sealed segments and a hot one, exactly as the kiosk writes them), then the
demo school's children borrow books through the real ``CirculationDesk``: classify the
code, decide by the rules, append durably, update the state. In the same run, sample by
sample interleaved so that they share the machine's noise, the same event record goes to:

* ``tinydb_default``: TinyDB's JSONStorage holding the same history, plus an fsync
  (JSONStorage itself never syncs, so without it nothing would be durable);
* ``sqlite_wal_full``: SQLite in WAL mode with synchronous=FULL, one row per event;
* ``append_fsync_floor``: the record's bytes appended to a file and fdatasync'ed: no
  store can be faster than this.

Targets (issue 2): at every size bookcorner's p50 within 3x the floor's p50 and its p99
within 5x the floor's p99; bookcorner's p99 at the largest size within 1.5x its p99 at
the smallest. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tinydb import TinyDB

from bench import conclude
from bookcorner.circulation.codes import Source
from bookcorner.circulation.events import Checkin, Checkout, Event, EventType
from bookcorner.circulation.model import ItemStatus, ItemType, PatronStatus, Role
from bookcorner.circulation.rules import Identified
from bookcorner.demo.school import build_demo_school
from bookcorner.journal.clock import SystemClock
from bookcorner.journal.journal import EVENTS_TABLE, header_record, segment_path, segment_records
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.journal.storage import META_TABLE, encode_record, write_new_file
from bookcorner.kiosk.desk import CirculationDesk

KIOSK = "bench-corner"
ZONE = ZoneInfo("Asia/Shanghai")
TINYDB_LIMIT_S = 1.0
_sync = getattr(os, "fdatasync", os.fsync)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(samples, 0.50) * 1e3, 4), "p99_ms": round(percentile(samples, 0.99) * 1e3, 4),
            "samples": len(samples)}


def history_records(count: int, school, boot_id: str) -> list[dict]:
    """Checkout/return pairs over the demo school, so the projected state stays small."""
    students = [p for p in school.patrons if p.role is Role.STUDENT and p.status is PatronStatus.ACTIVE]
    items = [i for i in school.items if i.item_type is ItemType.CIRCULATING]
    records = []
    wall = datetime(2026, 9, 1, 12, 0, tzinfo=ZONE).isoformat(timespec="milliseconds")
    checkout_id = ""
    for seq in range(1, count + 1):
        n = (seq - 1) // 2
        item, patron = items[n % len(items)], students[n % len(students)]
        if seq % 2:
            checkout_id = str(uuid.uuid4())
            kind, event_id = EventType.CHECKED_OUT, checkout_id
            payload: Checkout | Checkin = Checkout(item_id=item.item_id, patron_id=patron.patron_id, card_id="",
                                                   code=item.barcode or "", due=date(2026, 9, 8))
        else:
            kind, event_id = EventType.CHECKED_IN, str(uuid.uuid4())
            payload = Checkin(item_id=item.item_id, loan_id=checkout_id, patron_id=patron.patron_id,
                              due=date(2026, 9, 8))
        records.append(Event(event_id, KIOSK, seq, boot_id, seq * 1000, wall, True, patron.patron_id, kind,
                             payload).to_record())
    return records


def write_history(journal_dir: Path, records: list[dict], segment_events: int) -> None:
    """The journal as the kiosk leaves it after ``len(records)`` events: full segments
    sealed, the rest in the hot segment."""
    journal_dir.mkdir(parents=True)
    for start in range(0, len(records), segment_events):
        chunk = records[start:start + segment_events]
        first = start + 1
        header = header_record(KIOSK, first, "2026-09-01T00:00:00+00:00")
        tables = {**header["u"], EVENTS_TABLE: {str(r["seq"]): r for r in chunk}}
        full = len(chunk) == segment_events
        if full:
            tables[META_TABLE]["1"].update(sealed=True, last_seq=chunk[-1]["seq"], events=len(chunk))
        path = segment_path(journal_dir, first)
        write_new_file(path, segment_records(tables))
        if full:
            os.chmod(path, 0o444)
    if len(records) % segment_events == 0:
        first = len(records) + 1
        write_new_file(segment_path(journal_dir, first), [header_record(KIOSK, first, "2026-09-01T00:00:00+00:00")])


def filesystem_of(path: Path) -> str:
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and str(path.resolve()).startswith(parts[1]) and len(parts[1]) >= len(best):
            best, kind = parts[1], parts[2]
    return kind


class SizeRun:
    """Everything measured at one history size: the kiosk's desk and the three baselines,
    each holding the same history."""

    def __init__(self, root: Path, size: int, school, segment_events: int) -> None:
        self.size = size
        data = root / f"kiosk-{size}"
        clock = SystemClock(ZONE)
        ReferenceStore(data / "reference").save(school.reference(), "bench", school.name)
        records = history_records(size, school, clock.boot_id)
        write_history(data / "journal", records, segment_events)

        floor_path = root / f"floor-{size}.log"
        with open(floor_path, "wb") as fp:
            for record in records:
                fp.write(encode_record({"u": {EVENTS_TABLE: {str(record["seq"]): record}}}))
            fp.flush()
            os.fsync(fp.fileno())
        self.floor_fd = os.open(floor_path, os.O_WRONLY | os.O_APPEND)

        self.sql = sqlite3.connect(root / f"sqlite-{size}.db", isolation_level=None)
        self.sql.execute("PRAGMA journal_mode=WAL")
        self.sql.execute("PRAGMA synchronous=FULL")
        self.sql.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self.sql.execute("BEGIN")
        self.sql.executemany("INSERT INTO events VALUES (?, ?)", ((r["seq"], json.dumps(r)) for r in records))
        self.sql.execute("COMMIT")

        self.tinydb_path = root / f"tinydb-{size}.json"
        self.tinydb_path.write_text(json.dumps({"_default": {str(r["seq"]): r for r in records}}))
        self.tiny = TinyDB(self.tinydb_path)
        self.tiny_table = self.tiny.table("_default")
        self.tinydb_open = True
        del records  # the kiosk does not hold its history in memory; neither should the measurement

        started = time.perf_counter()
        self.desk = CirculationDesk(data, KIOSK, clock, segment_events=segment_events)
        self.cold_start = time.perf_counter() - started
        self.data, self.clock, self.segment_events = data, clock, segment_events
        self.borrowers = [Identified(p, c.card_id) for p in school.patrons for c in school.cards
                          if c.patron_id == p.patron_id and p.role is Role.STUDENT
                          and p.status is PatronStatus.ACTIVE][:60]
        self.books = [i.barcode for i in school.items
                      if i.barcode and i.item_type is ItemType.CIRCULATING and i.status is ItemStatus.AVAILABLE][:60]
        self.results: dict[str, list[float]] = {"bookcorner": [], "tinydb_default": [], "sqlite_wal_full": [],
                                                "append_fsync_floor": []}

    def sample(self, n: int, samples: int) -> None:
        who, code = self.borrowers[n % len(self.borrowers)], self.books[n % len(self.books)]
        started = time.perf_counter()
        recorded = self.desk.checkout(who, code, Source.SCANNER)
        self.results["bookcorner"].append(time.perf_counter() - started)
        if not recorded.ok:
            raise SystemExit(f"bench: the demo checkout was refused: {recorded.decision.result}")
        record = recorded.events[-1].to_record()
        line = encode_record({"u": {EVENTS_TABLE: {str(record["seq"]): record}}})
        self.desk.checkin(code)  # not measured: keeps the child under the loan limit

        started = time.perf_counter()
        os.write(self.floor_fd, line)
        _sync(self.floor_fd)
        self.results["append_fsync_floor"].append(time.perf_counter() - started)

        started = time.perf_counter()
        self.sql.execute("INSERT INTO events VALUES (?, ?)", (self.size + 10 * samples + n, json.dumps(record)))
        self.results["sqlite_wal_full"].append(time.perf_counter() - started)

        if self.tinydb_open and (n < 25 or n < samples * 100 // self.size):
            started = time.perf_counter()
            self.tiny_table.insert(record)
            with open(self.tinydb_path, "rb+") as fp:
                os.fsync(fp.fileno())
            spent = time.perf_counter() - started
            self.results["tinydb_default"].append(spent)
            if spent > TINYDB_LIMIT_S:
                self.tinydb_open = False
                print(f"  tinydb_default: one insert took {spent:.1f} s at {self.size} events; stopped there",
                      file=sys.stderr)

    def close(self) -> dict[str, dict]:
        self.desk.close()  # leaves a state checkpoint, as a clean shutdown does
        started = time.perf_counter()
        CirculationDesk(self.data, KIOSK, self.clock, segment_events=self.segment_events).close()
        warm_start = time.perf_counter() - started
        print(f"  kiosk start-up at {self.size} events: {self.cold_start * 1e3:.0f} ms replaying the whole "
              f"journal, {warm_start * 1e3:.0f} ms from the state checkpoint", file=sys.stderr)
        self.tiny.close()
        self.sql.close()
        os.close(self.floor_fd)
        return {name: summary(values) for name, values in self.results.items() if values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--segment-events", type=int, default=256)
    parser.add_argument("--dir", help="where to put the stores (default: a temporary folder under the current one)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir or "."))
    school = build_demo_school(datetime.now(ZONE).date())
    figures: dict[str, dict[str, dict]] = {}
    print(f"bench.store: {args.samples} checkouts per size on {filesystem_of(root)} ({root}), "
          f"segments of {args.segment_events} events", file=sys.stderr)
    try:
        runs = [SizeRun(root, size, school, args.segment_events) for size in sizes]
        gc.collect()
        for n in range(args.samples):  # sizes interleaved, so that they share the machine's noise
            for run in runs:
                run.sample(n, args.samples)
        for run in runs:
            size, per_store = run.size, run.close()
            for store, figure in per_store.items():
                figures.setdefault(store, {})[str(size)] = figure
            floor = per_store["append_fsync_floor"]
            print(f"\nhistory {size:>7} events   p50 ms    p99 ms   p50/floor  p99/floor  samples")
            for store, figure in per_store.items():
                print(f"  {store:<20} {figure['p50_ms']:8.3f}  {figure['p99_ms']:8.3f}   "
                      f"{figure['p50_ms'] / floor['p50_ms']:7.2f}x  {figure['p99_ms'] / floor['p99_ms']:7.2f}x  "
                      f"{figure['samples']:>6}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    verdicts = []
    ours, floor = figures["bookcorner"], figures["append_fsync_floor"]
    for size in map(str, sizes):
        verdicts.append((f"p50 at {size} within 3x floor", ours[size]["p50_ms"] <= 3 * floor[size]["p50_ms"]))
        verdicts.append((f"p99 at {size} within 5x floor", ours[size]["p99_ms"] <= 5 * floor[size]["p99_ms"]))
    first, last = str(sizes[0]), str(sizes[-1])
    growth = ours[last]["p99_ms"] / ours[first]["p99_ms"]
    verdicts.append((f"p99 at {last} within 1.5x p99 at {first} ({growth:.2f}x)", growth <= 1.5))
    print()
    return conclude(verdicts, figures, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
