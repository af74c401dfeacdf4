"""Part (c) of ``bench.district``: report pages at p95 over a whole district on PostgreSQL.

A district of ``schools`` schools (300) with ``loans`` loans (10,000,000) in total, schools of
different sizes (pupils and loans drawn from a log-normal spread, summing to the totals), each
made as the product makes one (``Schools.add``: its schema, migrated by alembic) and filled as
``bench.reports`` fills one school: roster, catalogue and calendar through ``load_document``, loans
over ``years`` school years on school days at lunch and after school, some children reading far
more than others, those older than the retention period anonymised; the books still out in
``item_state`` as replay leaves them. The loans are made by PostgreSQL itself (one ``INSERT ...
SELECT`` over ``generate_series`` per school: making 10,000,000 rows in Python and sending them
took most of an hour on this machine); the term partitions of the loans' years are made first
(``partitions.ensure_partitions``, as the upkeep would have made them as the terms came).

Then, with the whole district present, each report page of a school's librarian (those
``bench.reports`` measures, and the overdue register) runs ``runs`` times for the smallest,
the median and the largest school, and the district's own page (``district.overview``) too,
after every school's figures were counted as the server's job does at start:
p50/p95 and the ratio to a baseline measured in the same run (``SELECT count(*) FROM loans``
in the largest school). Goal: every page's p95 under 300 ms. The largest school is also built
alone in a database of its own and its pages timed in the same rounds: the ratio says what the
rest of the district costs a school's pages. The district's figures all counted live (as the
page did before the job kept them) are timed too, for the ratio.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from bench.reports import RETENTION_YEARS, SLOTS, TARGET_MS, ZONE, baseline, terms_until, timed
from bench.reports import reports as school_pages
from bench.store import percentile

#: books out now, as replay leaves them (one row per book: its latest open loan)
ITEM_STATE = ("INSERT INTO item_state (item_id, status, loan_id, patron_id, due, since, loan_kiosk, renewals, "
              "changed_time, changed_kiosk, changed_seq, rev) "
              "SELECT DISTINCT ON (item_id) item_id, NULL, loan_id, patron_id, due, out_at, kiosk_id, 0, out_at, "
              "kiosk_id, 0, 0 FROM loans WHERE returned_at IS NULL ORDER BY item_id, out_at DESC")
#: a school's loans, made in the database: the n-th loan of a reader drawn with a skew (power(random(), 2):
#: a few read far more than most), on a school day drawn from the calendar's days, at lunch or after school
LOANS = """
INSERT INTO loans (loan_id, item_id, patron_id, class_name, kiosk_id, out_at, due, returned_at, renewals, anonymised_at)
SELECT 'L' || lpad(r.g::text, 8, '0'), 'I' || lpad(r.item::text, 6, '0'),
       CASE WHEN r.out_at >= %(anonymise_before)s THEN p.patron_id END, p.class_name, 'corner-' || p.class_name,
       r.out_at, (r.out_at AT TIME ZONE %(zone)s)::date + 7,
       CASE WHEN r.returned < %(now)s THEN r.returned END, 0,
       CASE WHEN r.out_at < %(anonymise_before)s THEN %(now)s::timestamptz END
FROM (SELECT g, reader, item, out_at, out_at + make_interval(days => 1 + back_days, hours => back_hours) AS returned
      FROM (SELECT g, floor(power(random(), 2) * %(readers)s)::int + 1 AS reader,
                   floor(random() * %(items)s)::int AS item,
                   LEAST(((%(days)s::date[])[1 + floor(random() * %(day_count)s)::int]
                          + make_interval(mins => CASE WHEN g %% 2 = 0 THEN %(slot0)s + floor(random() * %(len0)s)::int
                                                       ELSE %(slot1)s + floor(random() * %(len1)s)::int END,
                                          secs => floor(random() * 60)::int)) AT TIME ZONE %(zone)s,
                         %(now)s::timestamptz) AS out_at,
                   floor(random() * 10)::int AS back_days, floor(random() * 6)::int AS back_hours
            FROM generate_series(0, %(loans)s - 1) AS g) AS drawn) AS r
