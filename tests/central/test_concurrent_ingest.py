"""Batches taken side by side (PostgreSQL: ``db.Store.ingesting`` locks a batch's kiosk and
books, not the whole server): four kiosks push at the same time through real HTTP to two
``bookcorner central`` processes on one PostgreSQL database. Two of them race over the same
books, one lending them and the other taking them back, in batches released together and
sent to different processes; another sends each of its batches to both processes at once
(a retry while the first request is still being served).

Shown: every event is stored exactly once; each race came out as if one batch went
wholly before the other (never a mix); and the books' states, the loans and every event's
outcome are those of replaying the same batches one at a time, in one process, in that
order, on a database of their own.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bookcorner.central import db, ingest
from bookcorner.central.kiosks import add_kiosk
from bookcorner.protocol.messages import PushRequest
from tests.central.harness import CentralServer, postgres_database, postgres_problem
from tests.central.pushes import KioskClient, checkin, checkout

ROUNDS = 6
BOOKS_PER_ROUND = 8


@pytest.fixture
def two_servers(tmp_path: Path):
    problem = postgres_problem()
    if problem:
        pytest.skip(f"concurrent ingest needs PostgreSQL (SQLite has one writer): {problem}")
    with postgres_database() as url:
        first = CentralServer(url, tmp_path / "server-1.log").start()  # (migrates the database)
        second = CentralServer(url, tmp_path / "server-2.log").start()
        try:
            yield first, second
        finally:
            second.stop()
            first.stop()


def _batch(request: PushRequest, received: datetime) -> ingest.Batch:
    return ingest.Batch(request.kiosk_id, request.batch_id, request.from_seq, request.to_seq, request.clock,
                        request.events, waiting=request.waiting, journal=request.journal)


def _state(store: db.Store) -> tuple[list, list, dict]:
    """What replay left: the books' states, the loans, each event's outcome (nothing that
    depends on when a batch arrived)."""
    s, loan, e = db.item_state.c, db.loans.c, db.events.c
    with store.reading() as conn:
        items = [tuple(r) for r in conn.execute(
            select(s.item_id, s.status, s.loan_id, s.patron_id, s.due, s.since, s.loan_kiosk, s.renewals,
                   s.changed_time, s.changed_kiosk, s.changed_seq).order_by(s.item_id))]
        loans = [tuple(r) for r in conn.execute(
            select(loan.loan_id, loan.item_id, loan.patron_id, loan.kiosk_id, loan.out_at, loan.due,
                   loan.returned_at, loan.renewals).order_by(loan.loan_id))]
        outcomes = {r.event_id: (r.kiosk_id, r.seq, r.outcome, r.reason, r.time)
                    for r in conn.execute(select(e.event_id, e.kiosk_id, e.seq, e.outcome, e.reason, e.time))}
    return items, loans, outcomes


def test_kiosks_pushing_at_once_to_two_processes_take_every_event_once_as_one_process_would(two_servers, tmp_path):
    first, second = two_servers
    # the single-process replay's own database, its kiosks made before any event is (their
    # credentials bound the events' times as the server's do)
    alone = db.Store(f"sqlite:///{tmp_path / 'alone.db'}", pool_size=2)
    alone.migrate()
    names = {role: f"{role}-{uuid.uuid4().hex[:6]}" for role in ("lender", "taker", "twice", "other")}
    kiosks = {}
    for role, kiosk_id in names.items():
        add_kiosk(alone, kiosk_id)
        kiosks[role] = KioskClient(first.url, kiosk_id, first.add_kiosk(kiosk_id))
    via = {"lender": first.url, "taker": second.url, "twice": first.url, "other": second.url}

    rounds: list[dict[str, PushRequest]] = []
    replies: list[dict[str, list]] = []
    for r in range(ROUNDS):
        books = [f"race-{r}-{n}" for n in range(BOOKS_PER_ROUND)]
        lender, taker, twice, other = (kiosks[k] for k in ("lender", "taker", "twice", "other"))
        # the lender's checkouts are made (and timed) before the taker's returns of the same books
        sent = {"lender": lender.request([lender.event(*checkout(b, f"S{n:02d}")) for n, b in enumerate(books)])}
        time.sleep(0.005)  # (the kiosks' clocks are read to the millisecond)
        sent["taker"] = taker.request([taker.event(*checkin(b)) for b in books])
        own = [f"{twice.kiosk_id}-{r}-{n}" for n in range(4)]
        sent["twice"] = twice.request([twice.event(*checkout(b, "S07")) for b in own]
                                      + [twice.event(*checkin(b)) for b in own[:2]])
        mine = f"{other.kiosk_id}-{r}"
        sent["other"] = other.request([other.event(*checkout(mine, "S09")), other.event(*checkin(mine))])
        jobs = [(role, via[role]) for role in sent] + [("twice", second.url)]  # "twice": to both at once
        answers: dict[str, list] = {role: [] for role in sent}
        go = threading.Barrier(len(jobs))

        def send(role: str, url: str) -> None:
            kiosk = kiosks[role]
            go.wait()
            answers[role].append(KioskClient(url, kiosk.kiosk_id, kiosk.token).push(sent[role]))

        threads = [threading.Thread(target=send, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for role, responses in answers.items():
            for response in responses:
                assert response.status_code == 200, (role, response.text)
        rounds.append(sent)
        replies.append({role: [response.json() for response in responses] for role, responses in answers.items()})

    # every event stored once, under its kiosk and number; every kiosk's mark at its last event
    store = first.store
    server_items, server_loans, server_outcomes = _state(store)
    sent_events = {e.event_id: (e.kiosk_id, e.seq) for sent in rounds for body in sent.values() for e in body.events}
    assert {i: v[:2] for i, v in server_outcomes.items()} == sent_events
    with store.reading() as conn:
        marks = dict(conn.execute(select(db.kiosks.c.kiosk_id, db.kiosks.c.applied_seq)
                                  .where(db.kiosks.c.kiosk_id.in_(list(names.values())))).all())
    assert marks == {kiosk.kiosk_id: kiosk.seq for kiosk in kiosks.values()}
    # the batch sent to both processes at once: stored by one, the other answered with its reply
    for reply in replies:
        twice = reply["twice"]
        assert sorted(bool(r.get("replayed")) for r in twice) == [False, True]
        assert twice[0]["results"] == twice[1]["results"]

    # each race: the taker's returns all applied (the lender went first) or all refused as
    # "not on loan" (the taker went first), never some of each
    order: list[list[str]] = []
    for r, reply in enumerate(replies):
        outcomes = {result["outcome"] for result in reply["taker"][0]["results"]}
        assert outcomes in ({"applied"}, {"needs_review"}), (r, reply["taker"][0]["results"])
        lender_first = outcomes == {"applied"}
        order.append(["lender", "taker", "twice", "other"] if lender_first else ["taker", "lender", "twice", "other"])
        held = {row[0]: row for row in server_items if row[0].startswith(f"race-{r}-")}
        assert len(held) == BOOKS_PER_ROUND and all((row[2] is None) == lender_first for row in held.values()), held

    # the same batches, one at a time, in one process, in that order
    for sent, roles in zip(rounds, order, strict=True):
        for role in roles:
            ingest.ingest(alone, _batch(sent[role], datetime.now(timezone.utc)), datetime.now(timezone.utc))
    alone_items, alone_loans, alone_outcomes = _state(alone)
    alone.dispose()
    assert server_items == alone_items  # (the server's database is this test's own)
    assert server_loans == alone_loans
    assert server_outcomes == alone_outcomes


def test_a_batch_locks_its_kiosk_and_books_and_a_huge_one_the_whole_server(tmp_path):
    problem = postgres_problem()
    if problem:
        pytest.skip(f"the narrow locks are PostgreSQL's (SQLite has one writer): {problem}")
    with postgres_database() as url:
        store = db.Store(url, pool_size=2)
        try:
            store.migrate()
            held = ("SELECT mode, count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' "
                    "GROUP BY mode ORDER BY mode")
            with store.ingesting("k1", ["b1", "b2", "b2"], ["c1"]) as conn:  # kiosk, 2 books, a card; all shared
                assert conn.exec_driver_sql(held).all() == [("ExclusiveLock", 4), ("ShareLock", 1)]
                # another kiosk's batch about other books is taken meanwhile, one about the same book waits
                with store.ingesting("k2", ["b3"]) as other:
                    assert other.exec_driver_sql(held).all() == [("ExclusiveLock", 2), ("ShareLock", 1)]
                with store.engine.connect() as third, third.begin():
                    third.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
                    key = db.lock_key("item", "b2")
                    with pytest.raises(OperationalError, match="lock timeout"):
                        third.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
            books = [f"b{n}" for n in range(db.INGEST_LOCKS_MAX)]
            with store.ingesting("k1", books) as conn:  # past the most: the global lock alone, exclusively
                assert conn.exec_driver_sql(held).all() == [("ExclusiveLock", 1)]
        finally:
            store.dispose()
