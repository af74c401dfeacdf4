"""The sync daemon against the real central server (SQLite, and PostgreSQL when it runs):
every event arrives once, the kiosk learns what happened elsewhere, a crash or a lost
position costs at most one batch, and a request to sync is answered at once."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.journal.clock import FixedClock
from bookcorner.kiosk.desk import CirculationDesk
from bookcorner.sync.position import load_position, save_position
from bookcorner.sync.status import Phase, read_status, request_sync
from tests.school import CARDS, MONDAY, XIAOMING, XIYOUJI
from tests.sync.kiosk import TestKiosk


def server_events(central, kiosk_id: str) -> list:
    with central.store.reading() as conn:
        return conn.execute(select(db.events.c.seq, db.events.c.outcome, db.events.c.reason)
                            .where(db.events.c.kiosk_id == kiosk_id).order_by(db.events.c.seq)).all()


def batches_stored(central, kiosk_id: str) -> int:
    with central.store.reading() as conn:
        return conn.execute(select(func.count()).select_from(db.batches)
                            .where(db.batches.c.kiosk_id == kiosk_id)).scalar_one()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_syncd_once_delivers_every_event_once_and_exits_0(central, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path / "kiosk", kiosk_id, central.url, central.add_kiosk(kiosk_id))
    last = kiosk.record(kiosk.loans_and_returns(0, 125))
    done = kiosk.syncd_once()
    assert done.returncode == 0, done.stderr
    assert f"up to number {last}" in done.stdout
    stored = server_events(central, kiosk_id)
    assert [row.seq for row in stored] == list(range(1, last + 1))
    assert {row.outcome for row in stored} == {"applied"}
    status = read_status(kiosk.root)
    assert status.phase is Phase.IDLE and status.acked_seq == last and status.last_error is None
    assert status.sent == last and status.needs_review == 0

    again = kiosk.syncd_once()
    assert again.returncode == 0 and len(server_events(central, kiosk_id)) == last


def test_the_kiosk_learns_of_loans_made_at_another_corner(central, tmp_path):
    ids = ["corner-a-" + tmp_path.name[-6:], "corner-b-" + tmp_path.name[-6:]]
    a, b = (TestKiosk(tmp_path / i, i, central.url, central.add_kiosk(i)) for i in ids)
    from bookcorner.central.reference import document_from_reference, load_document
    from tests.school import reference

    load_document(central.store, document_from_reference(reference(), "Test school"))
    clock = FixedClock(MONDAY)
    with CirculationDesk(a.root, a.kiosk_id, clock) as desk:
        lent = desk.checkout(desk.identify(CARDS[XIAOMING]), XIYOUJI.barcode)
        assert lent.ok
    assert a.syncd_once().returncode == 0
    assert b.syncd_once().returncode == 0
    with CirculationDesk(b.root, b.kiosk_id, clock) as desk:
        loan = desk.state.loan_of(XIYOUJI.item_id)  # (other tests' kiosks lend to 小明 too: one server)
        assert loan is not None and loan.patron_id == XIAOMING.patron_id
        assert loan.loan_id == lent.events[-1].event_id
        assert XIYOUJI.item_id in [loan.item_id for loan in desk.state.loans_of(XIAOMING.patron_id)]


def test_a_request_to_sync_starts_a_round_at_once(central_sqlite, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path, kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))
    kiosk.record(kiosk.loans_and_returns(0, 5))
    daemon = kiosk.daemon(interval_s=3600, push_after_s=3600)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    runner.start()
    try:
        wait_for(lambda: read_status(kiosk.root).acked_seq == 10)
        last = kiosk.record(kiosk.loans_and_returns(5, 5))
        time.sleep(0.5)
        assert read_status(kiosk.root).acked_seq == 10  # nothing pushes by itself for an hour...
        started = time.monotonic()
        request_sync(kiosk.root)  # ...but the librarian asks
        wait_for(lambda: read_status(kiosk.root).acked_seq == last, timeout=5)
        assert time.monotonic() - started < 2.0
    finally:
        stop.set()
        runner.join(5)
        daemon.close()


def test_new_events_are_pushed_soon_after_they_are_recorded(central_sqlite, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path, kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))
    daemon = kiosk.daemon(interval_s=3600, push_after_s=0.2)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    runner.start()
    try:
        wait_for(lambda: read_status(kiosk.root).phase is Phase.IDLE)
        last = kiosk.record(kiosk.loans_and_returns(0, 3))
        wait_for(lambda: read_status(kiosk.root).acked_seq == last, timeout=5)
    finally:
        stop.set()
        runner.join(5)
        daemon.close()


def test_a_crash_before_the_acknowledgement_resends_the_same_batch_once(central, kiosk_id, tmp_path, monkeypatch):
    kiosk = TestKiosk(tmp_path, kiosk_id, central.url, central.add_kiosk(kiosk_id))
    kiosk.record(kiosk.loans_and_returns(0, 60))  # 120 events: batches of 100 and 20
    from bookcorner.sync import daemon as sync_daemon

    def power_cut(sync_dir, position):
        if position.acked_seq == 120:  # the server stored the second batch; the kiosk never wrote that down
            raise KeyboardInterrupt
        save_position(sync_dir, position)

    monkeypatch.setattr(sync_daemon, "save_position", power_cut)
    with pytest.raises(KeyboardInterrupt):
        kiosk.daemon().run_round()
    monkeypatch.undo()
    in_flight = load_position(kiosk.root / "sync")
    assert (in_flight.acked_seq, in_flight.inflight_from, in_flight.inflight_to) == (100, 101, 120)
    batches = batches_stored(central, kiosk_id)

    result = kiosk.daemon().run_round()
    assert result.ok and result.acked_seq == 120
    assert batches_stored(central, kiosk_id) == batches  # the same batch id: answered from the stored reply
    assert len(server_events(central, kiosk_id)) == 120
    position = load_position(kiosk.root / "sync")
    assert (position.acked_seq, position.inflight_batch) == (120, None)


def test_a_lost_position_costs_one_batch_not_the_whole_journal(central_sqlite, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path, kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))
    kiosk.record(kiosk.loans_and_returns(0, 250))
    assert kiosk.daemon().run_round().ok
    before = batches_stored(central_sqlite, kiosk_id)
    (kiosk.root / "sync" / "position.db").unlink()
    (kiosk.root / "sync" / "position.db.prev").unlink(missing_ok=True)
    kiosk.record(kiosk.loans_and_returns(250, 10))
    result = kiosk.daemon().run_round()
    assert result.ok and result.acked_seq == 520
    assert batches_stored(central_sqlite, kiosk_id) == before + 2  # events 1-100 again, then 501-520
    assert len(server_events(central_sqlite, kiosk_id)) == 520


def test_only_one_daemon_per_kiosk(central_sqlite, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path, kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))
    first = kiosk.daemon()
    first.lock()
    try:
        second = kiosk.syncd_once()
        assert second.returncode == 3 and "already runs" in second.stderr
    finally:
        first.close()


def test_the_daemon_never_writes_the_journal(central_sqlite, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path, kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))
    kiosk.record(kiosk.loans_and_returns(0, 20))
    journal = kiosk.root / "journal"
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in journal.iterdir()}
    assert kiosk.syncd_once().returncode == 0
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in journal.iterdir()} == before


@pytest.mark.parametrize("problem", ["no server", "no credential"])
def test_a_kiosk_not_set_up_for_sync_says_what_is_missing(tmp_path, problem):
    kiosk = TestKiosk(tmp_path, "corner-x", "http://127.0.0.1:9", "bck1_x")
    kiosk.record(kiosk.loans_and_returns(0, 1))
    if problem == "no server":
        daemon = kiosk.daemon(server_url="")
        expected = "server_url"
    else:
        kiosk.credential.unlink()
        daemon = kiosk.daemon()
        expected = "add-kiosk"
    result = daemon.run_round()
    assert not result.ok and expected in result.error.message
    status = read_status(kiosk.root)
    assert status.phase is Phase.ERROR and expected in status.last_error and status.acked_seq == 0
