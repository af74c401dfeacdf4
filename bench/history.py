"""Years of history on the push path: time-partitioned tables against plain ones (issue 15).

    python -m bench.history [--history 1500000] [--loans 750000] [--years 3] [--kiosks 8]
                            [--events 1000] [--batch 100] [--rounds 2]
                            [--pg postgresql://postgres@127.0.0.1:5432/test] [--dir DIR]

One PostgreSQL database is brought to the current schema (events and loans partitioned by school
term, ``central.partitions``) and given ``--years`` years of a district's history, scaled down:
``--history`` events (with their ``event_ids``) and ``--loans`` loans, spread evenly over the years.
A second database is copied from it (``CREATE DATABASE ... TEMPLATE``, the same rows) and its
``events`` and ``loans`` made plain tables again, as they were before migrations 0011 and 0012 (the
same code; ``event_ids`` stays, since the code writes it on PostgreSQL). Then, alternately on each
(the order swapped every round), ``bookcorner central`` runs on it and ``--kiosks`` lightweight
kiosks (each a real journal of ``--events`` lendings and returns, sent over HTTP in the real
protocol in batches of ``--batch``, all at once) push new events: each push's time, the p95, and
events acknowledged per second. Last, on each: a term's circulation report (loans by class over a
past term) and a review card's lookup of events by id, p95 over repeated runs; and, on a fresh
database, what writing ``event_ids`` adds to storing events. The server's own
phases per push (Server-Timing: lock wait, reads, replay, writes, commit) say where a difference lies.

The last line printed is one JSON object with every figure (partitioned / plain ratios included).
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import json
import multiprocessing as mp
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench.sync import PG_DEFAULT, Server, make_kiosks, postgres_database, push_requests


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


# --- the history ------------------------------------------------------------------------------------


def build_history(url: str, events: int, loans: int, years: int) -> dict:
    """The current schema and ``years`` of history: events and loans, evenly spread, ending an hour ago."""
    from sqlalchemy import text

    from bookcorner.central import db, partitions, privacy

    store = db.Store(url, pool_size=1)
    now = datetime.now(UTC)
    span = timedelta(days=365 * years).total_seconds()
    started = time.perf_counter()
    store.migrate()
    with store.writing() as conn:
        partitions.ensure_partitions(conn, now, since=now - timedelta(days=365 * years + 1))
        conn.execute(text(
            "INSERT INTO events SELECT md5('e' || g), 'hist-' || (g % 300), g / 300 + 1, 'boot', g, "
            "(at AT TIME ZONE 'UTC')::text, true, 'S' || (g % 4000), "
            "CASE WHEN g % 2 = 0 THEN 'loan.checked_out' ELSE 'loan.checked_in' END, "
            "'{\"item_id\":\"I' || (g % 90000) || '\",\"patron_id\":\"S' || (g % 4000) || '\",\"due\":\"2026-01-01\"}', "
            "at + interval '1 hour', at, 'corrected', NULL, NULL, 'applied', NULL, NULL, 'b' || (g / 500), 'push', NULL "
            "FROM (SELECT g, :now - make_interval(secs => :span * (1 - g::float8 / :n)) - interval '1 hour' AS at "
            "FROM generate_series(1, :n) g) s"), {"now": now, "span": span, "n": events})
        conn.execute(text("INSERT INTO event_ids SELECT event_id, kiosk_id, seq, received_at FROM events"))
        conn.execute(text(
            "INSERT INTO loans SELECT md5('l' || g), 'I' || (g % 90000), 'S' || (g % 4000), (1 + g % 6) || 'A', "
            "'hist-' || (g % 300), at, (at + interval '14 days')::date, "
            "CASE WHEN g % 20 = 0 THEN NULL ELSE at + interval '7 days' END, 0, NULL "
            "FROM (SELECT g, :now - make_interval(secs => :span * (1 - g::float8 / :n)) - interval '1 hour' AS at "
            "FROM generate_series(1, :n) g) s"), {"now": now, "span": span, "n": loans})
    # as a district's database is after its first day: the retention job (central.privacy, the product's
    # own) has taken the names off what is past the registers' periods. Left to the server's start, that
    # first round ran under the write lock while the kiosks pushed, and the bench timed it as pushes.
    anonymised = privacy.anonymise(store, now) + privacy.anonymise_events(store, now)
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    store.dispose()
    return {"events": events, "loans": loans, "years": years, "anonymised": anonymised,
            "built_s": round(time.perf_counter() - started, 1)}


def copy_database(admin: str, source_url: str):
    """A new database with the same rows (PostgreSQL's own copy of the files)."""
    import uuid

    import psycopg

    source = source_url.rsplit("/", 1)[1]
    name = f"{source}_plain_{uuid.uuid4().hex[:4]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin.rsplit("/", 1)[0] + "/" + name, drop


def flatten(url: str) -> float:
    """``events`` and ``loans`` made plain tables again (as before migrations 0011 and 0012)."""
    from sqlalchemy import text

    from bookcorner.central import db, partitions

    loans = importlib.import_module("bookcorner.central.migrations.versions.0011_partitions").LOAN_INDEXES
    events = importlib.import_module("bookcorner.central.migrations.versions.0012_event_partitions").EVENT_INDEXES
    store = db.Store(url, pool_size=1)
    started = time.perf_counter()
    with store.writing() as conn:
        partitions.unpartition_table(conn, "events", "event_id", events)
        partitions.unpartition_table(conn, "loans", "loan_id", loans)
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    with store.reading() as conn:
        assert not partitions.is_partitioned(conn, "events") and not partitions.is_partitioned(conn, "loans")
    store.dispose()
    return time.perf_counter() - started


# --- pushing ------------------------------------------------------------------------------------------


def timed_kiosk(job: dict) -> dict:
    """One kiosk as a lightweight client (as ``bench.sync.light_round``), noting each push's time."""
    from bookcorner.protocol.messages import PushReply, decode, encode

    bodies = [encode(request) for request in push_requests(job["kiosk_id"], Path(job["root"]), job["batch"])]
    address = urlsplit(job["url"])
    headers = {"Authorization": f"Bearer {job['token']}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=300)
    times, acked, error, phases = [], 0, None, {}
    job["ready"].put(1)
    job["go"].wait()
    started = time.perf_counter()
    for body in bodies:
        while True:
            sent = time.perf_counter()
            connection.request("POST", "/v1/push", body, headers)
            response = connection.getresponse()
            data = response.read()
            if response.status != 429:
                times.append(time.perf_counter() - sent)
                break
            time.sleep(float(response.getheader("Retry-After") or 1))
        if response.status != 200:
            error = f"{response.status}: {data[:200]!r}"
            break
        acked = decode(data, PushReply).applied_seq
        for name, ms in re.findall(r"(\w+);dur=([\d.]+)", response.getheader("Server-Timing") or ""):
            phases[name] = phases.get(name, 0.0) + float(ms) / 1000
    ended = time.perf_counter()
    connection.close()
    return {"start": started, "end": ended, "times": times, "acked": acked, "error": error, "phases": phases}


def push_round(url: str, kiosks: list[tuple[str, Path]], warm: tuple[str, Path], batch: int, log: Path) -> dict:
    """Every kiosk pushes its journal at once to ``bookcorner central`` on ``url``, once the
    server has taken a warm-up kiosk's pushes (not counted)."""
    from bookcorner.central.db import Store
    from bookcorner.central.kiosks import add_kiosk
    from bookcorner.protocol.messages import encode

    store = Store(url, pool_size=1)
    tokens = {kiosk_id: add_kiosk(store, kiosk_id) for kiosk_id, _ in [*kiosks, warm]}
    store.dispose()
    server = Server(url, log)
    try:
        address = urlsplit(server.url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=300)
        for request in push_requests(warm[0], warm[1], batch):
            connection.request("POST", "/v1/push", encode(request),
                               {"Authorization": f"Bearer {tokens[warm[0]]}", "Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"bench: the warm-up push was answered {answer.status}")
        connection.close()
        context = mp.get_context("fork")
        manager = context.Manager()
        go, ready = manager.Event(), manager.Queue()
        jobs = [{"root": str(root), "kiosk_id": kiosk_id, "url": server.url, "token": tokens[kiosk_id],
                 "batch": batch, "go": go, "ready": ready} for kiosk_id, root in kiosks]
        with context.Pool(len(jobs)) as pool:
            pending = pool.map_async(timed_kiosk, jobs)
            for _ in jobs:
                ready.get(timeout=600)
            time.sleep(0.5)
            go.set()
            results = pending.get(timeout=3600)
    finally:
        server.stop()
    failed = [r["error"] for r in results if r["error"]]
    if failed:
        raise SystemExit(f"bench: kiosks failed: {failed[:3]}")
    times = [t for r in results for t in r["times"]]
    total = sum(r["acked"] for r in results)
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    phases: dict[str, float] = {}
    for r in results:
        for name, seconds in r["phases"].items():
            phases[name] = phases.get(name, 0.0) + seconds
    return {"events": total, "pushes": len(times), "seconds": elapsed, "times": times, "phases": phases}


# --- reading --------------------------------------------------------------------------------------------


def reads(url: str, runs: int) -> dict:
    """A past term's circulation report (loans by class) and a review card's lookup of events by id."""
    from sqlalchemy import select, text

    from bookcorner.central import db, partitions

    store = db.Store(url, pool_size=1)
    start = partitions.term_start(datetime.now(UTC) - timedelta(days=365))
    end = partitions.next_term(start)
    report, lookup = [], []
    with store.reading() as conn:
        some = list(conn.execute(text("SELECT event_id FROM event_ids TABLESAMPLE SYSTEM (1) LIMIT :n"),
                                 {"n": runs * 20}).scalars())
    for n in range(runs):
        with store.reading() as conn:
            began = time.perf_counter()
            conn.execute(text("SELECT class_name, count(*), count(DISTINCT patron_id) FROM loans "
                              "WHERE out_at >= :a AND out_at < :b GROUP BY class_name"), {"a": start, "b": end}).all()
            report.append(time.perf_counter() - began)
            began = time.perf_counter()
            found = conn.execute(select(db.events.c.event_id, db.events.c.payload)
                                 .where(db.event_id_in(conn, some[n * 20:(n + 1) * 20]))).all()
            lookup.append(time.perf_counter() - began)
            assert len(found) == len(some[n * 20:(n + 1) * 20])
    store.dispose()
    return {"term_report_p95_ms": round(p95(report) * 1000, 2), "lookup_20_ids_p95_ms": round(p95(lookup) * 1000, 2)}


def ids_cost(admin: str, count: int = 40_000, batch: int = 500) -> dict:
    """What keeping event ids in ``event_ids`` adds to storing events: the same rows stored in
    transactions of ``batch``, into ``events`` alone and with their ids (``db.record_event_ids``),
    on a fresh database; the best of five each, alternating."""
    from sqlalchemy import text

    from bookcorner.central import db

    url, drop = postgres_database(admin)
    try:
        store = db.Store(url, pool_size=1)
        store.migrate()
        now = datetime.now(UTC)
        rows = [(f"cost-{n:08d}-{n * 7919 % 100003}", f"k{n % 16}", n, "boot", n, now.isoformat(), True, "S01",
                 "loan.checked_out", '{"item_id":"I1","patron_id":"S01"}', now, now, "corrected", None, None,
                 "applied", None, None, "b", "push", None) for n in range(count)]
        best: dict[str, float] = {}
        for _ in range(5):
            for with_ids in (False, True):
                with store.writing() as conn:
                    conn.execute(text("TRUNCATE events, event_ids"))
                began = time.perf_counter()
                for start in range(0, count, batch):
                    with store.writing() as conn:
                        if with_ids:
                            db.record_event_ids(conn, rows[start:start + batch])
                        db.bulk_insert(conn, db.events, rows[start:start + batch])
                key = "events_and_ids_s" if with_ids else "events_alone_s"
                best[key] = min(best.get(key, float("inf")), time.perf_counter() - began)
        store.dispose()
    finally:
        drop()
    return {"rows": count, **{k: round(v, 3) for k, v in best.items()},
            "ratio": round(best["events_and_ids_s"] / best["events_alone_s"], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_500_000, help="events of history")
    parser.add_argument("--loans", type=int, default=750_000, help="loans of history")
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--kiosks", type=int, default=8)
    parser.add_argument("--events", type=int, default=1000, help="new events per kiosk and round")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reads", type=int, default=30, help="runs of each read")
    parser.add_argument("--pg", default=PG_DEFAULT, help="an administrative PostgreSQL URL (databases are made)")
    parser.add_argument("--dir", help="work here (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-history-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        parted_url, drop_parted = postgres_database(args.pg)
    except Exception as error:  # noqa: BLE001  (no server, no login)
        reason = str(error).strip().splitlines()[0]
        print(f"bench.history: PostgreSQL skipped ({reason})")
        print(json.dumps({"history": {"skipped": reason}}))
        return 0
    drop_plain = None
    try:
        print(f"bench.history: {args.years} years of history ({args.history:,} events, {args.loans:,} loans), "
              f"{args.kiosks} kiosks x {args.events} events a round, batches of {args.batch}, {args.rounds} rounds",
              flush=True)
        history = build_history(parted_url, args.history, args.loans, args.years)
        print(f"  history built in {history['built_s']} s (partitioned; {history['anonymised']:,} loans and events "
              "past the registers' periods anonymised by the product's retention job first)", flush=True)
        plain_url, drop_plain = copy_database(args.pg, parted_url)
        history["flattened_s"] = round(flatten(plain_url), 1)
        print(f"  copied and made plain in {history['flattened_s']} s", flush=True)
        urls = {"partitioned": parted_url, "plain": plain_url}
        pushes: dict[str, list[dict]] = {"partitioned": [], "plain": []}
        for r in range(args.rounds):
            kiosks = make_kiosks(work, f"round{r}-{{:02d}}", args.kiosks, args.events)
            [warm] = make_kiosks(work, f"warm{r}-{{:02d}}", 1, 4 * args.batch)
            order = ["partitioned", "plain"] if r % 2 == 0 else ["plain", "partitioned"]
            for name in order:
                done = push_round(urls[name], kiosks, warm, args.batch, work / f"server-{name}.log")
                pushes[name].append(done)
                print(f"  round {r + 1}, {name}: {done['events']} events in {done['seconds']:.2f} s "
                      f"({done['events'] / done['seconds']:,.0f}/s), push p95 {p95(done['times']) * 1000:.1f} ms, "
                      f"median {statistics.median(done['times']) * 1000:.1f} ms", flush=True)
        figures: dict[str, dict] = {}
        for name, rounds in pushes.items():
            times = [t for done in rounds for t in done["times"]]
            events, seconds = sum(d["events"] for d in rounds), sum(d["seconds"] for d in rounds)
            phases: dict[str, float] = {}
            for done in rounds:
                for phase, spent in done["phases"].items():
                    phases[phase] = phases.get(phase, 0.0) + spent
            figures[name] = {"server_ms_per_push": {phase: round(spent * 1000 / len(times), 2)
                                                    for phase, spent in phases.items()},
                             "pushes": len(times), "push_p95_ms": round(p95(times) * 1000, 1),
                             "push_median_ms": round(statistics.median(times) * 1000, 1),
                             "events_per_s": round(events / seconds), **reads(urls[name], args.reads)}
        p, f = figures["partitioned"], figures["plain"]
        ratios = {"push_p95": round(p["push_p95_ms"] / f["push_p95_ms"], 3),
                  "throughput": round(p["events_per_s"] / f["events_per_s"], 3),
                  "term_report_p95": round(p["term_report_p95_ms"] / f["term_report_p95_ms"], 3),
                  "lookup_p95": round(p["lookup_20_ids_p95_ms"] / f["lookup_20_ids_p95_ms"], 3)}
        print(f"\npartitioned / plain: push p95 {ratios['push_p95']:.2f}x, throughput {ratios['throughput']:.2f}x, "
              f"term report p95 {ratios['term_report_p95']:.2f}x, lookup by id p95 {ratios['lookup_p95']:.2f}x")
        cost = ids_cost(args.pg)
        print(f"keeping event ids (event_ids) adds {cost['ratio'] - 1:.0%} to storing {cost['rows']:,} events "
              f"in batches of 500 ({cost['events_alone_s']} s alone, {cost['events_and_ids_s']} s with their ids)")
        result = {"history": history, "kiosks": args.kiosks, "events_per_kiosk": args.events, "batch": args.batch,
                  "rounds": args.rounds, **figures, "partitioned_over_plain": ratios, "event_ids_cost": cost}
    finally:
        if drop_plain:
            drop_plain()
        drop_parted()
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
