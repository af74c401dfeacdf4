"""The morning storm, for real: a central server with a small push limit
(``central.api.admission``) and many real sync daemons pushing at once over 127.0.0.1.

The server answers what it cannot take with 429 and Retry-After; the daemons show "server
busy, retrying", wait at least Retry-After (plus jitter) and send the same batches again;
in the end every event is on the server exactly once."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.sync.daemon import busy_backoff
from bookcorner.sync.status import Phase, read_status
from tests.central.harness import CentralServer
from tests.sync.kiosk import TestKiosk

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
    stop = threading.Event()
    runners = [threading.Thread(target=d.run, args=(stop,)) for d in daemons]
    seen_busy = set()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="bookcorner.sync"):
        for runner in runners:
            runner.start()
        try:
            while time.monotonic() - started < 60:
                statuses = [read_status(k.root) for k, _ in kiosks]
                seen_busy |= {k.kiosk_id for (k, _), s in zip(kiosks, statuses, strict=True) if s.phase is Phase.BUSY}
                if all(s.acked_seq == last for (_, last), s in zip(kiosks, statuses, strict=True)):
                    break
                time.sleep(0.05)
            drained = time.monotonic() - started
        finally:
            stop.set()
            for runner in runners:
                runner.join(10)
            for daemon in daemons:
                daemon.close()
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


def hold_a_turn(url: str, token: str) -> socket.socket:
    """A slow kiosk: a push whose body has not all arrived yet holds one of the server's turns."""
    parts = urlsplit(url)
    conn = socket.create_connection((parts.hostname, parts.port))
    conn.sendall(b"POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 100\r\n\r\n{")
    return conn


def let_go(conn: socket.socket) -> bytes:
    """The rest of the slow body (not JSON: answered 400, and the turn is free again)."""
    conn.sendall(b" " * 99)
    answer = conn.recv(4096)
    conn.close()
    return answer


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
    longest = RETRY_AFTER_S + settings["retry_max_s"] + 0.25 + 0.5  # + the window, a tick, the round itself
    print(f"\nafter a 429 with Retry-After {RETRY_AFTER_S} s the daemon came back after {waited:.2f} s")
    assert RETRY_AFTER_S <= waited <= longest
    assert read_status(kiosk.root).phase is Phase.IDLE
    assert stored(crowded, kiosk.kiosk_id) == (list(range(1, last + 1)), last)


def test_busy_backoff_is_retry_after_plus_full_jitter_capped(tmp_path):
    import random

    settings = TestKiosk(tmp_path, "k", "http://127.0.0.1:1", "t").settings(
        retry_initial_s=1.0, retry_max_s=30.0, retry_after_max_s=600.0)
    rng = random.Random(7)
    for failures, window in ((1, 2.0), (2, 4.0), (3, 8.0), (10, 30.0)):
        waits = [busy_backoff(failures, settings, rng, 2.0) for _ in range(500)]
        assert all(2.0 <= w <= 2.0 + window for w in waits)  # never before Retry-After, never past the cap
        assert min(waits) < 2.0 + window * 0.1 and max(waits) > 2.0 + window * 0.9  # full jitter: the whole window
    assert busy_backoff(1, settings, rng, 10**6) <= 600.0 + 30.0  # a silly Retry-After is capped
