"""Re-timing kiosk events before the kiosk was paired, as a pure rule (circulation.retiming).

A kiosk lends books before a librarian pairs it with the server; its first push comes
after. Pairing says nothing about when those loans happened: whatever vouches for the
kiosk's clock vouches for them too, and a clock nothing vouches for is flagged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from bookcorner.circulation.retiming import Anchor, Stamp, TimeFlag, TimeQuality, retime

UTC = timezone.utc
PAIRED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PUSHED = PAIRED + timedelta(minutes=3)
BOOT_MONO_NS = 5_000_000_000


def reading(seq: int, boot: str, started: datetime, true: datetime, wall: datetime | None, synced: bool = False) -> Stamp:
    """What the kiosk recorded at ``true`` in a boot that started at ``started``."""
    return Stamp(seq, boot, BOOT_MONO_NS + (true - started) // timedelta(microseconds=1) * 1000, wall, synced)


def push_anchor(boot: str, started: datetime, at: datetime = PUSHED) -> Anchor:
    return Anchor(boot, BOOT_MONO_NS + (at - started) // timedelta(microseconds=1) * 1000, at)


def demo_loans(boot: str, started: datetime, synced: bool, behind: timedelta = timedelta(0)) -> tuple[list[Stamp], list[datetime]]:
    """24 loans over the six minutes before pairing; the wall clock ``behind`` the truth."""
    truth = [PAIRED - timedelta(minutes=7) + n * timedelta(minutes=6) / 23 for n in range(24)]
    return [reading(n + 1, boot, started, t, t - behind, synced) for n, t in enumerate(truth)], truth


def test_loans_before_pairing_keep_the_times_the_push_of_their_boot_gives_them():
    started = PAIRED - timedelta(minutes=20)
    stamps, truth = demo_loans("b", started, synced=False)
    out = retime(stamps, anchors={"b": push_anchor("b", started)}, received=PUSHED, provisioned=PAIRED)
    assert [t.time for t in out] == truth
    assert {t.quality for t in out} == {TimeQuality.CORRECTED} and not any(t.flags for t in out)


def test_a_clock_3_days_behind_before_pairing_is_carried_back_by_its_boots_push():
    started = PAIRED - timedelta(minutes=20)
    stamps, truth = demo_loans("b", started, synced=False, behind=timedelta(days=3))
    out = retime(stamps, anchors={"b": push_anchor("b", started)}, received=PUSHED, provisioned=PAIRED)
    assert [t.time for t in out] == truth and not any(t.flags for t in out)


def test_loans_before_pairing_on_a_synced_clock_keep_their_times_after_a_reboot():
    started = PAIRED - timedelta(minutes=20)
    stamps, truth = demo_loans("before", started, synced=True)
    out = retime(stamps, anchors={"now": push_anchor("now", PUSHED - timedelta(seconds=30))}, received=PUSHED,
                 provisioned=PAIRED)
    assert [t.time for t in out] == truth
    assert {t.quality for t in out} == {TimeQuality.SYNCED} and not any(t.flags for t in out)


def test_a_boot_anchored_by_an_earlier_push_keeps_its_times_before_pairing():
    """The push that anchored the boot came first; these events come in a later push."""
    started = PAIRED - timedelta(minutes=20)
    stamps, truth = demo_loans("b", started, synced=False)
    kept = push_anchor("b", started, at=PAIRED + timedelta(seconds=20))
    out = retime(stamps, anchors={"b": kept, "now": push_anchor("now", PUSHED - timedelta(seconds=30))},
                 received=PUSHED, provisioned=PAIRED)
    assert [t.time for t in out] == truth and not any(t.flags for t in out)


def test_loans_before_pairing_from_a_clock_nothing_vouches_for_are_flagged_and_held_in_order():
    started = PAIRED - timedelta(minutes=20)
    stamps, _ = demo_loans("before", started, synced=False)
    out = retime(stamps, anchors={"now": push_anchor("now", PUSHED - timedelta(seconds=30))}, received=PUSHED,
                 provisioned=PAIRED)
    assert all(t.quality is TimeQuality.BOUNDED and t.flags == (TimeFlag.BEFORE_PROVISIONING,) for t in out)
    assert all(t.time == PAIRED and t.lower == PAIRED and t.upper == PUSHED for t in out)  # nothing earlier known


def test_an_unvouched_boot_after_kept_loans_is_bounded_by_them_not_by_the_pairing():
    """Boot A was synced (kept); boot Z came up 3 days behind and was never synced; boot C
    pushes. Z's loans happened between A's last and C's first: before the pairing too."""
    a0, z0, c0 = PAIRED - timedelta(minutes=30), PAIRED - timedelta(minutes=10), PAIRED - timedelta(minutes=2)
    stamps = [reading(1, "a", a0, a0 + timedelta(minutes=1), a0 + timedelta(minutes=1), synced=True),
              reading(2, "z", z0, z0 + timedelta(minutes=1), z0 + timedelta(minutes=1) - timedelta(days=3)),
              reading(3, "z", z0, z0 + timedelta(minutes=2), z0 + timedelta(minutes=2) - timedelta(days=3)),
              reading(4, "c", c0, c0 + timedelta(minutes=1), c0 + timedelta(minutes=1))]
    out = retime(stamps, anchors={"c": push_anchor("c", c0)}, received=PUSHED, provisioned=PAIRED)
    assert out[0].time == a0 + timedelta(minutes=1) and out[3].time == c0 + timedelta(minutes=1)
    for z in out[1:3]:
        assert z.quality is TimeQuality.BOUNDED and z.lower == out[0].time and z.upper == out[3].time
        assert z.flags == (TimeFlag.BEFORE_PROVISIONING,)
    assert [t.time for t in out] == sorted(t.time for t in out)


