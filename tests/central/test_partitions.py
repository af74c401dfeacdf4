"""The loans table partitioned by school term on PostgreSQL (issue 15): a populated database
migrates in place, a term's query reads one partition, the upkeep makes the coming terms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text

from bookcorner.central import db, partitions
from bookcorner.central.migrations import upgrade
from tests.central.harness import partitions_of, postgres_database, postgres_problem

pytestmark = pytest.mark.skipif(postgres_problem() is not None,
                                reason=f"PostgreSQL tests skipped: {postgres_problem()}")

NOW = datetime.now(UTC)


def some_loans(years: int) -> list[dict]:
    """A loan every 5 days for ``years`` school years back from now."""
    rows = []
    for n in range(years * 73):
        out_at = NOW - timedelta(days=5 * n, hours=n % 7)
        rows.append({"loan_id": f"L{n}", "item_id": f"I{n % 50}", "patron_id": f"P{n % 30}",
                     "class_name": f"{1 + n % 6}A", "kiosk_id": "k1", "out_at": out_at,
                     "due": (out_at + timedelta(days=14)).date(), "renewals": 0,
                     "returned_at": None if n < 5 else out_at + timedelta(days=7)})
    return rows


@pytest.fixture
def store():
    with postgres_database() as url:
        opened = db.Store(url, pool_size=2)
        yield opened
        opened.dispose()


def test_a_populated_database_migrates_in_place_and_keeps_every_loan(store):
    rows = some_loans(3)
    with store.writing() as conn:
        upgrade(conn, "0010")
        conn.execute(insert(db.loans), rows)
    with store.writing() as conn:
        upgrade(conn)
    with store.reading() as conn:
        assert partitions.is_partitioned(conn, "loans")
        got = {r.loan_id: r for r in conn.execute(select(db.loans))}
        names = partitions_of(conn, "loans")
        assert partitions.default_rows(conn)["loans"] == 0
    assert set(got) == {r["loan_id"] for r in rows}
    for row in rows:
        assert got[row["loan_id"]].out_at == row["out_at"]
        assert got[row["loan_id"]].returned_at == row["returned_at"]
    # from the oldest loan's term to two terms ahead, and the default
    oldest = partitions.term_start(min(r["out_at"] for r in rows))
    assert partitions.partition_name("loans", oldest) in names
    assert "loans_default" in names
    assert len(names) >= 3 * 2 + 1
    # the primary key still refuses a second copy of a loan
    with pytest.raises(db.IntegrityError), store.writing() as conn:
        conn.execute(insert(db.loans), [rows[0]])


def test_a_term_query_reads_one_partition(store):
    with store.writing() as conn:
        upgrade(conn)
        # a new database has partitions from this term on: the history's terms are made first
        partitions.ensure_partitions(conn, NOW, since=NOW - timedelta(days=3 * 365))
        conn.execute(insert(db.loans), some_loans(3))
        conn.execute(text("ANALYZE loans"))
        assert partitions.default_rows(conn)["loans"] == 0
    start = partitions.term_start(NOW - timedelta(days=365))
    end = partitions.next_term(start)
    with store.reading() as conn:
        plan = "\n".join(conn.execute(text(
            "EXPLAIN SELECT class_name, count(*) FROM loans WHERE out_at >= :a AND out_at < :b "
            "GROUP BY class_name"), {"a": start, "b": end}).scalars())
        names = partitions_of(conn, "loans")
    touched = {name for name in names if name in plan}
    assert touched == {partitions.partition_name("loans", start)}, plan


def test_upkeep_makes_coming_terms_and_reports_strays(store, caplog):
    with store.writing() as conn:
        upgrade(conn)
        far = NOW + timedelta(days=5 * 365)
        conn.execute(insert(db.loans), [{"loan_id": "future", "item_id": "I", "patron_id": None,
                                         "class_name": None, "kiosk_id": "k1", "out_at": far,
                                         "due": date(far.year, far.month, far.day), "renewals": 0}])
        assert partitions.default_rows(conn)["loans"] == 1
        made = partitions.ensure_partitions(conn, far, terms_ahead=1)
    # the term holding the stray row cannot be made over it; the one after it is
    assert partitions.partition_name("loans", partitions.term_start(far)) not in made
    assert partitions.partition_name("loans", partitions.next_term(partitions.term_start(far))) in made
    with store.reading() as conn:
        assert conn.execute(select(db.loans.c.loan_id).where(db.loans.c.out_at == far)).scalar() == "future"
    assert "rows of" in caplog.text
