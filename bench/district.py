"""A district on one central server: how ingest scales, and its report pages.

    python -m bench.district [--part a,c] [--pg postgresql://postgres@127.0.0.1:5432/test]
        (a): [--kiosks 16] [--events 2000] [--batch 500] [--processes 1,2]
             [--pushers light,daemon] [--backends postgresql,sqlite]
        (c): [--schools 300] [--loans 10000000] [--scale 1.0] [--years 3] [--runs 20] [--workers 2]

(a) Ingest end to end: many kiosks, each a real journal, pushing all at once (a process
each) by the real protocol over HTTP, as lightweight clients (their batches encoded before
the start: what the server and the database can take) and as the real sync daemon's round
(what a kiosk adds: reading its journal, keeping its position), to ``bookcorner central``
with 1 and then 2 server processes
(one address, a shared socket), each time on a fresh database; on PostgreSQL (batches of
different kiosks about different books are taken side by side: ``central.db``) and on SQLite
(one writer). Each figure is a share of the same database's bulk-insert rate for the same
rows, measured in the same run (``bench.sync``: COPY on PostgreSQL, executemany on SQLite,
in transactions of a batch). Goal: at least 40% on PostgreSQL with one process, and two
processes faster than one.

(c) Report pages at p95 with a whole district on one PostgreSQL database (``bench.district_reports``):
300 schools of different sizes, 10,000,000 loans in all (``--scale 0.1`` for a tenth), each school
added by the product's ``Schools.add``; each report page of a school's librarian for the smallest,
median and largest school, and the district's page, against a baseline measured in the same run.
Goal: every page under 300 ms at p95. (The storm, (b), is ``bench.storm``.)

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench import conclude
from bench.district_reports import part_c, verdicts
from bench.sync import PG_DEFAULT, bulk_insert_rate, make_kiosks, postgres_database, push_all, stored_rows

GOAL = 0.40


def ingest_scaling(backend: str, kiosks: list[tuple[str, Path]], args, work: Path) -> dict:
    """Part (a) on one database: end to end with each kind of kiosk and number of server
    processes, and the bulk-insert limit (measured on the first run's rows)."""
    print(f"\n== {backend} ==", flush=True)
    figures: dict = {}
    limit = None
    for pushers, processes in [(p, n) for p in args.pushers for n in args.processes]:
        if backend == "postgresql":
            url, drop = postgres_database(args.pg)
        else:
            for leftover in work.glob("central-*.db*"):
                leftover.unlink()
            url, drop = f"sqlite:///{work / f'central-{processes}.db'}", (lambda: None)
        try:
            pushed = push_all(url, kiosks, args.batch, processes, work / f"server-{backend}-{processes}.log",
                              light=pushers == "light")
            rows = stored_rows(pushed.store)
            assert len(rows) == pushed.total, (len(rows), pushed.total)
            if limit is None:
                limit, _one = bulk_insert_rate(pushed.store, rows, args.batch)
                figures["bulk_insert_rps"] = round(limit)
                print(f"  bulk insert of the same {len(rows)} rows: {limit:,.0f} rows/s in transactions of "
                      f"{args.batch} (the limit)")
            pushed.store.dispose()
        finally:
            drop()
        phases = pushed.phases()
        share = pushed.rate / limit
        runs = figures.setdefault(f"{pushers}_kiosks", {})
        runs[f"{processes}_processes"] = {
            "events": pushed.total, "seconds": round(pushed.elapsed, 3), "end_to_end_eps": round(pushed.rate),
            "share_of_bulk_insert": round(share, 3), "server_cpu_s": round(pushed.server_cpu, 2),
            "machine_cpu_s": round(pushed.all_cpu, 2), "database_cpu_s": round(pushed.database_cpu, 2),
            "kiosks_cpu_s": round(pushed.kiosks_cpu, 2),
            "server_phases_s": {phase: round(seconds, 3) for phase, seconds in phases.items()}}
        print(f"  {pushers} kiosks, {processes} server process{'es' if processes > 1 else ''}: {pushed.total} events from "
              f"{len(kiosks)} kiosks in {pushed.elapsed:.2f} s = {pushed.rate:,.0f} events/s = {share:.0%} of bulk "
              f"insert (waiting for locks {phases.get('lock', 0.0):.1f} s summed over requests)", flush=True)
        print(f"    CPU over the run ({pushed.elapsed * (os.cpu_count() or 1):.1f} CPU-s on {os.cpu_count()} CPUs): "
              f"server {pushed.server_cpu:.2f} s ({pushed.server_cpu * 1e6 / pushed.total:.0f} us/event), database "
              f"{pushed.database_cpu:.2f} s ({pushed.database_cpu * 1e6 / pushed.total:.0f} us/event), kiosks (the load "
              f"generator) {pushed.kiosks_cpu:.2f} s ({pushed.kiosks_cpu * 1e6 / pushed.total:.0f} us/event), the whole "
              f"machine {pushed.all_cpu:.1f} s")
        print("    the server's phases summed over requests (Server-Timing): " + ", ".join(
            f"{phase} {seconds:.2f} s" for phase, seconds in sorted(phases.items(), key=lambda kv: -kv[1])))
    for pushers in args.pushers:
        runs = figures[f"{pushers}_kiosks"]
        if "1_processes" in runs and "2_processes" in runs:
            runs["two_over_one"] = round(runs["2_processes"]["end_to_end_eps"] / runs["1_processes"]["end_to_end_eps"], 3)
            print(f"  {pushers} kiosks: 2 processes / 1 process: {runs['two_over_one']:.2f}x")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.district", description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="a", help="which parts to run, comma-separated: a (ingest), c (reports)")
    parser.add_argument("--kiosks", type=int, default=16)
    parser.add_argument("--events", type=int, default=2000, help="per kiosk")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--processes", default="1,2", help="server processes to try, comma-separated")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--pushers", default="light,daemon",
                        help="light: lightweight clients sending each journal's batches, encoded beforehand, in the "
                             "real protocol over HTTP; daemon: the real sync daemon's round (as bench.sync)")
    parser.add_argument("--pg", default=PG_DEFAULT, help="an administrative PostgreSQL URL (a database is made)")
    parser.add_argument("--dir", help="work here (default: a temporary folder)")
    parser.add_argument("--schools", type=int, default=300, help="(c) schools in the district")
    parser.add_argument("--loans", type=int, default=10_000_000, help="(c) loans in the whole district")
    parser.add_argument("--scale", type=float, default=1.0, help="(c) a share of --schools and --loans, for smaller runs")
    parser.add_argument("--years", type=int, default=3, help="(c) school years of loans")
    parser.add_argument("--runs", type=int, default=20, help="(c) timed runs of each page")
    parser.add_argument("--workers", type=int, default=2, help="(c) schools built side by side")
    args = parser.parse_args(argv)
    parts = set(args.part.split(","))
    figures: dict[str, object] = {}
    if "a" in parts:
        figures["ingest"] = ingest(args)
    if "c" in parts:
        try:
            url, drop = postgres_database(args.pg)
        except Exception as error:  # no server, no login
            reason = str(error).strip().splitlines()[0]
            print(f"\n== (c) report pages: skipped, PostgreSQL is needed ({reason}) ==", file=sys.stderr)
            figures["reports"] = {"skipped": reason}
        else:
            alone, drop_alone = postgres_database(args.pg)
            try:
                figures["reports"] = part_c(url, args, alone)
            finally:
                drop()
                drop_alone()
    print(file=sys.stderr)
    reports = figures.get("reports")
    return conclude(verdicts(reports) if isinstance(reports, dict) else [], figures, verdict_file=sys.stderr)


