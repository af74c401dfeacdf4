"""The server's replay and re-timing as pure functions (circulation.replay, circulation.retiming):
the rules a librarian would describe."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from bookcorner.circulation.events import decode_or_raw
from bookcorner.circulation.outcomes import Outcome, ReviewReason
from bookcorner.circulation.replay import ItemState, ReplayEvent, replay
from bookcorner.circulation.retiming import Anchor, Stamp, TimeFlag, TimeQuality, parse_wall, retime

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def event(kind: str, kiosk: str = "A", seq: int = 1, minutes: float = 0, **payload) -> ReplayEvent:
    return ReplayEvent(f"{kiosk}-{seq}", kiosk, seq, kind, decode_or_raw(kind, {"item_id": "I1", **payload}),
                       T0 + timedelta(minutes=minutes))


def checkout(patron: str, **kw) -> ReplayEvent:
    return event("loan.checked_out", patron_id=patron, due="2026-11-30", **kw)


@pytest.fixture
def items() -> dict[str, ItemState]:
    return {"I1": ItemState("I1")}


def test_a_checkout_and_its_return(items):
    assert replay(checkout("S01"), items).outcome is Outcome.APPLIED
    assert items["I1"].loan.patron_id == "S01" and items["I1"].loan.due == date(2026, 11, 30)
    back = replay(event("loan.returned", seq=2, minutes=5, loan_id="A-1"), items)
    assert back.outcome is Outcome.APPLIED and items["I1"].loan is None


def test_lending_a_book_on_loan_to_someone_else_closes_that_loan_first(items):
    replay(checkout("S01"), items)
    again = replay(checkout("S02", kiosk="B", minutes=10), items)
    assert again.outcome is Outcome.APPLIED_WITH_WARNING and again.warnings == ("returned_from_other",)
    assert items["I1"].loan.patron_id == "S02"


def test_a_return_of_a_book_not_on_loan_waits_for_review(items):
    done = replay(event("loan.returned"), items)
    assert done.outcome is Outcome.NEEDS_REVIEW and done.reason == ReviewReason.NOT_ON_LOAN


def test_news_older_than_the_items_last_change_elsewhere_waits_for_review(items):
    replay(checkout("S01", kiosk="B", minutes=30), items)
    late = replay(event("loan.returned", kiosk="A", minutes=10), items)
    assert late.outcome is Outcome.NEEDS_REVIEW and late.reason == ReviewReason.OLDER_THAN_ITEM_CHANGE
    assert items["I1"].loan.patron_id == "S01"  # not applied


def test_within_one_kiosk_the_sequence_is_the_order_whatever_the_clock(items):
    replay(checkout("S01", seq=5, minutes=30), items)
    earlier_clock = replay(event("loan.returned", seq=6, minutes=-600), items)  # its clock went back
    assert earlier_clock.outcome is Outcome.APPLIED
    older_seq = replay(checkout("S02", seq=4, minutes=60), items)
    assert older_seq.reason == ReviewReason.OLDER_THAN_ITEM_CHANGE


def test_renewals_lost_and_found_damage_and_repair(items):
    replay(checkout("S01"), items)
    renewed = replay(event("loan.renewed", seq=2, minutes=1, loan_id="A-1", due="2026-12-07"), items)
    assert renewed.outcome is Outcome.APPLIED and items["I1"].loan.renewals == 1
    assert replay(event("item.lost", seq=3, minutes=2), items).outcome is Outcome.APPLIED
    assert items["I1"].loan is None and items["I1"].status == "lost"
    assert replay(event("item.found", seq=4, minutes=3), items).outcome is Outcome.APPLIED
    assert replay(event("item.damaged", seq=5, minutes=4), items).outcome is Outcome.APPLIED
    assert items["I1"].status == "in_repair"
    assert replay(event("item.repaired", seq=6, minutes=5), items).outcome is Outcome.APPLIED
    stray = replay(event("loan.renewed", seq=7, minutes=6, due="2026-12-14"), items)
    assert stray.reason == ReviewReason.NOT_ON_LOAN


@pytest.mark.parametrize(("kind", "reason"), [
    ("shelf.rearranged", ReviewReason.UNKNOWN_EVENT_TYPE),
    ("journal.damage", ReviewReason.JOURNAL_DAMAGE),
])
def test_what_the_server_cannot_apply_is_kept_for_review(items, kind, reason):
    done = replay(event(kind), items)
    assert done.outcome is Outcome.NEEDS_REVIEW and done.reason == reason


@pytest.mark.parametrize("payload", [{"item_id": None}, {"patron_id": 7}, {"due": "next week"}])
def test_a_payload_that_does_not_say_enough_waits_for_review(items, payload):
    bad = ReplayEvent("e", "A", 1, "loan.checked_out", decode_or_raw("loan.checked_out", {
        "item_id": "I1", "patron_id": "S01", "due": "2026-11-30", **payload}), T0)
    assert replay(bad, items).reason == ReviewReason.INVALID_PAYLOAD


def test_records_of_refusals_and_unknown_codes_apply_as_records(items):
    assert replay(event("scan.refused", reason="overdue"), items).outcome is Outcome.APPLIED
    assert items["I1"].dirty is False


# --- clocks ---------------------------------------------------------------------------------------


def stamp(seq: int, boot: str, mono_s: float, wall: datetime | None, synced: bool = False) -> Stamp:
    return Stamp(seq, boot, int(mono_s * 1e9), wall, synced)


def test_the_current_boot_is_retimed_from_the_push():
    received = T0 + timedelta(hours=2)
    wrong = received - timedelta(days=3)  # fake-hwclock: 3 days behind
    stamps = [stamp(1, "b", 100, wrong - timedelta(seconds=900)), stamp(2, "b", 900, wrong - timedelta(seconds=100))]
    out = retime(stamps, anchors={"b": Anchor("b", 1000 * 10**9, received)}, received=received, provisioned=T0)
    assert [t.time for t in out] == [received - timedelta(seconds=900), received - timedelta(seconds=100)]
    assert {t.quality for t in out} == {TimeQuality.CORRECTED} and not any(t.flags for t in out)


def test_an_ntp_jump_inside_a_boot_is_undone_by_the_monotonic_clock():
    behind = timedelta(days=3)
    stamps = [stamp(1, "b", 10, T0 + timedelta(seconds=10) - behind),
              stamp(2, "b", 50, T0 + timedelta(seconds=50), synced=True)]
    out = retime(stamps, anchors={}, received=T0 + timedelta(hours=1), provisioned=T0 - timedelta(days=30))
    assert out[0].time == T0 + timedelta(seconds=10) and out[0].quality is TimeQuality.SYNCED


def test_a_boot_with_nothing_to_anchor_it_is_bounded_ordered_and_flagged():
    provisioned = T0 - timedelta(days=30)
    stamps = [stamp(1, "a", 5, T0, synced=True),
              stamp(2, "z", 5, T0 - timedelta(days=3)),                       # 3 days behind
              stamp(3, "z", 6, datetime(1970, 1, 1, tzinfo=UTC)),             # impossible, and backwards
              stamp(4, "y", 5, T0 + timedelta(days=365)),                     # a year ahead
              stamp(5, "c", 5, None)]                                         # unreadable
    received = T0 + timedelta(hours=1)
    out = retime(stamps, anchors={"c": Anchor("c", 5 * 10**9, received)}, received=received, provisioned=provisioned)
    assert out[1].quality is TimeQuality.BOUNDED and out[1].lower == T0 and out[1].upper == received
    assert out[1].flags == (TimeFlag.WENT_BACKWARDS,)
    assert out[2].flags == (TimeFlag.BEFORE_PROVISIONING,)
    assert TimeFlag.IN_THE_FUTURE in out[3].flags and out[3].time == received
    assert out[4].quality is TimeQuality.CORRECTED and out[4].time == received
    times = [t.time for t in out]
    assert times == sorted(times)  # the kiosk's order


def test_walls_are_read_with_their_offset_or_not_at_all():
    assert parse_wall("2026-11-23T12:05:00.000+08:00") == datetime(2026, 11, 23, 4, 5, tzinfo=UTC)
    assert parse_wall("2026-11-23T12:05:00") is None and parse_wall("yesterday") is None