JOIN unnest(%(ids)s::text[], %(classes)s::text[]) WITH ORDINALITY AS p(patron_id, class_name, n) ON p.n = r.reader
ORDER BY r.out_at
"""
PAGES = ("index", "week", "term", "last_term", "stars", "overdue")


def sizes(schools: int, loans: int, seed: int = 15) -> list[tuple[int, int]]:
    """(pupils, loans) per school: a log-normal spread around 1,000 pupils, loans in proportion,
    the loans summing to ``loans``."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 0.6) for _ in range(schools)]
    mean = sum(weights) / schools
    spread = [(max(60, round(1000 * w / mean)), w) for w in weights]
    shares = [max(1, int(loans * w / (mean * schools))) for _p, w in spread]
    shares[max(range(schools), key=lambda n: shares[n])] += loans - sum(shares)  # (rounding)
    return [(pupils, share) for (pupils, _w), share in zip(spread, shares, strict=True)]


def slug(n: int) -> str:
    return f"school-{n:03d}"


def _build_one(job: tuple) -> dict:
    """One school, in a worker process: added as the product adds one, then filled."""
    from bookcorner.central import db
    from bookcorner.central.partitions import ensure_partitions
    from bookcorner.central.schools import Schools, schema_of

    url, n, pupils, loans, years = job
    root = db.Store(url, pool_size=1)
    try:
        schools = Schools(root)
        started = time.perf_counter()
        schools.add(slug(n), f"School {n}")
        added = time.perf_counter() - started
        store = schools.store(slug(n))
        started = time.perf_counter()
        with store.writing() as conn:
            ensure_partitions(conn, db.now(), since=datetime.now(UTC) - timedelta(days=365 * (years + 1)))
        fill(store, pupils, loans, years, seed=n)
        with store.writing() as conn:
            conn.exec_driver_sql(ITEM_STATE)
        with root.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            schema = schema_of(slug(n))  # what autovacuum does after a bulk load
            conn.exec_driver_sql(f"VACUUM ANALYZE {schema}.loans, {schema}.item_state, {schema}.patrons, "
                                 f"{schema}.catalogue")
        filled = time.perf_counter() - started
    finally:
        root.dispose()
    return {"n": n, "add_s": added, "fill_s": filled}


