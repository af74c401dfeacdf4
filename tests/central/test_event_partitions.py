"""The events table partitioned by school term on PostgreSQL (issue 15): a populated database
migrates in place keeping every event, exactly-once by event id holds across partitions through a
real push, the push path writes only the current term's partition (and ``event_ids``), and a
lookup by id reads only the partition holding the event."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, insert, select, text

from bookcorner.central import db, partitions
from bookcorner.central.ingest import Batch, ingest
from bookcorner.central.migrations import upgrade
from bookcorner.circulation.outcomes import Outcome, ReviewReason
from bookcorner.protocol.messages import ClockReading, WireEvent
from tests.central.harness import CentralServer, partitions_of, postgres_database, postgres_problem, store_events
from tests.central.pushes import BOOT, KioskClient, checkin, checkout

pytestmark = pytest.mark.skipif(postgres_problem() is not None,
                                reason=f"PostgreSQL tests skipped: {postgres_problem()}")

NOW = datetime.now(UTC)


def history(years: int, kiosk_id: str = "k-old", every_days: int = 3) -> list[dict]:
    """An event every ``every_days`` days for ``years`` years back from now, each received an
    hour after it happened (so the rows fall in every term's partition); numbered from the oldest."""
    rows = []
    count = years * 365 // every_days
    for n in range(count):
        at = NOW - timedelta(days=every_days * n, hours=1 + n % 5)
        rows.append({"event_id": f"{kiosk_id}-e{n}", "kiosk_id": kiosk_id, "seq": count - n, "boot_id": "b",
                     "monotonic_ns": n, "wall_time": at.isoformat(), "clock_synced": True, "actor": "S01",
                     "type": "loan.checked_out",
                     "payload": json.dumps({"item_id": f"I{n}", "patron_id": "S01", "due": "2026-01-01"}),
                     "received_at": at + timedelta(hours=1), "time": at, "time_quality": "synced",
                     "outcome": "applied", "batch_id": f"b{n // 50}", "source": "push"})
    return rows


@pytest.fixture
def store():
    with postgres_database() as url:
        opened = db.Store(url, pool_size=2)
        yield opened
        opened.dispose()


def test_a_0011_database_migrates_in_place_and_keeps_every_event(store):
    rows = history(3)
    with store.writing() as conn:
        upgrade(conn, "0011")
        conn.execute(insert(db.events), rows)
    with store.writing() as conn:
        upgrade(conn)
    with store.reading() as conn:
        assert partitions.is_partitioned(conn, "events")
        got = {r.event_id: r._asdict() for r in conn.execute(select(db.events))}
        ids = {r.event_id: r for r in conn.execute(select(db.event_ids))}
        names = partitions_of(conn, "events")
        assert partitions.default_rows(conn) == {"loans": 0, "events": 0}
        # each term's events sit in that term's partition
        per_partition = dict(conn.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1")).all())
    assert len(got) == len(rows) == len(ids)
    for row in rows:
        assert got[row["event_id"]] == {**row, "time_lower": None, "time_upper": None, "reason": None,
                                        "warnings": None, "incarnation": None}
        kept = ids[row["event_id"]]
        assert (kept.kiosk_id, kept.seq, kept.received_at) == (row["kiosk_id"], row["seq"], row["received_at"])
    oldest = partitions.term_start(min(r["received_at"] for r in rows))
    assert partitions.partition_name("events", oldest) in names and "events_default" in names
    assert len(per_partition) >= 6 and sum(per_partition.values()) == len(rows)
    for name, count in per_partition.items():
        assert name != "events_default" and count > 0
    # event_ids' primary key refuses a second copy of an id, whatever its partition
    with pytest.raises(db.IntegrityError), store.writing() as conn:
        conn.execute(insert(db.event_ids), [{"event_id": rows[-1]["event_id"], "kiosk_id": "k-other", "seq": 1,
                                             "received_at": NOW}])
    # and the migration goes back down with every row
    with store.writing() as conn:
        upgrade_down(conn, "0011")
        assert not partitions.is_partitioned(conn, "events")
        assert conn.execute(select(func.count()).select_from(db.events)).scalar_one() == len(rows)


def upgrade_down(conn, revision: str) -> None:
    from alembic import command

    from bookcorner.central.migrations import config

    command.downgrade(config(conn), revision)


def test_a_duplicate_id_across_partitions_is_recognised_through_a_real_push(tmp_path):
    old = history(3, kiosk_id="k-hist")
    with postgres_database() as url:
        before = db.Store(url, pool_size=1)
        with before.writing() as conn:  # a 0011 database with three years of events
            upgrade(conn, "0011")
            conn.execute(insert(db.events), old)
        before.dispose()
        server = CentralServer(url, tmp_path / "server.log").start()  # migrates to 0012 in place
        try:
            token = server.add_kiosk("k-hist")
            kiosk = KioskClient(server.url, "k-hist", token)
            # the kiosk sends again its first event (stored three years ago, in the oldest partition)
            # and a new one: the first is a duplicate, the second applied
            oldest = old[-1]
            again = WireEvent(event_id=oldest["event_id"], kiosk_id="k-hist", seq=1, boot_id=BOOT, monotonic_ns=10**9,
                              wall_time=oldest["wall_time"], clock_synced=True, actor="S01", type=oldest["type"],
                              payload=json.loads(oldest["payload"]))
            kiosk.seq = 1
            fresh = kiosk.event(*checkout("BOOK-NEW", "S01"))
            answer = kiosk.push([again, fresh])
            assert answer.status_code == 200, answer.text
            outcomes = [(r["event_id"], r["outcome"]) for r in answer.json()["results"]]
            assert outcomes == [(again.event_id, Outcome.DUPLICATE), (fresh.event_id, Outcome.APPLIED)]
            # another kiosk sending an id the server holds in an old partition: kept for review, not stored
            other = KioskClient(server.url, "k-other", server.add_kiosk("k-other"))
            clash = other.event(*checkout("BOOK-X", "S02"))
            clash = msgspec.structs.replace(clash, event_id=old[len(old) // 2]["event_id"])
            answer = other.push([clash])
            assert answer.status_code == 200, answer.text
            result = answer.json()["results"][0]
            assert (result["outcome"], result["reason"]) == (Outcome.NEEDS_REVIEW, ReviewReason.EVENT_ID_CONFLICT)
            with server.store.reading() as conn:
                for event_id, kiosk_id in ((again.event_id, "k-hist"), (clash.event_id, "k-hist"),
                                           (fresh.event_id, "k-hist")):
                    stored = conn.execute(select(db.events.c.kiosk_id).where(db.events.c.event_id == event_id)).all()
                    assert stored == [(kiosk_id,)]
                    assert conn.execute(select(func.count()).select_from(db.event_ids)
                                        .where(db.event_ids.c.event_id == event_id)).scalar_one() == 1
                assert conn.execute(select(func.count()).select_from(db.events)).scalar_one() == len(old) + 1
                home = conn.execute(text("SELECT tableoid::regclass::text FROM events WHERE event_id = :e"),
                                    {"e": fresh.event_id}).scalar_one()
            assert home == partitions.partition_name("events", partitions.term_start(datetime.now(UTC)))
        finally:
            server.stop()


class Watched(db.Store):
    """A store that notes what each ingest transaction read and wrote, table by table:
    PostgreSQL's own counters of the backend (``pg_stat_xact_user_tables``, which also hold
    earlier transactions' counts not yet flushed) at its start and just before it commits."""

    touched: dict[str, tuple[int, ...]]

    @contextmanager
    def ingesting(self, *args, **kwargs):
        with super().ingesting(*args, **kwargs) as conn:
            before = self.counters(conn)
            yield conn
            after = self.counters(conn)
            self.touched = {}
            for name, counts in after.items():
                done = tuple(a - b for a, b in zip(counts, before.get(name, (0, 0, 0)), strict=True))
                if any(done):
                    self.touched[name] = done

    @staticmethod
    def counters(conn) -> dict[str, tuple[int, ...]]:
        """(scans, rows read, rows written) by table."""
        return {name: (scans, reads, writes) for name, scans, reads, writes in conn.execute(text(
            "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0), "
            "coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0), n_tup_ins + n_tup_upd + n_tup_del "
            "FROM pg_stat_xact_user_tables"))}


def a_batch(kiosk_id: str, first_seq: int, ids: list[str], kind: tuple[str, dict] | None = None) -> Batch:
    """Events under ``ids``: each a damaged book of its own, or each ``kind`` (type, payload)."""
    events = [WireEvent(event_id=event_id, kiosk_id=kiosk_id, seq=first_seq + n, boot_id=BOOT,
                        monotonic_ns=10**9 + first_seq + n, wall_time=NOW.isoformat(), clock_synced=True,
                        actor="S01", type=kind[0] if kind else "item.damaged",
                        payload=kind[1] if kind else {"item_id": f"I-{event_id}", "note": "torn"})
              for n, event_id in enumerate(ids)]
    return Batch(kiosk_id=kiosk_id, batch_id=str(uuid.uuid4()), from_seq=first_seq, to_seq=first_seq + len(ids) - 1,
                 clock=ClockReading("push-boot", 10**12, NOW.isoformat(), True), events=events)


def test_the_push_path_writes_only_the_current_partition_and_event_ids():
    with postgres_database() as url:
        store = Watched(url, pool_size=2)
        try:
            with store.writing() as conn:
                upgrade(conn)
                partitions.ensure_partitions(conn, NOW, since=NOW - timedelta(days=3 * 365))
                store_events(conn, history(3))
                conn.execute(text("ANALYZE"))
            from bookcorner.central.kiosks import add_kiosk

            add_kiosk(store, "k-new")
            current = partitions.partition_name("events", partitions.term_start(NOW))
            # a fresh batch: the optimistic path, no lookup of its ids
            reply = ingest(store, a_batch("k-new", 1, [f"new-{n}" for n in range(20)]), NOW)
            assert {r.outcome for r in reply.results} == {Outcome.APPLIED}
            touched = {name for name in store.touched if name.startswith("events")}
            assert touched == {current}, store.touched
            assert store.touched["event_ids"][2] == 20
            # a batch holding an id stored three years ago: event_ids' key trips, the careful path
            # looks the ids up in event_ids, and still no other partition of events is read
            reply = ingest(store, a_batch("k-new", 21, ["k-old-e300", "new-20"]), NOW)
            assert [r.outcome for r in reply.results] == [Outcome.NEEDS_REVIEW, Outcome.APPLIED]
            touched = {name for name in store.touched if name.startswith("events")}
            assert touched == {current}, store.touched
            # the careful path's lookup, as planned: event_ids alone
            with store.reading() as conn:
                t = db.ids_table(conn).c
                query = select(t.event_id, t.kiosk_id, t.seq).where(db.key_in(conn, t.event_id, ["k-old-e300", "x"]))
                plan = "\n".join(conn.execute(text("EXPLAIN " + str(query.compile(
                    conn, compile_kwargs={"literal_binds": True})))).scalars())
            assert "event_ids" in plan and "events_" not in plan, plan
        finally:
            store.dispose()


def test_a_return_updates_the_loan_in_its_own_partition_only():
    """The loan a return closes is updated where its out_at puts it (not looked for in every
    term's partition); a loan row whose out_at is not the one replay knows is still found."""
    with postgres_database() as url:
        store = Watched(url, pool_size=2)
        try:
            with store.writing() as conn:
                upgrade(conn)
                partitions.ensure_partitions(conn, NOW, since=NOW - timedelta(days=3 * 365))
                conn.execute(text(  # three years of a school's loans (150,000: every 10 minutes)
                    "INSERT INTO loans SELECT 'L' || g, 'I' || (g % 9000), 'P' || (g % 900), '3A', 'k-old', "
                    "now() - make_interval(mins => 10 * g) - interval '1 day', current_date - g / 144, "
                    "now() - make_interval(mins => 10 * g), 0, NULL FROM generate_series(1, 150000) g"))
                conn.execute(text("ANALYZE"))
            from bookcorner.central.kiosks import add_kiosk

            add_kiosk(store, "k-loans")
            current = partitions.partition_name("loans", partitions.term_start(NOW))
            ingest(store, a_batch("k-loans", 1, ["out-1", "out-2"][:1], checkout("BOOK-1", "S01")), NOW)
            ingest(store, a_batch("k-loans", 2, ["out-2"], checkout("BOOK-2", "S02")), NOW)
            with store.writing() as conn:  # as if written by older code: out_at a little off
                conn.execute(text("UPDATE loans SET out_at = out_at - interval '1 second' WHERE loan_id = 'out-2'"))
            later = NOW + timedelta(minutes=5)
            reply = ingest(store, a_batch("k-loans", 3, ["back-1"], checkin("BOOK-1")), later)
            assert [r.outcome for r in reply.results] == [Outcome.APPLIED]
            assert {name for name in store.touched if name.startswith("loans")} == {current}, store.touched
            assert store.touched[current][2] == 1
            # the row whose out_at is off is not where replay looks: found by its id alone, in any partition
            reply = ingest(store, a_batch("k-loans", 4, ["back-2"], checkin("BOOK-2")), later)
            assert [r.outcome for r in reply.results] == [Outcome.APPLIED]
            with store.reading() as conn:
                back = dict(conn.execute(select(db.loans.c.loan_id, db.loans.c.returned_at)).all())
            assert back["out-1"] is not None and back["out-2"] is not None, back
        finally:
            store.dispose()


def test_a_lookup_by_id_reads_only_the_partition_holding_the_event(store):
    rows = history(3)
    with store.writing() as conn:
        upgrade(conn)
        partitions.ensure_partitions(conn, NOW, since=NOW - timedelta(days=3 * 365))
        store_events(conn, rows)
        conn.execute(text("ANALYZE"))
    wanted = rows[200]  # about 600 days ago
    home = partitions.partition_name("events", partitions.term_start(wanted["received_at"]))
    with store.reading() as conn:
        query = select(db.events.c.payload).where(db.event_id_in(conn, [wanted["event_id"]]))
        assert conn.execute(query).scalar_one() == wanted["payload"]
        plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + str(query.compile(
            conn, compile_kwargs={"literal_binds": True})))).scalars().all()
    executed = {name for line in plan for name in event_partitions_in(line) if "never executed" not in line}
    assert executed == {home}, "\n".join(plan)


def event_partitions_in(line: str) -> list[str]:
    """The partitions of events a plan's line (or lines) scans."""
    return re.findall(r"\bon (events_\w+)", line)


def test_a_term_report_reads_one_partition(store):
    """The circulation report of a past term (loans by out_at) and the events received in it:
    one partition each."""
    with store.writing() as conn:
        upgrade(conn)
        partitions.ensure_partitions(conn, NOW, since=NOW - timedelta(days=3 * 365))
        store_events(conn, history(3))
        conn.execute(text("ANALYZE"))
    start = partitions.term_start(NOW - timedelta(days=365))
    end = partitions.next_term(start)
    with store.reading() as conn:
        plan = "\n".join(conn.execute(text(
            "EXPLAIN SELECT type, count(*) FROM events WHERE received_at >= :a AND received_at < :b GROUP BY type"),
            {"a": start, "b": end}).scalars())
    assert {name for name in event_partitions_in(plan)} == {partitions.partition_name("events", start)}, plan


ROOT = Path(__file__).resolve().parents[2]


def run(*words: str, tmp_path: Path, language: str = "en") -> subprocess.CompletedProcess:
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[kiosk]\nlanguage = "{language}"\ndata_dir = "{tmp_path / "data"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    return subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(config), *words], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def doctor_line(url: str, tmp_path: Path, language: str = "en") -> dict:
    done = run("doctor", "--json", "--user", "root", "--central-db", url, tmp_path=tmp_path, language=language)
    assert done.returncode in (0, 1), done.stderr
    [line] = [finding for finding in json.loads(done.stdout) if finding["check"] == "partitions"]
    return line


def test_doctor_shows_rows_in_a_default_partition_and_the_command_moves_them(store, tmp_path):
    """Old loans imported into a new database (partitions from this term on) land in the default
    partitions: doctor says so, with the fix; ``central partitions`` makes their terms and moves them."""
    old = history(2, kiosk_id="k-import", every_days=30)
    old = [row for row in old if row["received_at"] < partitions.term_start(NOW)]
    loans = [{"loan_id": row["event_id"], "item_id": f"I{n}", "patron_id": "S01", "class_name": "3A",
              "kiosk_id": "k-import", "out_at": row["time"], "due": row["time"].date(), "renewals": 0}
             for n, row in enumerate(old)]
    with store.writing() as conn:
        upgrade(conn)
        store_events(conn, old)
        conn.execute(insert(db.loans), loans)
    url = store.engine.url.render_as_string(hide_password=False)
    line = doctor_line(url, tmp_path)
    assert line["level"] == "warn"
    assert f"{len(loans)} loan(s) and {len(old)} event(s) sit in a default partition" in line["message"]
    assert "bookcorner central partitions" in line["fix"]
    chinese = doctor_line(url, tmp_path, language="zh_CN")
    assert str(len(loans)) in chinese["message"] and "默认分区" in chinese["message"], chinese
    done = run("central", "partitions", "--db", url, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{len(loans)} loan(s), {len(old)} event(s)" in done.stdout
    assert doctor_line(url, tmp_path)["level"] == "ok"
    with store.reading() as conn:
        assert partitions.default_rows(conn) == {"loans": 0, "events": 0}
        assert conn.execute(select(func.count()).select_from(db.events)).scalar_one() == len(old)
        assert conn.execute(select(func.count()).select_from(db.loans)).scalar_one() == len(loans)
        homes = dict(conn.execute(text("SELECT event_id, tableoid::regclass::text FROM events")).all())
    for row in old:
        assert homes[row["event_id"]] == partitions.partition_name("events", partitions.term_start(row["received_at"]))
    again = run("central", "partitions", "--db", url, tmp_path=tmp_path)
    assert again.returncode == 0 and "nothing to move" in again.stdout


def test_a_term_is_found_in_utc_whatever_zone_the_time_comes_in():
    """PostgreSQL returns times in the session's zone (Asia/Shanghai on many a school's server):
    the last evening of January in UTC is already 1 February there, and still the autumn term."""
    from zoneinfo import ZoneInfo

    late = datetime(2024, 1, 31, 20, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    assert (late.month, late.day) == (2, 1)
    assert partitions.term_start(late) == datetime(2023, 8, 1, tzinfo=UTC)
    assert partitions.term_start(datetime(2024, 2, 1, tzinfo=UTC)) == datetime(2024, 2, 1, tzinfo=UTC)
