"""Time partitions of the loans and events tables on PostgreSQL (issue 15): one partition per
school term. ``loans`` by ``out_at`` (a term report reads one partition), ``events`` by
``received_at`` (a push writes only the current term's partition; exactly-once by event id is kept
by ``event_ids``, see ``central.db``).

A Chinese school year has two terms: autumn (September to January) and spring (February to July).
The partitions are cut at 1 February and 1 August, so a term report's period lies in one partition
and PostgreSQL prunes the others. A ``<table>_default`` partition catches any row outside the
partitions made so far: nothing is lost, :func:`ensure_partitions` logs it and ``doctor`` shows it.

Every name here is unqualified, so the upkeep works in whichever schema ``search_path`` selects
(one per school when a central serves several). SQLite is never partitioned.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bookcorner.central.db import Store, now
from bookcorner.central.jobs import PeriodicJob

log = logging.getLogger(__name__)

#: the tables partitioned by time, and their partition key
PARTITIONED = {"loans": "out_at", "events": "received_at"}
#: the first month of each term: spring (February) and autumn (August, before the school year)
TERM_MONTHS = (2, 8)


def term_start(moment: datetime) -> datetime:
    """The start (UTC midnight, 1 February or 1 August) of the term partition holding ``moment``
    (an aware time in any zone: PostgreSQL hands times back in the session's zone, which on a
    school's server may well be Asia/Shanghai, eight hours past UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    year, month = moment.year, moment.month
    if month >= TERM_MONTHS[1]:
        return datetime(year, TERM_MONTHS[1], 1, tzinfo=UTC)
    if month >= TERM_MONTHS[0]:
        return datetime(year, TERM_MONTHS[0], 1, tzinfo=UTC)
    return datetime(year - 1, TERM_MONTHS[1], 1, tzinfo=UTC)


def next_term(start: datetime) -> datetime:
    if start.month == TERM_MONTHS[0]:
        return start.replace(month=TERM_MONTHS[1])
    return start.replace(year=start.year + 1, month=TERM_MONTHS[0])


def partition_name(table: str, start: datetime) -> str:
    term = "spring" if start.month == TERM_MONTHS[0] else "autumn"
    return f"{table}_{start.year}_{term}"


def is_partitioned(conn: Connection, table: str) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t))"
    ), {"t": table}).scalar())