def fill(store, students: int, loans: int, years: int, seed: int) -> None:
    """One school's roster, catalogue and calendar (by ``load_document``, as bench.reports) and
    its loans (made by the database, see ``LOANS``)."""
    from bookcorner.central import db
    from bookcorner.central.reference import load_document
    from bookcorner.protocol.messages import CalendarRecord, ItemRecord, PatronRecord, ReferenceDocument

    today = datetime.now(ZONE).date()
    terms = terms_until(today, years)
    classes = max(2, students // 30)
    per_grade = -(-classes // 6)  # grades 1 to 6
    class_names = [f"{1 + n // per_grade}.{1 + n % per_grade}" for n in range(classes)]
    roster = {f"S{n:05d}": class_names[n % classes] for n in range(students)}
    items = min(20_000, loans // 10 + 1)
    load_document(store, ReferenceDocument(
        patrons=[PatronRecord(patron_id=p, name=f"学生{p[1:]}", role="student", class_name=c) for p, c in roster.items()],
        items=[ItemRecord(item_id=f"I{n:06d}", title=f"Book {n}") for n in range(items)],
        calendar=CalendarRecord(terms=terms)))
    first = today - timedelta(days=365 * years)
    days = [t.start + timedelta(days=d) for t in terms for d in range((min(t.end, today) - t.start).days + 1)
            if (t.start + timedelta(days=d)).weekday() < 5 and t.start + timedelta(days=d) >= first]
    readers = list(roster)
    random.Random(seed).shuffle(readers)  # (who reads most is not the first of the roster)
    now = db.now()
    with store.writing() as conn:
        conn.exec_driver_sql("SELECT setseed(%(seed)s)", {"seed": (seed % 1000) / 1000})
        conn.exec_driver_sql(LOANS, {
            "loans": loans, "readers": len(readers), "items": items, "days": days, "day_count": len(days),
            "ids": readers, "classes": [roster[p] for p in readers], "zone": ZONE.key, "now": now,
            "anonymise_before": now - timedelta(days=365 * RETENTION_YEARS),
            "slot0": SLOTS[0][0], "len0": SLOTS[0][1], "slot1": SLOTS[1][0], "len1": SLOTS[1][1]})


def build_district(url: str, plan: list[tuple[int, int]], years: int, workers: int,
                   only: int | None = None) -> dict:
    """Every school of ``plan`` (or the ``only``-th) added and filled, ``workers`` at a time;
    the times it took."""
    from bookcorner.central import db
    from bookcorner.central.schools import Schools

    root = db.Store(url, pool_size=1)
    try:
        root.migrate()
        Schools(root).ensure_registry()  # (before the workers, which then only read it)
    finally:
        root.dispose()
    jobs = [(url, n, pupils, loans, years) for n, (pupils, loans) in enumerate(plan) if only in (None, n)]
    started = time.perf_counter()
    done: list[dict] = []
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for result in pool.imap_unordered(_build_one, jobs):
            done.append(result)
            if len(done) % 25 == 0 or len(done) == len(jobs):
                print(f"  {len(done)}/{len(jobs)} schools built ({time.perf_counter() - started:.0f} s)",
                      file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    adds = [r["add_s"] for r in done]
    return {"build_s": round(elapsed, 1), "workers": workers,
            "add_school_p50_s": round(percentile(adds, 0.5), 3), "add_school_p95_s": round(percentile(adds, 0.95), 3),
            "add_school_total_s": round(sum(adds), 1), "fill_total_s": round(sum(r["fill_s"] for r in done), 1)}


def _render(template: str, **values) -> str:
    from bookcorner import i18n
    from bookcorner.central.dashboard import district, registers, reports
    from bookcorner.central.dashboard.site import PREFIX, env

    who = SimpleNamespace(name="bench", csrf="x" * 43)
    with i18n.in_language("en"):
        return env.get_template(template).render(
            prefix=PREFIX, language="en", path="/dashboard", local=lambda t: t.astimezone(ZONE) if t else None,
            who=who, **reports.GLOBALS, **registers.GLOBALS, **district.GLOBALS, **values)


def overdue_page(store, today: date) -> Callable[[], str]:
    """The overdue register's page, as its route makes it (the slips by class, the school's name)."""
    from bookcorner.central.services import registers

    def run() -> str:
        by_class = registers.overdue(store, today)
        return _render("registers_overdue.html", by_class=by_class, today=today, table=registers.overdue_table(by_class),
                       file=today.isoformat(), school_name=registers.school_name(store), register="overdue", query="")
    return run


def count_district(schools) -> dict:
    """What the server's job does at start (``district.FiguresKeeper``, one a school): every
    school's figures counted and kept for the district's page; how long it took."""
    from bookcorner.central.services import district

    each = []
    for store in schools.stores():
        started = time.perf_counter()
        district.FiguresKeeper(store, schools).once()
        each.append(time.perf_counter() - started)
    return {"count_district_s": round(sum(each), 1), "count_school_p50_ms": round(percentile(each, 0.5) * 1000, 1),
            "count_school_p95_ms": round(percentile(each, 0.95) * 1000, 1)}


def district_page(schools, today: date) -> Callable[[], str]:
    """The district's page as its route makes it: the figures the job kept."""
    from bookcorner.central.services import district
    from bookcorner.central.services.tables import FORMATS

    def run() -> str:
        return _render("district.html", seen=district.overview(schools, today, ZONE), formats=FORMATS)
    return run


def district_live(schools, today: date) -> Callable[[], object]:
    """Every school's figures counted live, as the page did before the job kept them (and still
    does for a school whose kept figures are missing or stale): the worst case, for the comparison."""
    from bookcorner.central import db
    from bookcorner.central.services import district

    def run() -> object:
        listed = schools.listed()
        return district.counted(listed, [schools.reports(school.slug) for school in listed], today, ZONE, db.now())
    return run


def part_c(url: str, args, alone_url: str | None = None) -> dict:
    """Build the district in ``url`` (a fresh database), then time the pages; with ``alone_url``
    (another fresh database) the largest school is built there too, alone, and its pages are
    timed side by side with the district's: what the other 299 schools cost it."""
    from sqlalchemy import func, select

    from bookcorner.central import db
    from bookcorner.central.schools import Schools
    from bookcorner.central.zone import set_school_zone

    count, total = max(1, round(args.schools * args.scale)), max(1000, round(args.loans * args.scale))
    plan = sizes(count, total)
    print(f"\n== (c) report pages: {count} schools, {total:,} loans over {args.years} school years, "
          f"{sum(p for p, _l in plan):,} pupils ==", file=sys.stderr, flush=True)
    built = build_district(url, plan, args.years, args.workers)
    print(f"  built in {built['build_s']:.0f} s with {args.workers} workers: Schools.add p50 "
          f"{built['add_school_p50_s']:.2f} s, p95 {built['add_school_p95_s']:.2f} s per school "
          f"({built['add_school_total_s']:.0f} s summed), filling {built['fill_total_s']:.0f} s summed",
          file=sys.stderr, flush=True)
    by_size = sorted(range(count), key=lambda n: plan[n][1])
    sample = {"smallest": by_size[0], "median": by_size[len(by_size) // 2], "largest": by_size[-1]}
    if alone_url:
        build_district(alone_url, plan, args.years, 1, only=sample["largest"])
    root = db.Store(url, pool_size=4)
    schools = Schools(root)
    lone = Schools(db.Store(alone_url, pool_size=2)) if alone_url else None
    try:
        started = time.perf_counter()  # what every command and the server's start do: each school brought up to date
        schools.migrate_all()
        built["migrate_all_at_head_s"] = round(time.perf_counter() - started, 1)
        print(f"  every school's migrations checked (at head): {built['migrate_all_at_head_s']:.1f} s",
              file=sys.stderr, flush=True)
        stored = 0
        for n in range(count):
            with schools.store(slug(n)).reading() as conn:
                stored += conn.execute(select(func.count()).select_from(db.loans)).scalar_one()
        assert stored == total, (stored, total)
        today = datetime.now(ZONE).date()
        gc.collect()
        work: dict[str, Callable[[], object]] = {"baseline_count": baseline(schools.reports(slug(sample["largest"])))}
        for size, n in sample.items():
            store = schools.reports(slug(n))
            for page, run in {**school_pages(store, ZONE, today), "overdue": overdue_page(store, today)}.items():
                work[f"{size}/{page}"] = run
        if lone is not None:  # the largest school on a server of its own
            store = lone.reports(slug(sample["largest"]))
            for page, run in {**school_pages(store, ZONE, today), "overdue": overdue_page(store, today)}.items():
                work[f"largest_alone/{page}"] = run
        set_school_zone(root, ZONE.key, "bench")  # (the district's zone: the job counts each school's day in it)
        built.update(count_district(schools))
        print(f"  the district's figures counted for its page (the job's round at start): "
              f"{built['count_district_s']:.1f} s, a school p50 {built['count_school_p50_ms']:.0f} ms, "
              f"p95 {built['count_school_p95_ms']:.0f} ms", file=sys.stderr, flush=True)
        work["district/overview"] = district_page(schools, today)
        work["district/all_live"] = district_live(schools, today)
        figures = timed(work, args.runs)
    finally:
        schools.dispose()
        root.dispose()
        if lone is not None:
            lone.dispose()
            lone.root.dispose()
    floor = figures["baseline_count"]["p50_ms"] or 0.01
    print(f"  {'page':<26} {'p50 ms':>9} {'p95 ms':>9} {'p50/baseline':>13} {'CPU p50 ms':>11}", file=sys.stderr)
    for page, figure in figures.items():
        figure["p50_over_baseline"] = round(figure["p50_ms"] / floor, 2)
        print(f"  {page:<26} {figure['p50_ms']:9.2f} {figure['p95_ms']:9.2f} {figure['p50_ms'] / floor:12.2f}x "
              f"{figure['cpu_p50_ms']:11.2f}", file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"  (load average {load:.1f} on {os.cpu_count()} CPUs)", file=sys.stderr)
    alone: dict[str, float] = {}
    if lone is not None:
        alone = {page: round(figures[f"largest/{page}"]["p50_ms"] / (figures[f"largest_alone/{page}"]["p50_ms"] or 0.01), 2)
                 for page in PAGES}
        print("  the largest school's pages in the district / on a server of its own (p50): " + ", ".join(
            f"{page} {ratio:.2f}x" for page, ratio in alone.items()), file=sys.stderr)
    schools_seen = {size: {"slug": slug(n), "pupils": plan[n][0], "loans": plan[n][1]} for size, n in sample.items()}
    return {"schools": count, "loans": total, "pupils": sum(p for p, _l in plan), "years": args.years,
            "target_ms": TARGET_MS, **built, "sampled": schools_seen, "load_average": round(load, 1),
            "pages": figures, "largest_in_district_over_alone_p50": alone}


def verdicts(result: dict) -> list[tuple[str, bool]]:
    pages = result.get("pages", {})
    return [(f"postgresql {page} p95 under {TARGET_MS:.0f} ms ({pages[page]['p95_ms']:.0f} ms)",
             pages[page]["p95_ms"] < TARGET_MS)
            for page in pages if page.partition("/")[0] in ("smallest", "median", "largest", "district")
            and page.rpartition("/")[2] in (*PAGES, "overview")]
