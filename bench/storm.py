"""The morning storm: thousands of kiosks that were offline overnight reconnect within a
minute and push what they recorded.

    python -m bench.storm [--kiosks 5000] [--events 50] [--window 60] [--clients 400]
                          [--backend sqlite|postgresql] [--pg URL] [--dir DIR]

``bookcorner central`` runs as its own process, with its admission limits as shipped
(``central/api/admission.py``: pushes beyond the limit and its queue are answered 429 with
Retry-After). Each simulated kiosk is light (no journal on disk): at a random moment of the
window it opens a connection and pushes its events in one batch with the sync daemon's own
HTTP client (``sync.client.SyncClient``: the real protocol, the real 429 handling), and when
told the server is busy waits as the daemon does (``sync.daemon.busy_backoff``: Retry-After,
which the server sets from its queue, plus a random share of it) and sends the same batch
again, until it is acknowledged. ``--clients``
threads carry the pushes that are due (at most that many connections at once); a kiosk
waiting out a Retry-After holds no thread, as it holds nothing on the server.

Measured: the time from the first push to the last acknowledgement (drain), the pushes
answered 429, connection failures, the server's peak memory (VmHWM of its processes), the
push latency (p50, p95, p99 of the acknowledged ones), the CPU seconds of the server and of
the simulated kiosks (on a 2-core machine they compete: a server near the drain time in CPU
is the limit, the kiosks are when they are), and, counted in the database at the end,
events lost (0) and stored twice (0). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from bench.sync import PG_DEFAULT, Server, postgres_database, tree_cpu

KIOSKS, EVENTS, WINDOW_S, CLIENTS = 5000, 50, 60.0, 400


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    busy: int = 0
    failures: int = 0
    pushes: int = 0
    acked: int = 0
    latencies: list[float] = field(default_factory=list)
    first: float = float("inf")
    last: float = 0.0
    waiting: int = 0
    most_waiting: int = 0


def kiosk_events(kiosk_id: str, count: int) -> list:
    """A morning's worth of a corner's events: books lent and brought back."""
    from bookcorner.protocol.messages import WireEvent

    start = datetime.now(timezone.utc) - timedelta(hours=16)
    boot = str(uuid.uuid4())
    out = []
    for n in range(count):
        item, patron = f"{kiosk_id}/{n // 2 % 40:03d}", f"{kiosk_id}/S{n // 2 % 30:02d}"
        if n % 2 == 0:
            kind, payload = "loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": patron,
                                                 "code": item, "due": "2026-12-21", "warnings": []}
        else:
            kind, payload = "loan.checked_in", {"item_id": item, "due": "2026-12-21", "with_card": False,
                                                "implicit": False, "warnings": []}
        at = start + timedelta(minutes=n)
        out.append(WireEvent(event_id=str(uuid.uuid4()), kiosk_id=kiosk_id, seq=n + 1, boot_id=boot,
                             monotonic_ns=(n + 1) * 60 * 10**9, wall_time=at.isoformat(timespec="milliseconds"),
                             clock_synced=True, actor=patron, type=kind, payload=payload))
    return out


class Kiosk:
    """One simulated kiosk: its batch (made at its first push, sent again unchanged until
    acknowledged) and the daemon's own back-off after a 429."""

    def __init__(self, url: str, kiosk_id: str, token: str, events: int, seed: int) -> None:
        from bookcorner.sync.daemon import DaemonSettings

        self.url, self.kiosk_id, self.token, self.events = url, kiosk_id, token, events
        self.settings, self.rng = DaemonSettings(url, Path("unused")), random.Random(seed)  # the daemon's defaults
        self.request = None
        self.refusals = 0

    def push(self, tally: Tally) -> float | None:
        """Push once: None when acknowledged, else the seconds to wait before the next try."""
        from bookcorner.protocol.messages import ClockReading, PushRequest
        from bookcorner.sync.client import SyncClient, SyncError
        from bookcorner.sync.daemon import busy_backoff

        if self.request is None:
            wire = kiosk_events(self.kiosk_id, self.events)
            self.request = PushRequest(
                kiosk_id=self.kiosk_id, batch_id=str(uuid.uuid4()), from_seq=1, to_seq=len(wire),
                clock=ClockReading(wire[0].boot_id, (len(wire) + 1) * 60 * 10**9,
                                   datetime.now(timezone.utc).isoformat(timespec="milliseconds"), True),
                events=wire)
        client = SyncClient(self.url, self.token, connect_timeout_s=10, read_timeout_s=120)
        began = time.monotonic()
        with tally.lock:
            tally.first = min(tally.first, began)
            tally.pushes += 1
            tally.waiting += 1
            tally.most_waiting = max(tally.most_waiting, tally.waiting)
        try:
            reply = client.push(self.request)
        except SyncError as error:
            with tally.lock:
                tally.waiting -= 1
                if error.busy:
                    tally.busy += 1
                else:
                    tally.failures += 1
            self.refusals += 1
            return busy_backoff(self.refusals, self.settings, self.rng, error.retry_after) if error.busy else 1.0
        finally:
            client.close()
        done = time.monotonic()
        with tally.lock:
            tally.waiting -= 1
            tally.acked += len(reply.results)
            tally.latencies.append(done - began)
            tally.last = max(tally.last, done)
        self.request = None  # (acknowledged: its memory goes)
        return None


