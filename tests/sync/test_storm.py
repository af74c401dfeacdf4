"""The morning storm, for real: a central server with a small push limit
(``central.api.admission``) and many real sync daemons pushing at once over 127.0.0.1.

The server answers what it cannot take with 429 and a Retry-After that says when it is
likely to have room (its queue and the kiosks it already told to come back); the daemons
show "server busy, retrying", wait Retry-After plus a random share of it (kiosks told the
same second come back spread out) and send the same batches again; in the end every event
is on the server exactly once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.sync.daemon import busy_backoff, busy_jitter
from bookcorner.sync.status import Phase, read_status
from tests.central.harness import CentralServer, hold_a_turn, let_go
from tests.sync.kiosk import TestKiosk, daemons_running

LIMIT, QUEUE, WAIT_S, RETRY_AFTER_S = 2, 2, 0.3, 1
KIOSKS, PAIRS, BATCH = 24, 30, 10


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> Iterator[CentralServer]:
    """A server that takes 2 pushes at once and lets 2 more wait 0.3 s at most."""
    folder = tmp_path_factory.mktemp("storm")
    server = CentralServer(f"sqlite:///{folder / 'central.db'}", folder / "server.log",
                           "--push-limit", str(LIMIT), "--push-queue", str(QUEUE), "--push-wait", str(WAIT_S),
                           "--busy-retry-after", str(RETRY_AFTER_S)).start()
    try:
        yield server
    finally:
        server.stop()


def stored(central: CentralServer, kiosk_id: str) -> tuple[list[int], int]:
    """The kiosk's event numbers on the server, and how many distinct event ids."""
    with central.store.reading() as conn:
        seqs = list(conn.execute(select(db.events.c.seq).where(db.events.c.kiosk_id == kiosk_id)
                                 .order_by(db.events.c.seq)).scalars())
        ids = conn.execute(select(func.count(func.distinct(db.events.c.event_id)))
                           .where(db.events.c.kiosk_id == kiosk_id)).scalar_one()
    return seqs, ids


def busy_refusals(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.endswith("sync.daemon") and "busy (429)" in r.getMessage()]


def test_a_storm_of_kiosks_is_told_to_come_back_and_every_event_arrives_once(crowded, tmp_path, caplog):
    kiosks = []
    for n in range(KIOSKS):
        kiosk_id = f"storm-{n:02d}"
        kiosk = TestKiosk(tmp_path / kiosk_id, kiosk_id, crowded.url, crowded.add_kiosk(kiosk_id))
        kiosks.append((kiosk, kiosk.record(kiosk.loans_and_returns(0, PAIRS))))
    daemons = [k.daemon(batch_size=BATCH, retry_initial_s=0.05, retry_max_s=1.0) for k, _ in kiosks]
    seen_busy = set()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="bookcorner.sync"), daemons_running(daemons):
        while time.monotonic() - started < 60:
            statuses = [read_status(k.root) for k, _ in kiosks]
            seen_busy |= {k.kiosk_id for (k, _), s in zip(kiosks, statuses, strict=True) if s.phase is Phase.BUSY}
            if all(s.acked_seq == last for (_, last), s in zip(kiosks, statuses, strict=True)):
                break
            time.sleep(0.05)
        drained = time.monotonic() - started
    refusals = busy_refusals(caplog)
    counted = requests.get(f"{crowded.url}/v1/health", timeout=5).json()["pushes"]
    print(f"\nstorm: {KIOSKS} kiosks x {2 * PAIRS} events in batches of {BATCH}, limit {LIMIT}+{QUEUE}: "
          f"drained in {drained:.1f} s, {len(refusals)} pushes told 429, {len(seen_busy)} kiosks seen 'busy'; "
          f"the server's count: {counted}")
    assert counted["refused"] == len(refusals) and counted["peak_in_flight"] <= LIMIT
    assert counted["peak_waiting"] <= QUEUE and counted["in_flight"] == counted["waiting"] == 0
    for kiosk, last in kiosks:
        status = read_status(kiosk.root)
        assert status.acked_seq == last and status.phase is Phase.IDLE, (kiosk.kiosk_id, status)
        seqs, distinct = stored(crowded, kiosk.kiosk_id)
        assert seqs == list(range(1, last + 1)) and distinct == last  # nothing lost, nothing twice
    assert refusals, "the server never said it was busy: the test did not make a storm"
    assert seen_busy, "no kiosk ever showed 'server busy, retrying'"