def ensure_partitions(conn: Connection, now: datetime, *, since: datetime | None = None,
                      terms_ahead: int = 2, tables: tuple[str, ...] = tuple(PARTITIONED)) -> list[str]:
    """Create the term partitions from ``since`` (default: now's term) to ``terms_ahead`` terms after
    now's, those missing; returns the names created. Called at server start and daily, never on the
    push path. Rows already sitting in the default partition for a term are left there (a partition
    cannot be made over them) and logged."""
    created: list[str] = []
    for table in tables:
        key = PARTITIONED[table]
        if not is_partitioned(conn, table):
            continue
        start = term_start(since or now)
        last = term_start(now)
        for _ in range(terms_ahead):
            last = next_term(last)
        while start <= last:
            end = next_term(start)
            name = partition_name(table, start)
            exists = conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar()
            if not exists:
                stray = conn.execute(text(
                    f"SELECT count(*) FROM {table}_default WHERE {key} >= :a AND {key} < :b"
                ), {"a": start, "b": end}).scalar()
                if stray:
                    log.warning("%s: %d rows of %s are in %s_default; partition %s not made",
                                table, stray, start.date(), table, name)
                else:
                    conn.execute(text(
                        f"CREATE TABLE {name} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                    ))
                    created.append(name)
            start = end
    return created


def default_rows(conn: Connection) -> dict[str, int]:
    """Rows that fell outside every term partition (in ``<table>_default``), by table."""
    found: dict[str, int] = {}
    for table in PARTITIONED:
        if is_partitioned(conn, table):
            found[table] = int(conn.execute(text(f"SELECT count(*) FROM {table}_default")).scalar() or 0)
    return found


def adopt_default_rows(conn: Connection, now: datetime) -> dict[str, int]:
    """Move the rows sitting in each ``<table>_default`` into their own term partitions, made for
    them (``bookcorner central partitions``; old loans imported into a new database land there).
    In one transaction: each term's rows are moved into a new table, which is then attached as
    that term's partition; nothing is lost or copied twice. Returns the rows moved, by table."""
    moved: dict[str, int] = {}
    for table, key in PARTITIONED.items():
        if not is_partitioned(conn, table):
            continue
        ensure_partitions(conn, now, tables=(table,))
        terms = sorted({term_start(at) for at in conn.execute(text(
            f"SELECT DISTINCT date_trunc('month', {key} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM {table}_default"
        )).scalars()})
        for start in terms:
            end, name = next_term(start), partition_name(table, start)
            conn.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
            count = conn.execute(text(
                f"WITH gone AS (DELETE FROM {table}_default WHERE {key} >= :a AND {key} < :b RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM gone"), {"a": start, "b": end}).rowcount
            conn.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                              f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"))
            moved[table] = moved.get(table, 0) + count
            log.info("%s: %d rows moved from %s_default into %s", table, count, table, name)
    return moved


def partition_table(conn: Connection, table: str, key: str, primary_key: str,
                    indexes: dict[str, str], now: datetime) -> None:
    """Turn ``table`` into a RANGE partitioned table in place: the rows are copied into term
    partitions made from the oldest row to two terms ahead; the primary key gains the partition key
    (PostgreSQL requires it), the indexes are made again on the partitioned table."""
    old = f"{table}_unpartitioned"
    conn.execute(text(f"ALTER TABLE {table} RENAME TO {old}"))
    conn.execute(text(f"ALTER TABLE {old} RENAME CONSTRAINT {table}_pkey TO {old}_pkey"))
    for name in indexes:
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    conn.execute(text(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE ({key})"
    ))
    conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({primary_key}, {key})"))
    conn.execute(text(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT"))
    oldest = conn.execute(text(f"SELECT min({key}) FROM {old}")).scalar()
    ensure_partitions(conn, now, since=min(oldest, now) if oldest else now, tables=(table,))
    conn.execute(text(f"INSERT INTO {table} SELECT * FROM {old}"))
    conn.execute(text(f"DROP TABLE {old}"))
    for name, columns in indexes.items():
        conn.execute(text(f"CREATE INDEX {name} ON {table} ({columns})"))


def unpartition_table(conn: Connection, table: str, primary_key: str, indexes: dict[str, str]) -> None:
    """Undo :func:`partition_table`: one plain table with every row, its own primary key and indexes."""
    conn.execute(text(f"CREATE TABLE {table}_flat (LIKE {table} INCLUDING DEFAULTS)"))
    conn.execute(text(f"INSERT INTO {table}_flat SELECT * FROM {table}"))
    conn.execute(text(f"DROP TABLE {table} CASCADE"))
    conn.execute(text(f"ALTER TABLE {table}_flat RENAME TO {table}"))
    conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({primary_key})"))
    for name, columns in indexes.items():
        conn.execute(text(f"CREATE INDEX {name} ON {table} ({columns})"))


class PartitionKeeper(PeriodicJob):
    """Makes the coming terms' partitions at server start and daily after, and logs rows that
    landed in a default partition (outside every term made so far)."""

    name = "bookcorner-partitions"

    def __init__(self, store: Store, every: float = 86400.0) -> None:
        super().__init__(every)
        self.store = store

    def round(self) -> float:
        if self.store.sqlite:
            return self.every
        with self.store.writing() as conn:
            created = ensure_partitions(conn, now())
            stray = {table: n for table, n in default_rows(conn).items() if n}
        if created:
            log.info("partitions made ahead: %s", ", ".join(created))
        if stray:
            log.warning("rows outside every term partition (in the default partitions): %s", stray)
        return self.every