def ingest(args) -> dict:
    """Part (a)."""
    args.processes = [int(p) for p in args.processes.split(",")]
    args.pushers = args.pushers.split(",")

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-district-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench.district (a) ingest: {args.kiosks} kiosks x {args.events} events, batches of {args.batch}, "
          f"server processes {args.processes}, in {work}", flush=True)
    kiosks = make_kiosks(work, "district-{:03d}", args.kiosks, args.events)

    result: dict[str, object] = {"kiosks": args.kiosks, "events_per_kiosk": args.events, "batch": args.batch,
                                 "goal_share_pg_one_process": GOAL}
    for backend in args.backends.split(","):
        if backend == "postgresql":
            try:
                postgres_database(args.pg)[1]()  # (a server answers, and we may make databases)
            except Exception as error:  # no server, no login
                reason = str(error).strip().splitlines()[0]
                print(f"\n== postgresql: skipped ({reason}) ==")
                result["postgresql"] = {"skipped": reason}
                continue
        result[backend] = ingest_scaling(backend, kiosks, args, work)
    pg = result.get("postgresql")
    goals = {}
    for pushers in args.pushers:
        runs = pg.get(f"{pushers}_kiosks", {}) if isinstance(pg, dict) else {}
        if "1_processes" not in runs:
            continue
        one, ratio = runs["1_processes"]["share_of_bulk_insert"], runs.get("two_over_one", 0)
        goals[f"{pushers}_kiosks"] = {"pg_one_process_at_least_40pct": one >= GOAL, "two_processes_faster": ratio > 1}
        print(f"\ngoal ({pushers} kiosks): PostgreSQL, 1 process, {one:.0%} of bulk insert (>= {GOAL:.0%}: "
              f"{'met' if one >= GOAL else 'NOT met'}); 2 processes / 1: {ratio:.2f}x "
              f"({'faster' if ratio > 1 else 'NOT faster'})")
    result["goal_met"] = goals
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