def test_the_daemon_waits_at_least_retry_after_and_shows_busy_not_error(crowded, tmp_path, caplog):
    token = crowded.add_kiosk("storm-slow")
    kiosk = TestKiosk(tmp_path / "k", "storm-waiter", crowded.url, crowded.add_kiosk("storm-waiter"))
    last = kiosk.record(kiosk.loans_and_returns(0, 3))
    settings = dict(retry_initial_s=0.05, retry_max_s=0.2)
    daemon = kiosk.daemon(**settings)
    slow = [hold_a_turn(crowded.url, token) for _ in range(LIMIT)]
    time.sleep(0.3)  # (the server has taken both slow pushes' headers)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    with caplog.at_level(logging.INFO, logger="bookcorner.sync"):
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while read_status(kiosk.root).phase is not Phase.BUSY and time.monotonic() < deadline:
                time.sleep(0.02)
            status = read_status(kiosk.root)
            assert status.phase is Phase.BUSY and "come back in 1 s" in status.last_error
            for conn in slow:
                assert b"400" in let_go(conn).split(b"\r\n", 1)[0]
            while read_status(kiosk.root).acked_seq < last and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            runner.join(10)
            daemon.close()
    refused = busy_refusals(caplog)
    done = [r for r in caplog.records if r.getMessage().startswith("sync round done")]
    assert len(refused) == 1 and done
    waited = done[0].created - refused[0].created
    longest = RETRY_AFTER_S + busy_jitter(RETRY_AFTER_S) + 0.25 + 0.5  # + the jitter, a tick, the round itself
    print(f"\nafter a 429 with Retry-After {RETRY_AFTER_S} s the daemon came back after {waited:.2f} s")
    assert RETRY_AFTER_S <= waited <= longest
    assert read_status(kiosk.root).phase is Phase.IDLE
    assert stored(crowded, kiosk.kiosk_id) == (list(range(1, last + 1)), last)


def test_busy_backoff_is_retry_after_plus_a_random_share_of_it_capped_far_below_failures(tmp_path):
    import random

    settings = TestKiosk(tmp_path, "k", "http://127.0.0.1:1", "t").settings(
        retry_initial_s=1.0, retry_max_s=600.0, retry_after_max_s=3600.0, busy_retry_max_s=120.0)
    rng = random.Random(7)
    assert busy_jitter(2.0) == 1.0 and busy_jitter(40.0) == 10.0  # a second at least (Retry-After's granularity)
    for asked in (2.0, 10.0, 60.0):
        for failures in (1, 5, 20):  # the server said when: no doubling towards retry_max_s
            waits = [busy_backoff(failures, settings, rng, asked) for _ in range(500)]
            top = asked + busy_jitter(asked)
            assert all(asked <= w <= top for w in waits)  # never before Retry-After
            assert min(waits) < asked + 0.1 * (top - asked) and max(waits) > top - 0.1 * (top - asked)
    assert busy_backoff(1, settings, rng, 10**6) <= 120.0 + busy_jitter(120.0)  # a silly Retry-After is capped
    # a 429 without Retry-After (a proxy's own): retry_initial_s doubling, up to the same cap
    assert 1.0 <= busy_backoff(1, settings, rng, None) <= 2.0 and 8.0 <= busy_backoff(4, settings, rng, None) <= 10.0
    assert busy_backoff(30, settings, rng, None) <= 120.0 + busy_jitter(120.0)


@pytest.fixture
def one_at_a_time(tmp_path) -> Iterator[CentralServer]:
    """A fresh server that takes one push at once; others wait 0.3 s at most, then 429."""
    server = CentralServer(f"sqlite:///{tmp_path / 'central.db'}", tmp_path / "server.log",
                           "--push-limit", "1", "--push-queue", "8", "--push-wait", "0.3",
                           "--busy-retry-after", "2", "--busy-retry-after-max", "30").start()
    try:
        yield server
    finally:
        server.stop()


