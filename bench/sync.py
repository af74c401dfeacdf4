"""End-to-end sync throughput: many kiosks pushing to one central server at once.

    python -m bench.sync [--kiosks 20] [--events 5000] [--batch 500] [--backends sqlite,postgresql]
                         [--pg postgresql://postgres@127.0.0.1:5432/test] [--dir DIR]

Each kiosk is a real data directory whose journal holds ``--events`` events (lendings
and returns, recorded by the real journal); each runs the real sync daemon's round
(read the journal, push batches, save the position and status, pull reference data) in
its own process, all starting together, against ``bookcorner central`` running as its
own process on SQLite (WAL, synchronous=FULL) and on PostgreSQL (a database made for
the run and dropped after it). Measured for each database, in the same run:

* ``end_to_end``: events acknowledged per second, first push to last acknowledgement;
* ``ingest_in_process``: the server's ingest path called directly with the same batches
  (no HTTP, no daemon): what the API and the kiosks add;
* ``bulk_insert``: the database's own rate for the same rows (those the server stored),
  inserted with the same driver into a table of the same shape, in transactions the
  size of a batch: the limit no ingest can beat. The target is ``end_to_end`` at least
  20% of it.

Where the time goes: the server's own phases as it reports them per request
(Server-Timing: auth, decode, lock wait, reads, clock correction, replay, writes,
commit), the kiosks' side, and a cProfile of the in-process ingest. The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing as mp
import os
import pstats
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

PG_DEFAULT = os.environ.get("BOOKCORNER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
TARGET = 0.20


# --- kiosks -------------------------------------------------------------------------------------


def make_kiosk(root: Path, kiosk_id: str, events: int) -> None:
    from bookcorner.circulation.events import Checkin, Checkout, EventDraft, EventType
    from bookcorner.journal.clock import FixedClock
    from bookcorner.journal.journal import Journal

    clock = FixedClock(datetime.now(timezone.utc) - timedelta(hours=1), boot_id=str(uuid.uuid4()), synced=True)
    drafts = []
    for n in range(events // 2):
        item = f"{kiosk_id}/{n % 400:04d}"
        drafts.append(EventDraft(EventType.CHECKED_OUT, f"S{n % 40:03d}", Checkout(
            item_id=item, patron_id=f"S{n % 40:03d}", card_id=f"{n % 40:010d}", code=item, due=date(2026, 12, 7))))
        drafts.append(EventDraft(EventType.CHECKED_IN, "kiosk", Checkin(
            item_id=item, patron_id=f"S{n % 40:03d}", due=date(2026, 12, 7))))
    with Journal(root / "journal", kiosk_id, clock) as journal:
        for start in range(0, len(drafts), 256):
            journal.append(drafts[start:start + 256])


def make_kiosks(work: Path, name: str, count: int, events: int) -> list[tuple[str, Path]]:
    """``count`` kiosks (ids from the format ``name``) in ``work``, each with ``events`` events."""
    started = time.perf_counter()
    kiosks = []
    for k in range(count):
        kiosk_id = name.format(k)
        root = work / kiosk_id
        shutil.rmtree(root, ignore_errors=True)
        make_kiosk(root, kiosk_id, events)
        kiosks.append((kiosk_id, root))
    print(f"  journals written in {time.perf_counter() - started:.1f} s")
    return kiosks


def kiosk_round(job: dict) -> dict:
    """One kiosk's daemon round, in its own process; timed from the common start."""
    from bookcorner.journal.clock import SystemClock
    from bookcorner.sync.client import SyncClient
    from bookcorner.sync.daemon import DaemonSettings, SyncDaemon

    phases: dict[str, float] = {}
    pushes = [0, 0.0]

    class TimedClient(SyncClient):
        def push(self, request):
            reply = super().push(request)
            pushes[0] += 1
            pushes[1] += self.last.seconds
            for name, ms in re.findall(r"(\w+);dur=([\d.]+)", self.last.server_timing):
                phases[name] = phases.get(name, 0.0) + float(ms) / 1000
            return reply

    root = Path(job["root"])
    settings = DaemonSettings(job["url"], root / "credential", batch_size=job["batch"], read_timeout_s=120)
    daemon = SyncDaemon(root, job["kiosk_id"], settings, SystemClock(timezone.utc))
    daemon._client = TimedClient(job["url"], job["token"], read_timeout_s=120)
    job["ready"].put(1)
    job["go"].wait()
    started, cpu = time.perf_counter(), time.process_time()
    result = daemon.run_round()
    ended, cpu = time.perf_counter(), time.process_time() - cpu
    daemon.close()
    return {"start": started, "end": ended, "cpu": cpu, "ok": result.ok, "acked": result.acked_seq,
            "error": result.error.message if result.error else None, "pushes": pushes[0],
            "push_seconds": pushes[1], "server_phases": phases}