def storm(kiosks: list[Kiosk], starts: list[float], clients: int, tally: Tally) -> None:
    """Each kiosk pushes at its moment and, when told to wait, again after the wait, until
    acknowledged. A waiting kiosk holds no thread: ``clients`` threads carry the pushes
    that are due (at most that many connections at once, as many kiosks as there are)."""
    due = [(at, n) for n, at in enumerate(starts)]
    heapq.heapify(due)
    changed = threading.Condition()
    state = {"left": len(kiosks), "error": None}

    def pushed(n: int, job) -> None:
        try:
            wait = job.result()
        except BaseException as error:  # (the bench stops and says why)
            wait, state["error"] = None, error
        with changed:
            if wait is None:
                state["left"] -= 1
            else:
                heapq.heappush(due, (time.monotonic() + wait, n))
            changed.notify()

    with ThreadPoolExecutor(clients) as pool:
        while True:
            with changed:
                if state["error"] is not None:
                    raise RuntimeError("a simulated kiosk failed") from state["error"]
                if state["left"] == 0:
                    break
                now = time.monotonic()
                if not due or due[0][0] > now:
                    changed.wait(due[0][0] - now if due else 1.0)
                    continue
                _at, n = heapq.heappop(due)
            job = pool.submit(kiosks[n].push, tally)
            job.add_done_callback(lambda job, n=n: pushed(n, job))


def peak_memory_mb(pid: int) -> float:
    """The most resident memory the server's processes (it and its workers) each reached, summed."""
    total = 0
    for entry in [Path(f"/proc/{pid}"), *(p for p in Path("/proc").iterdir() if p.name.isdigit())]:
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if entry.name == str(pid) or fields.get("PPid", "").strip() == str(pid):
            total += int(fields.get("VmHWM", "0 kB").split()[0])
    return total / 1024


def counted(store, kiosks: int, events: int) -> tuple[int, int]:
    """Events lost and events stored twice, counted in the server's database."""
    from sqlalchemy import func, select

    from bookcorner.central import db

    with store.reading() as conn:
        rows = conn.execute(select(func.count()).select_from(db.events)).scalar_one()
        distinct = conn.execute(select(func.count(func.distinct(db.events.c.event_id)))).scalar_one()
    return kiosks * events - distinct, rows - distinct


def run(url: str, work: Path, args) -> dict:
    from bookcorner.central import db
    from bookcorner.central.kiosks import add_kiosk

    store = db.Store(url)
    store.migrate()
    began = time.perf_counter()
    tokens = [(f"storm-{n:05d}", add_kiosk(store, f"storm-{n:05d}")) for n in range(args.kiosks)]
    provisioned_s = time.perf_counter() - began
    server = Server(url, work / "server.log")
    tally = Tally()
    server_cpu_before, own_before = tree_cpu(server.process.pid), time.process_time()
    try:
        zero = time.monotonic() + 1.0
        rng = random.Random(7)
        starts = sorted(zero + rng.uniform(0, args.window) for _ in tokens)
        storm([Kiosk(server.url, kiosk_id, token, args.events, n) for n, (kiosk_id, token) in enumerate(tokens)],
              starts, args.clients, tally)
        memory = peak_memory_mb(server.process.pid)
        told = requests.get(f"{server.url}/v1/health", timeout=10).json()["pushes"]
        server_cpu = tree_cpu(server.process.pid) - server_cpu_before
        kiosks_cpu = time.process_time() - own_before
    finally:
        server.stop()
    lost, twice = counted(store, args.kiosks, args.events)
    store.dispose()
    latencies = sorted(tally.latencies)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else 0.0

    drain = tally.last - tally.first
    return {"kiosks": args.kiosks, "events_per_kiosk": args.events, "window_s": args.window,
            "provisioning_s": round(provisioned_s, 1), "drain_s": round(drain, 1),
            "events_per_s": round(args.kiosks * args.events / drain, 1) if drain > 0 else None,
            "pushes": tally.pushes, "answered_429": tally.busy, "connection_failures": tally.failures,
            # the server's Retry-After says when it is likely to have room (its queue)
            "longest_retry_after_s": told.get("longest_retry_after_s"),
            "most_pushes_in_flight": tally.most_waiting, "server_peak_memory_mb": round(memory, 1),
            # where the time went: the server's CPU and the simulated kiosks' own (one process)
            "server_cpu_s": round(server_cpu, 1), "kiosks_cpu_s": round(kiosks_cpu, 1),
            "push_ms_p50": pct(0.50), "push_ms_p95": pct(0.95), "push_ms_p99": pct(0.99),
            "push_ms_mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
            "events_lost": lost, "events_stored_twice": twice}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=KIOSKS)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--window", type=float, default=WINDOW_S, help="seconds over which the kiosks reconnect")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="threads carrying the pushes that are due")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg", default=PG_DEFAULT)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-storm-", dir=args.dir))
    drop = None
    try:
        if args.backend == "postgresql":
            url, drop = postgres_database(args.pg)
        else:
            url = f"sqlite:///{work / 'central.db'}"
        result = {"backend": args.backend, **run(url, work, args)}
    finally:
        if drop is not None:
            drop()
        shutil.rmtree(work, ignore_errors=True)
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(result))
    return 0 if result["events_lost"] == 0 and result["events_stored_twice"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
