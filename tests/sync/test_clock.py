"""A kiosk's clock through power cuts: the server's times and order come out right.

The kiosk's day, in true time (N is now, when the daemon finally pushes):

* boot A, N-2h: the clock is NTP-synced; three events;
* boot Z, N-1h50: fake-hwclock restored a time 3 days behind; never synced;
* boot F, N-1h45: no saved time at all, the clock starts in 1970;
* boot G, N-1h40: the clock was set a year ahead by hand;
* boot B, N-1h30: 3 days behind again, then NTP jumps it forward at N-1h;
* boot C, N-10min: 3 days behind, not synced yet when the daemon pushes at N.

Boot C is re-timed from the push's (wall, monotonic) pair, boot B from its own synced
readings (the monotonic clock carries them back over the jump), boot A is synced: all
within 2 s of the truth. Z, F and G have nothing to anchor them: they are held between
boot A's last event and boot B's first, in sequence order, and flagged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from bookcorner.central import db
from bookcorner.journal.clock import ClockReading
from bookcorner.journal.journal import Journal
from tests.sync.kiosk import TestKiosk, checkout

UTC = timezone.utc
BOUND = timedelta(seconds=2)


class ScriptedClock:
    """Reads whatever the scenario says the kiosk's clocks read."""

    def __init__(self) -> None:
        self.reading: ClockReading | None = None

    def read(self) -> ClockReading:
        assert self.reading is not None
        return self.reading


class Boot:
    def __init__(self, boot_id: str, started: datetime, wall_at_start: datetime) -> None:
        self.boot_id, self.started, self.wall_at_start = boot_id, started, wall_at_start
        self.jump: tuple[datetime, timedelta] | None = None  # NTP: from this true time the wall moves by this much

    def reading(self, true: datetime) -> ClockReading:
        elapsed = true - self.started
        wall = self.wall_at_start + elapsed
        synced = False
        if self.jump is not None and true >= self.jump[0]:
            wall, synced = wall + self.jump[1], True
        return ClockReading(wall, 5_000_000_000 + int(elapsed.total_seconds() * 1e9), self.boot_id, synced)


def test_times_and_order_survive_reboots_a_clock_3_days_behind_and_an_ntp_jump(central, kiosk_id, tmp_path):
    now = datetime.now(UTC)
    behind = timedelta(days=3)
    kiosk = TestKiosk(tmp_path, kiosk_id, central.url, central.add_kiosk(kiosk_id))
    with central.store.writing() as conn:  # the kiosk was set up ten days ago
        conn.execute(update(db.kiosks).where(db.kiosks.c.kiosk_id == kiosk_id)
                     .values(provisioned=now - timedelta(days=10)))

    a = Boot("boot-a", now - timedelta(hours=2), now - timedelta(hours=2))
    z = Boot("boot-z", now - timedelta(minutes=110), now - timedelta(minutes=110) - behind)
    f = Boot("boot-f", now - timedelta(minutes=105), datetime(1970, 1, 1, tzinfo=UTC))
    g = Boot("boot-g", now - timedelta(minutes=100), now - timedelta(minutes=100) + timedelta(days=365))
    b = Boot("boot-b", now - timedelta(minutes=90), now - timedelta(minutes=90) - behind)
    b.jump = (now - timedelta(hours=1), behind)
    c = Boot("boot-c", now - timedelta(minutes=10), now - timedelta(minutes=10) - behind)
    a_synced = Boot("boot-a", a.started, a.wall_at_start)
    a_synced.jump = (a.started, timedelta(0))  # synced from the start
    plan = [
        (a_synced, [1, 2, 3]), (z, [1, 2]), (f, [1, 2]), (g, [1, 2]),
        (b, [1, 5, 10, 35, 40, 45]),  # minutes into the boot: three before the jump at 30, three after
        (c, [1, 2, 3]),
    ]
    clock = ScriptedClock()
    truth: dict[int, tuple[datetime, str]] = {}
    n = 0
    with Journal(kiosk.root / "journal", kiosk_id, clock) as journal:
        for boot, minutes in plan:
            for minute in minutes:
                true = boot.started + timedelta(minutes=minute)
                clock.reading = boot.reading(true)
                n += 1
                event = journal.append([checkout(n, shelf=kiosk_id + "/")])[0]
                truth[event.seq] = (true, boot.boot_id)

    clock.reading = c.reading(datetime.now(UTC))  # the daemon reads the clocks just before it pushes
    daemon = kiosk.daemon(clock=clock)
    assert daemon.run_round().ok
    daemon.close()

    with central.store.reading() as conn:
        rows = {r.seq: r for r in conn.execute(select(db.events).where(db.events.c.kiosk_id == kiosk_id))}
    assert set(rows) == set(truth)
    unanchored = {"boot-z", "boot-f", "boot-g"}
    for seq, (true, boot_id) in truth.items():
        row = rows[seq]
        if boot_id in unanchored:
            assert row.time_quality == "bounded"
            assert row.time_lower <= true <= row.time_upper, (seq, boot_id)
            assert row.time_lower >= truth[3][0] - BOUND and row.time_upper <= truth[10][0] + BOUND
        else:
            assert abs(row.time - true) <= BOUND, (seq, boot_id, row.time, true)
            assert row.time_quality in ("corrected", "synced")
            assert not (row.warnings or "").count("time_"), (seq, row.warnings)
            assert row.outcome == "applied"

    flags = {seq: rows[seq].warnings or "" for seq in rows}
    assert all("time_went_backwards" in flags[s] for s in (4, 5))          # boot Z: 3 days behind
    assert all("time_before_provisioning" in flags[s] for s in (6, 7))     # boot F: 1970
    assert all("time_in_the_future" in flags[s] for s in (8, 9))           # boot G: a year ahead
    assert all(rows[s].outcome == "applied_with_warning" for s in range(4, 10))

    in_time_order = sorted(rows.values(), key=lambda r: (r.time, r.seq))
    assert [r.seq for r in in_time_order] == sorted(truth)  # the kiosk's order, whatever its clocks said
    assert rows[10].time - rows[9].time >= timedelta(0)
    # boot B's first events were recorded 3 days "behind": the monotonic clock carried them back
    assert abs(rows[10].time - truth[10][0]) <= BOUND and rows[10].wall_time.startswith(
        (truth[10][0] - behind).date().isoformat())