def light_round(job: dict) -> dict:
    """One kiosk as a lightweight client: its journal's batches, encoded before the start, sent
    over one HTTP connection in the real protocol, one after the other (a 429 waits its
    Retry-After and sends the batch again); the same figures as ``kiosk_round``."""
    import http.client
    from urllib.parse import urlsplit

    from bookcorner.protocol.messages import PushReply, decode, encode

    root = Path(job["root"])
    bodies = [encode(request) for request in push_requests(job["kiosk_id"], root, job["batch"])]
    address = urlsplit(job["url"])
    headers = {"Authorization": f"Bearer {job['token']}", "Content-Type": "application/json"}
    phases: dict[str, float] = {}
    pushes, push_seconds, acked, error = 0, 0.0, 0, None
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    job["ready"].put(1)
    job["go"].wait()
    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        while True:
            sent = time.perf_counter()
            connection.request("POST", "/v1/push", body, headers)
            response = connection.getresponse()
            data = response.read()
            pushes, push_seconds = pushes + 1, push_seconds + time.perf_counter() - sent
            if response.status != 429:
                break
            time.sleep(float(response.getheader("Retry-After") or 1))
        if response.status != 200:
            error = f"{response.status}: {data[:200]!r}"
            break
        acked = decode(data, PushReply).applied_seq
        for name, ms in re.findall(r"(\w+);dur=([\d.]+)", response.getheader("Server-Timing") or ""):
            phases[name] = phases.get(name, 0.0) + float(ms) / 1000
    ended, cpu = time.perf_counter(), time.process_time() - cpu
    connection.close()
    return {"start": started, "end": ended, "cpu": cpu, "ok": error is None, "acked": acked, "error": error,
            "pushes": pushes, "push_seconds": push_seconds, "server_phases": phases}


def push_requests(kiosk_id: str, root: Path, batch: int) -> list:
    """A kiosk's journal as the pushes its daemon would send (batches of ``batch`` events)."""
    from bookcorner.journal.journal import JournalReader
    from bookcorner.protocol.messages import ClockReading, PushRequest, WireEvent

    events = [WireEvent(**e.to_record()) for e in JournalReader(root / "journal").events_after(0)]
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    requests = []
    for start in range(0, len(events), batch):
        chunk = events[start:start + batch]
        requests.append(PushRequest(kiosk_id=kiosk_id, batch_id=str(uuid.uuid4()), from_seq=chunk[0].seq,
                                    to_seq=chunk[-1].seq, clock=ClockReading("bench-push", 10**15, now, True),
                                    events=chunk))
    return requests


# --- the server ---------------------------------------------------------------------------------


