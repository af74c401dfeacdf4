"""Chaos: 5,000 events through a proxy that spoils a third of the exchanges (drops the
request, resets the connection after the server took it, cuts the reply in half, delays
it, or never answers), while the kiosk keeps recording and the daemon process is killed
(SIGKILL) again and again mid-batch and restarted.

At the end the server holds each event exactly once, the kiosk's sequence is complete,
every event applied cleanly (a second replay of any of them would have shown as a
warning or a review), and no book is left on loan."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.sync.position import load_position
from bookcorner.sync.status import read_status
from tests.sync.kiosk import TestKiosk
from tests.sync.netfaults import FaultyProxy

EVENTS = 5000
KILLS = 6


def start_daemon(kiosk: TestKiosk, log) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "BOOKCORNER_CONFIG"}
    return subprocess.Popen([sys.executable, "-m", "bookcorner", "--config", str(kiosk.config), "syncd"],
                            stdout=log, stderr=log, env=env)


def test_every_event_arrives_exactly_once_through_faults_and_kills(central_sqlite, kiosk_id, tmp_path):
    central = central_sqlite  # (the API tests run on PostgreSQL too; this one is about the network)
    port = urlsplit(central.url).port
    proxy = FaultyProxy(port, fault_rate=1 / 3, seed=2026, delay_s=0.2)
    kiosk = TestKiosk(tmp_path / "kiosk", kiosk_id, proxy.url, central.add_kiosk(kiosk_id))
    kiosk.config.write_text(kiosk.config.read_text().replace("read_timeout_s = 10.0", "read_timeout_s = 0.5")
                            + "push_after_s = 0.1\n")
    drafts = kiosk.loans_and_returns(0, EVENTS // 2)
    kiosk.record(drafts[:2000], chunk=100)

    def keep_recording() -> None:  # the kiosk goes on lending while the daemon ships
        for start in range(2000, EVENTS, 100):
            kiosk.record(drafts[start:start + 100], chunk=100)
            time.sleep(0.05)

    writer = threading.Thread(target=keep_recording)
    log = open(tmp_path / "syncd.log", "ab")
    rng = random.Random(7)
    daemon = start_daemon(kiosk, log)
    writer.start()
    kills = mid_batch = 0
    try:
        while kills < KILLS:
            started = read_status(kiosk.root).acked_seq
            deadline = time.monotonic() + 10
            while read_status(kiosk.root).acked_seq == started and time.monotonic() < deadline:
                time.sleep(0.01)  # the new daemon is shipping: now cut it off, somewhere in a batch
            time.sleep(rng.uniform(0.0, 0.15))
            daemon.send_signal(signal.SIGKILL)  # a child pulls the plug
            daemon.wait()
            kills += 1
            position = load_position(kiosk.root / "sync")
            mid_batch += position.inflight_batch is not None and position.inflight_from == position.acked_seq + 1
            daemon = start_daemon(kiosk, log)
        writer.join()
        deadline = time.monotonic() + 90
        while read_status(kiosk.root).acked_seq < EVENTS and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)
        writer.join()
        log.close()
        proxy.close()

    assert read_status(kiosk.root).acked_seq == EVENTS, (tmp_path / "syncd.log").read_text()[-3000:]
    assert kills == KILLS and mid_batch >= KILLS // 2 and daemon.returncode == 0
    faults = {name: proxy.counts[name] for name in FaultyProxy.FAULTS}
    assert all(faults.values()), faults
    assert 0.2 < sum(faults.values()) / proxy.exchanges < 0.5, proxy.counts

    t = db.events.c
    with central.store.reading() as conn:
        seqs = list(conn.execute(select(t.seq).where(t.kiosk_id == kiosk_id).order_by(t.seq)).scalars())
        outcomes = dict(conn.execute(select(t.outcome, func.count()).where(t.kiosk_id == kiosk_id)
                                     .group_by(t.outcome)).all())
        reviews = conn.execute(select(func.count()).select_from(db.reviews)
                               .where(db.reviews.c.kiosk_id == kiosk_id)).scalar_one()
        high_water = conn.execute(select(db.kiosks.c.applied_seq).where(db.kiosks.c.kiosk_id == kiosk_id)).scalar_one()
        on_loan = conn.execute(select(func.count()).select_from(db.item_state).where(
            db.item_state.c.item_id.like(f"{kiosk_id}/%"), db.item_state.c.loan_id.is_not(None))).scalar_one()
    assert seqs == list(range(1, EVENTS + 1))  # each once, none missing
    assert outcomes == {"applied": EVENTS} and reviews == 0
    assert high_water == EVENTS and on_loan == 0
