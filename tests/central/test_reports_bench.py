"""bench.reports in small (2,000 loans), so that it cannot rot: the school it builds, and
the reports' figures over it checked against the loans it wrote (numbers, not timings)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import reports as bench
from bookcorner.central.db import Store
from bookcorner.central.services import reports
from tests.central.harness import BACKENDS, database


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_reports_count_what_the_bench_school_borrowed(backend, tmp_path):
    with database(backend, tmp_path) as url:
        store = Store(url, pool_size=2)
        try:
            store.migrate()
            school = bench.build(store, students=60, classes=6, loans=2000, years=2)
            start, end, name = reports.term_of(store, school.today)
            assert name is not None and start <= school.today
            report = reports.borrowing(store, start, end, bench.ZONE)
            work = bench.reports(store, bench.ZONE, school.today)
            pages = {page: work[page]() for page in ("index", "week", "term", "stars")}
        finally:
            store.dispose()
    inside = [(p, c) for p, c, out_at in school.loans if start <= out_at.astimezone(bench.ZONE).date() <= end]
    assert inside, "the bench school borrowed nothing this term"
    assert report.loans == len(inside)
    assert {c.class_name: c.loans for c in report.classes if c.loans} == dict(Counter(c for _p, c in inside))
    assert {s.patron_id: s.loans for s in report.students if s.loans} == dict(Counter(p for p, _c in inside if p))
    assert {c.class_name: c.size for c in report.classes} == dict(Counter(school.students.values()))
    stars = report.stars()
    assert stars[0].loans == max(Counter(p for p, _c in inside if p).values()) and stars[0].rank == 1
    assert all(f'data-patron="{s.patron_id}"' in pages["stars"] for s in stars)
    assert f'<strong id="total-loans">{report.loans}</strong>' in pages["term"]
    assert "<svg" in pages["week"] and "/reports/targets" in pages["index"]


def test_the_bench_prints_its_figures(tmp_path, capsys):
    assert bench.main(["--students", "30", "--classes", "3", "--loans", "2000", "--years", "1", "--runs", "2",
                       "--backends", "sqlite", "--dir", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    timed = figures["sqlite"]["reports"]
    assert figures["sqlite"]["loans"] == 2000
    assert set(timed) == {"baseline_count", "index", "week", "term", "last_term", "stars", "students.csv",
                           "students.xlsx"}
    assert all(f["runs"] == 2 and f["p95_ms"] >= f["p50_ms"] > 0 for f in timed.values())