class Server:
    def __init__(self, url: str, log: Path, workers: int = 1) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bookcorner", "central", "--db", url, "--port", "0", "--log-level", "warning",
             "--workers", str(workers)],
            stdout=subprocess.PIPE, stderr=open(log, "ab"), env={**os.environ, "PYTHONUNBUFFERED": "1"})
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline().decode() if ready else ""
        if "://" not in line:
            self.stop()
            raise SystemExit(f"bench: the central server did not start: {line!r}; see {log}")
        self.url = line[line.index("http"):].strip()
        self.settle()

    def settle(self, quiet_cpu_s: float = 0.02, most_s: float = 20.0) -> None:
        """Wait until the server answers and its start-up is over: the address is printed
        before the processes have built their app (a request meanwhile waits in the socket's
        backlog), and the background jobs take their first round at start-up. Neither is
        ingest: the clock starts on a server that answers and has gone quiet (its processes
        using less than ``quiet_cpu_s`` of CPU in a quarter of a second), or after ``most_s``."""
        import urllib.request

        deadline = time.monotonic() + most_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/v1/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        before = tree_cpu(self.process.pid)
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = tree_cpu(self.process.pid)
            if now - before < quiet_cpu_s:
                return
            before = now

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (the server's worker processes)."""
    total = process_cpu(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                total += process_cpu(int(entry.name))
    return total


def machine_cpu() -> float:
    """CPU seconds all processes have used (busy time of every CPU)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def database_cpu(store, before: dict[int, float] | None = None) -> dict[int, float]:
    """CPU seconds each of the database's own server processes (PostgreSQL's backends serving
    ``store``'s database, when they run on this machine) has used, less ``before``'s; {} on
    SQLite (it runs in the server's processes) or when they cannot be read."""
    if store.sqlite:
        return {}
    with store.reading() as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalars().all()
    found = {}
    for pid in pids:
        try:
            found[pid] = process_cpu(pid) - (before or {}).get(pid, 0.0)
        except (OSError, IndexError, ValueError):  # another machine's, or gone
            continue
    return found


def postgres_database(admin: str):
    import psycopg

    name = f"bc_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin.rsplit("/", 1)[0] + "/" + name, drop


# --- the limit and the server alone -----------------------------------------------------------------


def stored_rows(store) -> list[dict]:
    from sqlalchemy import select

    from bookcorner.central import db

    with store.reading() as conn:
        return [dict(row._mapping) for row in conn.execute(select(db.events))]


def bulk_insert_rate(store, rows: list[dict], batch: int) -> tuple[float, float]:
    """The same rows into a table of the same shape (same indexes) through the same
    driver's fastest door (executemany on SQLite, COPY on PostgreSQL): in transactions
    of a batch each (what acknowledging a batch costs at least), and in one."""
    from sqlalchemy import Index, MetaData, Table

    from bookcorner.central import db

    shadow = MetaData()
    table = Table("events_bulk", shadow, *[c._copy() for c in db.events.columns],
                  Index("ix_events_bulk_kiosk_seq", "kiosk_id", "seq"), Index("ix_events_bulk_time", "time"))
    with store.writing() as conn:
        when = db.time_param(conn)
    tuples = [tuple(when(v) if isinstance(v, datetime) else v for v in row.values()) for row in rows]
    rates = []
    for size in (batch, len(tuples)):
        shadow.drop_all(store.engine)
        shadow.create_all(store.engine)
        started = time.perf_counter()
        for start in range(0, len(tuples), size):
            with store.writing() as conn:
                db.bulk_insert(conn, table, tuples[start:start + size])
        rates.append(len(tuples) / (time.perf_counter() - started))
    shadow.drop_all(store.engine)
    return rates[0], rates[1]


def replay_batches(store, roots: list[tuple[str, Path]], batch: int) -> list:
    """The batches the kiosks sent, rebuilt from their journals (for the in-process run)."""
    from bookcorner.central.ingest import Batch

    return [Batch(r.kiosk_id, r.batch_id, r.from_seq, r.to_seq, r.clock, r.events)
            for kiosk_id, root in roots for r in push_requests(kiosk_id, root, batch)]


def ingest_rate(store, batches: list, profile: bool) -> tuple[float, str]:
    from bookcorner.central.ingest import ingest

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for batch in batches:
        ingest(store, batch, datetime.now(timezone.utc))
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
        text = "\n".join(line for line in out.getvalue().splitlines() if line.strip())
    return sum(len(b.events) for b in batches) / elapsed, text


# --- one database ---------------------------------------------------------------------------------


@dataclass
class Pushed:
    """One round of every kiosk pushing its journal at once to a server on a fresh database."""

    store: Any
    results: list[dict]
    #: events acknowledged, and the seconds from the first push to the last acknowledgement
    total: int
    elapsed: float
    #: CPU seconds over the round: the server's processes', and the whole machine's
    server_cpu: float
    all_cpu: float
    #: and the database's own server processes' (PostgreSQL's backends; 0 on SQLite)
    database_cpu: float = 0.0

    @property
    def kiosks_cpu(self) -> float:
        """CPU seconds the kiosks (the load generator) used."""
        return sum(r["cpu"] for r in self.results)

    @property
    def rate(self) -> float:
        return self.total / self.elapsed

    def phases(self) -> dict[str, float]:
        """The server's phases (Server-Timing), summed over every request."""
        phases: dict[str, float] = {}
        for r in self.results:
            for phase, seconds in r["server_phases"].items():
                phases[phase] = phases.get(phase, 0.0) + seconds
        return phases


def push_all(url: str, kiosks: list[tuple[str, Path]], batch: int, workers: int, log: Path,
             light: bool = False) -> Pushed:
    """Every kiosk's daemon round (``light``: a lightweight client's, ``light_round``), all at
    once (a process each), against ``bookcorner central`` with ``workers`` processes on the
    database at ``url`` (migrated and given the kiosks here)."""
    from bookcorner.central.db import Store
    from bookcorner.central.kiosks import add_kiosk

    store = Store(url, pool_size=2)
    store.migrate()
    tokens = {kiosk_id: add_kiosk(store, kiosk_id) for kiosk_id, _ in kiosks}
    for kiosk_id, root in kiosks:  # a fresh daemon state for every database
        shutil.rmtree(root / "sync", ignore_errors=True)
        (root / "credential").write_text(tokens[kiosk_id])
    server = Server(url, log, workers)
    try:
        context = mp.get_context("fork")
        manager = context.Manager()
        go, ready = manager.Event(), manager.Queue()
        jobs = [{"root": str(root), "kiosk_id": kiosk_id, "url": server.url, "token": tokens[kiosk_id],
                 "batch": batch, "go": go, "ready": ready} for kiosk_id, root in kiosks]
        with context.Pool(len(jobs)) as pool:
            pending = pool.map_async(light_round if light else kiosk_round, jobs)
            for _ in jobs:  # every worker is up and waiting
                ready.get(timeout=600)
            time.sleep(0.5)
            server_cpu, all_cpu, backends = tree_cpu(server.process.pid), machine_cpu(), database_cpu(store)
            go.set()
            results = pending.get(timeout=3600)
            server_cpu, all_cpu = tree_cpu(server.process.pid) - server_cpu, machine_cpu() - all_cpu
            backends_cpu = sum(database_cpu(store, backends).values())
    finally:
        server.stop()
    failed = [r["error"] for r in results if not r["ok"]]
    if failed:
        raise SystemExit(f"bench: kiosks failed: {failed[:3]}")
    total = sum(r["acked"] for r in results)
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    return Pushed(store, results, total, elapsed, server_cpu, all_cpu, backends_cpu)


def run_backend(name: str, url: str, kiosks: list[tuple[str, Path]], args, work: Path) -> dict:
    from bookcorner.central.db import Store
    from bookcorner.central.kiosks import add_kiosk

    print(f"\n== {name} ==", flush=True)
    pushed = push_all(url, kiosks, args.batch, args.workers, work / f"server-{name}.log")
    store, results, total, elapsed = pushed.store, pushed.results, pushed.total, pushed.elapsed
    server_cpu, all_cpu = pushed.server_cpu, pushed.all_cpu
    end_to_end = pushed.rate
    requests_seconds = sum(r["push_seconds"] for r in results)
    phases = pushed.phases()
    server_busy = sum(s for p, s in phases.items() if p != "lock")
    held = sum(phases.get(p, 0.0) for p in ("read", "clock", "replay", "write", "commit"))
    print(f"  end to end: {total} events from {len(kiosks)} kiosks in {elapsed:.2f} s = {end_to_end:,.0f} events/s "
          f"({sum(r['pushes'] for r in results)} pushes)")

    rows = stored_rows(store)
    assert len(rows) == total, (len(rows), total)
    limit, one_transaction = bulk_insert_rate(store, rows, args.batch)
    print(f"  bulk insert of the same {len(rows)} rows: {limit:,.0f} rows/s in transactions of {args.batch} "
          f"(the limit), {one_transaction:,.0f} rows/s in one")
    store.dispose()

    # the server's ingest alone, on a fresh database, with the same batches
    fresh_url, drop = (postgres_database(args.pg) if name == "postgresql"
                       else (f"sqlite:///{work / 'ingest-only.db'}", lambda: None))
    try:
        alone = Store(fresh_url, pool_size=2)
        alone.migrate()
        for kiosk_id, _ in kiosks:
            add_kiosk(alone, kiosk_id)
        batches = replay_batches(alone, kiosks, args.batch)
        in_process, profile = ingest_rate(alone, batches, profile=False)
        alone.dispose()
    finally:
        drop()
    print(f"  ingest in process (no HTTP, no daemon): {in_process:,.0f} events/s")
    ratio = end_to_end / limit
    print(f"  end to end / bulk insert = {ratio:.0%} (target >= {TARGET:.0%}: {'met' if ratio >= TARGET else 'NOT met'})")
    print("  where the time goes: the server's phases per request (Server-Timing), summed over requests")
    print("    (read, clock, replay, write and commit run holding the batch's locks: on SQLite the one write lock,"
          " on PostgreSQL its kiosk's and books'; the others hold none)")
    for phase, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        if phase == "lock":
            continue
        print(f"    {phase:>8}: {seconds:7.2f} s  {seconds / max(server_busy, 1e-9):6.1%} of server work"
              f"  {seconds * 1e6 / total:7.1f} us/event")
    print(f"    locks were held {held:.2f} s in all over the {elapsed:.2f} s run ({held / elapsed:.0%}; over 100%: "
          f"batches side by side); requests waited for theirs {phases.get('lock', 0.0):.1f} s in all "
          f"({phases.get('lock', 0.0) / elapsed:.0f} waiting at a time on average)")
    print(f"    requests as the kiosks saw them: {requests_seconds:.2f} s in all; wall {elapsed:.2f} s")
    kiosks_cpu = sum(r["cpu"] for r in results)
    other_cpu = max(0.0, all_cpu - server_cpu - kiosks_cpu)
    print(f"  CPU over the run ({os.cpu_count()} CPUs, {elapsed * os.cpu_count():.1f} CPU-s available): "
          f"server {server_cpu:.1f} s ({server_cpu * 1e6 / total:.0f} us/event), kiosk daemons {kiosks_cpu:.1f} s "
          f"({kiosks_cpu * 1e6 / total:.0f} us/event), database server and the rest {other_cpu:.1f} s")
    return {"events": total, "kiosks": len(kiosks), "seconds": round(elapsed, 3),
            "end_to_end_eps": round(end_to_end), "bulk_insert_rps": round(limit),
            "bulk_insert_one_transaction_rps": round(one_transaction),
            "ingest_in_process_eps": round(in_process), "ratio_to_bulk_insert": round(ratio, 3),
            "target_met": ratio >= TARGET,
            "cpu_s": {"server": round(server_cpu, 2), "kiosks": round(kiosks_cpu, 2), "other": round(other_cpu, 2),
                      "available": round(elapsed * (os.cpu_count() or 1), 2)},
            "write_lock_held_s": round(held, 3),
            "server_phases_s": {k: round(v, 3) for k, v in phases.items()}}


def profile_ingest(kiosks: list[tuple[str, Path]], args, work: Path) -> str:
    from bookcorner.central.db import Store
    from bookcorner.central.kiosks import add_kiosk

    store = Store(f"sqlite:///{work / 'profile.db'}", pool_size=2)
    store.migrate()
    for kiosk_id, _ in kiosks[:4]:
        add_kiosk(store, kiosk_id)
    _rate, text = ingest_rate(store, replay_batches(store, kiosks[:4], args.batch), profile=True)
    store.dispose()
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=20)
    parser.add_argument("--events", type=int, default=5000, help="per kiosk")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server processes (default: one per CPU)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default=PG_DEFAULT, help="an administrative PostgreSQL URL (a database is made)")
    parser.add_argument("--dir", help="work here (default: a temporary folder)")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench.sync: {args.kiosks} kiosks x {args.events} events, batches of {args.batch}, in {work}", flush=True)
    kiosks = make_kiosks(work, "bench-{:02d}", args.kiosks, args.events)

    figures: dict[str, object] = {"kiosks": args.kiosks, "events_per_kiosk": args.events, "batch": args.batch,
                                  "cpus": os.cpu_count()}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            url = f"sqlite:///{work / 'central.db'}"
            for leftover in work.glob("central.db*"):
                leftover.unlink()
            figures["sqlite"] = run_backend("sqlite", url, kiosks, args, work)
        elif backend == "postgresql":
            try:
                url, drop = postgres_database(args.pg)
            except Exception as error:  # no server, no login
                reason = str(error).strip().splitlines()[0]
                print(f"\n== postgresql: skipped ({reason}) ==")
                figures["postgresql"] = {"skipped": reason}
                continue
            try:
                figures["postgresql"] = run_backend("postgresql", url, kiosks, args, work)
            finally:
                drop()
    if not args.no_profile:
        print("\n== profile of the server's ingest (in process, SQLite, 4 kiosks' batches), by own time ==")
        print(profile_ingest(kiosks, args, work))
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