def test_nothing_is_placed_after_its_receipt():
    """A synced clock a little ahead of the server's: held at the receipt (a clock minutes
    ahead is within drift, not flagged; beyond that, flagged as in the future)."""
    ahead = [Stamp(1, "a", 10**9, PUSHED + timedelta(minutes=2), True),
             Stamp(2, "b", 10**9, PUSHED + timedelta(hours=2), True)]
    out = retime(ahead, anchors={}, received=PUSHED, provisioned=PAIRED)
    assert [t.time for t in out] == [PUSHED, PUSHED]
    assert out[0].flags == () and out[1].flags == (TimeFlag.IN_THE_FUTURE,)


def test_an_event_is_never_placed_before_the_one_the_kiosk_recorded_before_it():
    started = PAIRED - timedelta(minutes=20)
    stamps, truth = demo_loans("b", started, synced=True)
    previous = truth[5]  # the server already placed an earlier event of this kiosk there
    out = retime(stamps, anchors={}, received=PUSHED, provisioned=PAIRED, previous=previous)
    assert [t.time for t in out] == [max(t, previous) for t in truth]


# --- properties ------------------------------------------------------------------------------------

WRONG_CLOCKS = [timedelta(0), timedelta(seconds=-40), timedelta(days=-3), timedelta(days=365),
                datetime(1970, 1, 1, tzinfo=UTC) - PAIRED]
boot_plan = st.tuples(
    st.sampled_from(["stored", "synced", "none"]),       # what vouches for the boot's clock
    st.lists(st.integers(min_value=1, max_value=3600), min_size=1, max_size=5),  # seconds between its events
    st.sampled_from(WRONG_CLOCKS),                        # its wall clock, when not synced
    st.integers(min_value=1, max_value=5),                # which reading is synced (a "synced" boot)
)


@settings(max_examples=300, deadline=None)
@given(boots=st.lists(boot_plan, min_size=1, max_size=4), pushed_from_last_boot=st.booleans(),
       paired_after_s=st.integers(min_value=-3 * 86400, max_value=3 * 86400),
       previous_s=st.none() | st.integers(min_value=0, max_value=3600))
