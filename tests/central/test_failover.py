"""No lost loans when the database server dies: a real central server on a PostgreSQL
primary with a synchronous standby (``tests.central.standby``), real sync daemons pushing
all the time, the primary SIGKILLed mid-push, the standby promoted.

The server is given both database servers in one libpq URL (``host=...&host=...&
target_session_attrs=read-write``): the same server process carries on by itself on the
promoted standby (its pool checks a connection before use and opens new ones on the
server that takes writes). The kiosks carry on by themselves too. Every event the server
acknowledged, before or after the kill, is on the promoted server exactly once."""

from __future__ import annotations

import time

from bookcorner.sync.status import read_status
from tests.central.dashboard_client import Librarian
from tests.central.harness import CentralServer
from tests.sync.kiosk import LendingKiosks, TestKiosk, recorded

KIOSKS = 4
PUSH_BEFORE_S, DEAD_S, PUSH_AFTER_S = 3.0, 1.0, 3.0


def stored(pair, kiosk_id: str) -> list[int]:
    return [seq for (seq,) in pair.standby.execute(f"SELECT seq FROM events WHERE kiosk_id = '{kiosk_id}' ORDER BY seq")]


def test_a_primary_killed_mid_push_loses_no_acknowledged_event(standby_pair, tmp_path):
    pair = standby_pair
    started = time.monotonic()
    server = CentralServer(pair.url, tmp_path / "server.log").start()
    try:
        kiosks = []
        for n in range(KIOSKS):
            kiosk_id = f"fo-{n}"
            kiosks.append(TestKiosk(tmp_path / kiosk_id, kiosk_id, server.url, server.add_kiosk(kiosk_id)))
        lending = LendingKiosks(kiosks, batch_size=20, push_after_s=0.05, retry_initial_s=0.05, retry_max_s=0.3,
                                retry_after_max_s=0.5, read_timeout_s=10.0)
        with lending.running():
            time.sleep(PUSH_BEFORE_S)
            lending.acknowledged_since(0)  # (a loaded machine: every kiosk has pushed before the kill)
            killed_at = time.time()
            pair.primary.kill()
            dead_at = time.time()
            time.sleep(DEAD_S)
            promoting_at = time.time()
            pair.standby.promote()
            promoted_at = time.time()
            time.sleep(PUSH_AFTER_S)
            lending.acknowledged_since(promoted_at)
            lending.drain()
        assert server.process.poll() is None, "the server process died with the database server"
    finally:
        server.stop()
    acks = lending.acks
    assert pair.standby.execute("SELECT pg_is_in_recovery()") == [(False,)]
    pushed = acknowledged = found = 0
    for kiosk in kiosks:
        last = read_status(kiosk.root).acked_seq
        mine = lending.times(kiosk.kiosk_id)
        seqs = stored(pair, kiosk.kiosk_id)
        assert seqs == list(range(1, len(seqs) + 1)), f"{kiosk.kiosk_id}: events missing or twice on the server"
        assert max(up_to for up_to, _ in mine) == last == len(seqs) == recorded(kiosk)
        assert any(when < killed_at for _, when in mine) and any(when > promoted_at for _, when in mine)
        pushed, acknowledged, found = pushed + last, acknowledged + max(up_to for up_to, _ in mine), found + len(seqs)
    duplicates = pair.standby.execute("SELECT count(*) FROM (SELECT kiosk_id, seq FROM events "
                                      "GROUP BY kiosk_id, seq HAVING count(*) > 1) AS twice")[0][0]
    assert duplicates == 0 and not acks.rewinds, acks.rewinds
    # with no database server taking writes, nothing is acknowledged (a daemon logs an acknowledgement
    # after saving its position: give a reply that left before the kill a moment to be logged)
    assert not [when for _, _, when in acks.seen if dead_at + 0.25 < when < promoting_at]
    before_kill = sum(1 for _, _, when in acks.seen if when < killed_at)
    resumed = min(when for _, _, when in acks.seen if when > promoting_at)
    print(f"\nfailover: {KIOSKS} kiosks, {pushed} events recorded, {acknowledged} acknowledged "
          f"({before_kill} batches before the kill), {found} on the promoted server, {duplicates} twice; "
          f"{len(acks.failures)} failed rounds while no database took writes ({DEAD_S:g} s dead, then promoted); "
          f"first acknowledgement {resumed - promoting_at:.2f} s after `pg_ctl promote` was run "
          f"(which took {promoted_at - promoting_at:.2f} s), {resumed - dead_at:.2f} s after the kill; "
          f"test {time.monotonic() - started:.1f} s")


def test_the_borrowing_reports_read_from_the_hot_standby(standby_pair, tmp_path):
    """``--report-database``: the heavy reports on the standby, so that they never slow ingest."""
    pair = standby_pair
    reports_url = f"{pair.standby.url()}?application_name=bookcorner-reports"
    server = CentralServer(pair.url, tmp_path / "server.log", "--report-database", reports_url).start()
    try:
        kiosk = TestKiosk(tmp_path / "k", "fo-report", server.url, server.add_kiosk("fo-report"))
        last = kiosk.record(kiosk.loans_and_returns(0, 3))
        assert kiosk.daemon().run_round().acked_seq == last
        librarian = Librarian(server.url)
        assert librarian.sign_in("Ms Li", server.add_librarian("Ms Li")).status_code == 303
        for page in ("/reports/week", "/reports/term", "/reports/stars"):
            assert librarian.get(page).status_code == 200, page
        connected = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bookcorner-reports'"
        assert pair.standby.execute(connected, "postgres") != [(0,)]  # the reports' pool, on the standby
        assert pair.primary.execute(connected, "postgres") == [(0,)]
    finally:
        server.stop()