# --- events recorded before the kiosk was paired ---------------------------------------------------

PAIRING_CASES = {
    # the demo: loans on the kiosk, then `bookcorner central add-kiosk`, then the first push
    "same boot, synced clock": (True, True),
    "same boot, clock right but not known to be synced": (False, True),
    "rebooted since, synced clock": (True, False),
}


def _before_pairing(central, kiosk_id, tmp_path, synced: bool, same_boot: bool):
    """24 loans over six minutes on a kiosk the server does not know yet, then the kiosk is
    paired, then it pushes; its wall clock reads the true time throughout."""
    now = datetime.now(UTC)
    boot = Boot("boot-demo", now - timedelta(minutes=20), now - timedelta(minutes=20))
    if synced:
        boot.jump = (boot.started, timedelta(0))
    clock = ScriptedClock()
    truth: dict[int, datetime] = {}
    root = tmp_path / "kiosk"
    with Journal(root / "journal", kiosk_id, clock) as journal:
        for n in range(24):  # one loan every 15.6 s, from 7 minutes ago to 1 minute ago
            true = now - timedelta(minutes=7) + n * timedelta(minutes=6) / 23
            clock.reading = boot.reading(true)
            truth[journal.append([checkout(n + 1, shelf=kiosk_id + "/")])[0].seq] = true
    kiosk = TestKiosk(root, kiosk_id, central.url, central.add_kiosk(kiosk_id))  # paired now
    pushing = boot if same_boot else Boot("boot-after", now - timedelta(seconds=30), now - timedelta(seconds=30))
    clock.reading = pushing.reading(datetime.now(UTC))
    daemon = kiosk.daemon(clock=clock)
    assert daemon.run_round().ok
    daemon.close()
    with central.store.reading() as conn:
        provisioned = conn.execute(select(db.kiosks.c.provisioned).where(db.kiosks.c.kiosk_id == kiosk_id)).scalar_one()
        rows = {r.seq: r for r in conn.execute(select(db.events).where(db.events.c.kiosk_id == kiosk_id))}
    assert set(rows) == set(truth) and max(truth.values()) < provisioned
    return truth, rows


@pytest.mark.parametrize("case", list(PAIRING_CASES))
def test_loans_recorded_before_pairing_keep_their_times(central, kiosk_id, tmp_path, case):
    synced, same_boot = PAIRING_CASES[case]
    truth, rows = _before_pairing(central, kiosk_id, tmp_path, synced, same_boot)
    assert len({r.time for r in rows.values()}) == 24
    for seq, true in truth.items():
        row = rows[seq]
        assert abs(row.time - true) <= BOUND, (case, seq, row.time, true)
        assert row.time_quality in ("corrected", "synced") and row.outcome == "applied", (case, seq)
        assert not row.warnings, (case, seq, row.warnings)


def test_loans_before_pairing_from_a_clock_nothing_vouches_for_are_flagged(central, kiosk_id, tmp_path):
    """Not synced, and the kiosk rebooted before pushing: the server cannot tell these walls
    from a clock restored days behind. Held within bounds, in order, and said so."""
    truth, rows = _before_pairing(central, kiosk_id, tmp_path, synced=False, same_boot=False)
    for seq in truth:
        row = rows[seq]
        assert row.time_quality == "bounded" and row.outcome == "applied_with_warning"
        assert "time_before_provisioning" in (row.warnings or ""), (seq, row.warnings)
    in_time_order = sorted(rows.values(), key=lambda r: (r.time, r.seq))
    assert [r.seq for r in in_time_order] == sorted(truth)
