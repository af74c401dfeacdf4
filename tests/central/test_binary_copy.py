"""``db.bulk_insert`` copies the push's tables (events, event_ids, loans) to PostgreSQL in
binary, with the types the program's table declarations give: they must be the types the
migrations made, or COPY refuses the rows (a binary int4 is no bigint). And the rows read
back are the rows written, times, dates, NULLs and all."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from bookcorner.central import db
from tests.central.harness import postgres_database, postgres_problem

pytestmark = pytest.mark.skipif(postgres_problem() is not None,
                                reason=f"PostgreSQL tests skipped: {postgres_problem()}")


@pytest.fixture
def store():
    with postgres_database() as url:
        s = db.Store(url, pool_size=1)
        s.migrate()
        yield s
        s.dispose()


def test_the_binary_types_are_the_migrated_columns_types(store):
    with store.writing() as conn:
        for table in (db.events, db.event_ids, db.loans):
            types = db._binary_types(conn, table)
            assert types is not None, table.name
            migrated = conn.execute(text(
                "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"), {"t": table.name})
            declared = {c.name: {"text": ("text", "varchar")}.get(kind, (kind,))
                        for c, kind in zip(table.columns, types, strict=True)}
            found = dict(migrated.all())
            assert set(found) == set(declared), table.name
            for name, typname in found.items():
                assert typname in declared[name], (table.name, name, typname, declared[name])


def test_rows_copied_in_binary_read_back_as_written(store):
    at = datetime(2026, 12, 4, 2, 3, 4, 567891, tzinfo=UTC)
    east = at.astimezone(timezone(timedelta(hours=8)))
    events = [("e-1", "k-1", 2**40, "boot:1", 2**62, "2026-12-04T10:03:04+08:00", True, "student:S1",
               "loan.checked_out", '{"item_id": "B1", "note": "tab\\there, 书"}', at, east, "corrected", None, at,
               "applied_with_warning", None, '["clock_not_synced"]', "b-1", "push", None),
              ("e-2", "k-1", 3, "boot:1", 0, "x" * 40, False, "a", "loan.checked_in", "{}", at, at, "synced", at,
               None, "needs_review", "not_on_loan", None, "b-1", "import", "inc-1")]
    loans = [("L1", "B1", None, None, "k-1", east, date(2026, 12, 18), None, 0, None),
             ("L2", "B2", "P2", "3A", "k-1", at, date(2027, 1, 2), at, 2**31 - 1, at)]
    with store.writing() as conn:
        db.record_event_ids(conn, events)
        db.bulk_insert(conn, db.events, events)
        db.bulk_insert(conn, db.loans, loans)
    with store.reading() as conn:
        names = ", ".join(c.name for c in db.events.columns)
        assert [tuple(r) for r in conn.exec_driver_sql(f"SELECT {names} FROM events ORDER BY event_id")] == events
        assert [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM event_ids ORDER BY event_id")] == \
            [(e[0], e[1], e[2], e[10]) for e in events]
        names = ", ".join(c.name for c in db.loans.columns)
        assert [tuple(r) for r in conn.exec_driver_sql(f"SELECT {names} FROM loans ORDER BY loan_id")] == loans