def refused_push(url: str, token: str) -> int:
    """A push the server refuses (it is busy): the Retry-After it gave."""
    answer = requests.post(f"{url}/v1/push", data=b"{}", timeout=10,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.status_code == 429, answer.text
    return int(answer.headers["Retry-After"])


def held(url: str, conn):
    """``conn`` once the server has given it its turn (a loaded machine may take a while)."""
    deadline = time.monotonic() + 10
    while requests.get(f"{url}/v1/health", timeout=5).json()["pushes"]["in_flight"] < 1:
        assert time.monotonic() < deadline, "the server never took the slow push"
        time.sleep(0.01)
    return conn


def test_the_servers_retry_after_books_each_refused_kiosk_a_later_turn(one_at_a_time):
    """The server measures how long a push holds a turn and tells the kiosks it turns away
    when it will have room for each: one after another, not all the same second."""
    token = one_at_a_time.add_kiosk("storm-slow")
    slow = held(one_at_a_time.url, hold_a_turn(one_at_a_time.url, token))
    time.sleep(2.0)  # a push that holds the only turn 2 s: the server now takes one every 2 s
    let_go(slow)
    slow = held(one_at_a_time.url, hold_a_turn(one_at_a_time.url, token))
    told = [refused_push(one_at_a_time.url, token) for _ in range(8)]  # (each waits 0.3 s for a turn first)
    let_go(slow)
    print(f"\neight kiosks turned away one after another were told to come back after {told} s")
    assert told == sorted(told) and len(set(told)) >= 5  # a later turn for each (whole seconds)
    assert told[0] >= 2 and told[-1] - told[0] >= 5  # about 2 s of the server's time each, less the time asking
    pushes = requests.get(f"{one_at_a_time.url}/v1/health", timeout=5).json()["pushes"]
    assert pushes["refused"] == 8 and pushes["longest_retry_after_s"] == told[-1]


def test_kiosks_told_the_same_retry_after_come_back_spread_out_and_succeed(one_at_a_time, tmp_path, caplog):
    """Six real daemons are turned away at once (the only turn is held) and told the same
    Retry-After; each waits it plus its own random share, comes back after the time it was
    told, and its events are taken, once."""
    holder = one_at_a_time.add_kiosk("storm-slow")
    kiosks = []
    for n in range(6):
        kiosk_id = f"spread-{n}"
        kiosk = TestKiosk(tmp_path / kiosk_id, kiosk_id, one_at_a_time.url, one_at_a_time.add_kiosk(kiosk_id))
        kiosks.append((kiosk, kiosk.record(kiosk.loans_and_returns(0, 3))))
    daemons = [k.daemon(retry_initial_s=0.05, retry_max_s=0.2) for k, _ in kiosks]
    slow = hold_a_turn(one_at_a_time.url, holder)
    time.sleep(0.2)

    def of(kiosk_id: str, text: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.threadName == kiosk_id and text in r.getMessage()]

    with caplog.at_level(logging.INFO, logger="bookcorner.sync"), \
            daemons_running(daemons, [k.kiosk_id for k, _ in kiosks]):
        deadline = time.monotonic() + 20
        while not all(of(k.kiosk_id, "next try in") for k, _ in kiosks) and time.monotonic() < deadline:
            time.sleep(0.02)
        let_go(slow)  # the turn is free well before any of them comes back
        while time.monotonic() < deadline and not all(read_status(k.root).acked_seq == last for k, last in kiosks):
            time.sleep(0.05)
    waits = []
    for kiosk, last in kiosks:
        refused, planned = of(kiosk.kiosk_id, "busy (429)"), of(kiosk.kiosk_id, "next try in")
        done = of(kiosk.kiosk_id, "sync round done")
        assert refused and "come back in 2 s" in refused[0].getMessage() and done, kiosk.kiosk_id
        wait = float(planned[0].getMessage().split()[-2])
        # its next try: taken, or (a loaded machine, six coming back within a second to one turn) told again
        came_back = min(r.created for r in (*refused[1:], done[0])) - refused[0].created
        assert 2.0 <= wait <= 2.0 + busy_jitter(2.0) and wait - 0.05 <= came_back <= wait + 3.0
        assert stored(one_at_a_time, kiosk.kiosk_id) == (list(range(1, last + 1)), last)
        waits.append(wait)
    print(f"\nsix kiosks told 'come back in 2 s' waited {sorted(waits)} s")
    assert len(set(waits)) >= 3 and max(waits) - min(waits) > 0.2  # spread, not together (shown to 0.1 s)