def test_a_vouched_clock_keeps_its_times_and_nothing_is_after_receipt_or_out_of_order(
        boots, pushed_from_last_boot, paired_after_s, previous_s):
    start = PAIRED - timedelta(days=2)
    stamps: list[Stamp] = []
    truth: list[datetime] = []
    vouched: list[bool] = []
    anchors: dict[str, Anchor] = {}
    true = start + timedelta(seconds=previous_s or 0)
    for b, (kind, gaps, wrong, synced_at) in enumerate(boots):
        boot, started = f"boot-{b}", true
        current = pushed_from_last_boot and b == len(boots) - 1
        for n, gap in enumerate(gaps):
            true += timedelta(seconds=gap)
            synced = kind == "synced" and n >= min(synced_at, len(gaps)) - 1
            stamps.append(reading(len(stamps) + 1, boot, started, true, true if synced else true + wrong, synced))
            truth.append(true)
            vouched.append(current or kind != "none")
        if kind == "stored":  # a push from this boot, some time after these events
            anchors[boot] = push_anchor(boot, started, at=true + timedelta(seconds=1))
    received = true + timedelta(seconds=5)
    if pushed_from_last_boot:
        anchors[stamps[-1].boot_id] = push_anchor(stamps[-1].boot_id, started, at=received)
    provisioned = start + timedelta(seconds=paired_after_s)
    previous = start if previous_s is not None else None

    out = retime(stamps, anchors=anchors, received=received, provisioned=provisioned, previous=previous)

    times = [t.time for t in out]
    assert times == sorted(times) and all(t <= received for t in times)
    for stamp, timing, true, kept in zip(stamps, out, truth, vouched, strict=True):
        if kept:
            assert abs(timing.time - true) <= timedelta(milliseconds=1), (stamp, timing, true)
            assert timing.quality is not TimeQuality.BOUNDED and timing.flags == ()
        else:
            assert timing.quality is TimeQuality.BOUNDED and timing.lower <= timing.time <= timing.upper
            if stamp.wall < provisioned:
                assert TimeFlag.BEFORE_PROVISIONING in timing.flags


any_reading = st.tuples(
    st.sampled_from(["a", "b", "c"]),                                   # boot
    st.integers(min_value=0, max_value=10**15),                          # monotonic ns
    st.none() | st.integers(min_value=-400 * 86400, max_value=400 * 86400),  # wall, seconds from the pairing
    st.booleans(),                                                       # synced
)


@settings(max_examples=300, deadline=None)
@given(readings=st.lists(any_reading, min_size=1, max_size=12),
       anchored=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=10**15)),
       received_s=st.integers(min_value=-86400, max_value=86400),
       previous_s=st.none() | st.integers(min_value=-86400, max_value=0),
       known_s=st.none() | st.integers(min_value=-86400, max_value=0))
def test_whatever_the_clocks_say_no_time_is_after_the_receipt_nor_out_of_sequence(
        readings, anchored, received_s, previous_s, known_s):
    received = PAIRED + timedelta(seconds=received_s)
    stamps = [Stamp(n + 1, boot, mono, None if wall is None else PAIRED + timedelta(seconds=wall), synced)
              for n, (boot, mono, wall, synced) in enumerate(readings)]
    anchors = {boot: Anchor(boot, mono, received - timedelta(seconds=1)) for boot, mono in anchored.items()}

    def at(seconds: int | None) -> datetime | None:
        return None if seconds is None else received + timedelta(seconds=seconds)

    out = retime(stamps, anchors=anchors, received=received, provisioned=PAIRED - timedelta(days=1),
                 previous=at(previous_s), known=at(known_s))
    times = [t.time for t in out]
    assert all(t <= received for t in times) and times == sorted(times)
    if previous_s is not None:
        assert times[0] >= at(previous_s)
