"""The circulation desk answers only for what is on disk, and rebuilds what it knew."""

from __future__ import annotations

import signal
import resource

import pytest

from bookcorner.circulation.codes import Source
from bookcorner.circulation.rules import Identified, Reason
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.journal.storage import StoreWriteError
from bookcorner.kiosk.desk import CirculationDesk, DataPaths
from tests.school import CARDS, MONDAY, XIAOMING, XIYOUJI, HONGLOUMENG, reference


@pytest.fixture
def data_dir(tmp_path):
    ReferenceStore(DataPaths(tmp_path).reference).save(reference(), "test-1", "Test school")
    return tmp_path


def open_desk(data_dir, clock=None) -> CirculationDesk:
    return CirculationDesk(data_dir, "corner-a", clock or FixedClock(MONDAY), segment_events=16)


def test_a_loan_is_in_the_journal_before_the_desk_answers_and_survives_a_restart(data_dir):
    with open_desk(data_dir) as desk:
        child = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        assert isinstance(child, Identified)
        recorded = desk.checkout(child, XIYOUJI.barcode)
        assert recorded.ok and [e.seq for e in recorded.events] == [1]
        on_disk = list(desk.journal.events_after(0))
        assert [e.event_id for e in on_disk] == [recorded.events[0].event_id]
    with open_desk(data_dir) as desk:
        assert desk.state.loan_of(XIYOUJI.item_id).loan_id == recorded.events[0].event_id
        view = desk.patron_view(XIAOMING)
        assert view.allowance.may_checkout == 1 and [l.item_id for l in view.loans] == [XIYOUJI.item_id]


def test_the_state_rebuilt_from_the_journal_matches_the_live_one_across_many_segments(data_dir):
    clock = FixedClock(MONDAY)
    with open_desk(data_dir, clock) as desk:
        child = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        for _ in range(30):
            desk.checkout(child, XIYOUJI.barcode)
            desk.checkout(child, HONGLOUMENG.barcode)
            desk.checkin(XIYOUJI.barcode)
            clock.advance(hours=1)
        live = desk.state
    with open_desk(data_dir, clock) as desk:
        assert desk.state.loans == live.loans and desk.state.last_seq == live.last_seq


def test_when_the_disk_refuses_the_desk_changes_nothing_and_says_so(data_dir):
    with open_desk(data_dir) as desk:
        child = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        hot = max(desk.paths.journal.glob("seg-*.log"))
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (hot.stat().st_size, hard))
            with pytest.raises(StoreWriteError, match="disk is full"):
                desk.checkout(child, XIYOUJI.barcode)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)
        assert desk.state.loan_of(XIYOUJI.item_id) is None
        # the child scans again once the disk has room: it works, numbered without a gap
        again = desk.checkout(child, XIYOUJI.barcode)
        assert again.ok and again.events[0].seq == 1


def test_a_new_snapshot_from_the_server_is_taken_up_with_the_local_events_on_top(data_dir):
    with open_desk(data_dir) as desk:
        child = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        desk.checkout(child, XIYOUJI.barcode)
        assert desk.refresh_reference() is False
        ReferenceStore(desk.paths.reference).save(reference(), "test-2", "Test school")
        assert desk.refresh_reference() is True
        assert desk.reference_version == "test-2"
        assert desk.state.loan_of(XIYOUJI.item_id) is not None


def test_unknown_cards_are_recorded_for_the_librarian(data_dir):
    with open_desk(data_dir) as desk:
        outcome = desk.identify("0009999999", Source.CARD_READER)
        assert not isinstance(outcome, Identified)
        assert outcome.decision.result.reason is Reason.CARD_UNKNOWN
        assert [e.type.value for e in outcome.events] == ["scan.unknown_card"]


def test_a_restart_starts_from_the_checkpoint_and_gets_the_same_state(data_dir):
    from bookcorner.kiosk.checkpoint import CheckpointStore

    clock = FixedClock(MONDAY)
    with open_desk(data_dir, clock) as desk:
        child = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        for _ in range(20):
            desk.checkout(child, XIYOUJI.barcode)
            desk.checkin(XIYOUJI.barcode)
        desk.checkout(child, HONGLOUMENG.barcode)
        live = desk.state
    saved = CheckpointStore(DataPaths(data_dir).state).load()
    assert saved is not None and saved.state.last_seq == live.last_seq == 41
    with open_desk(data_dir, clock) as desk:
        assert desk.state.loans == live.loans


def test_a_checkpoint_that_does_not_match_the_journal_is_not_trusted(data_dir):
    import shutil

    clock = FixedClock(MONDAY)
    with open_desk(data_dir, clock) as desk:
        child = desk.identify(CARDS[XIAOMING], Source.CARD_READER)
        desk.checkout(child, XIYOUJI.barcode)
    # the journal is replaced (restored from elsewhere, repaired...): the checkpoint names an event it lacks
    shutil.rmtree(DataPaths(data_dir).journal)
    with open_desk(data_dir, clock) as desk:
        assert desk.state.loan_of(XIYOUJI.item_id) is None
    (DataPaths(data_dir).state / "state.db").write_bytes(b"garbage")
    with open_desk(data_dir, clock) as desk:
        assert desk.state.loans == {}


def test_a_card_enrolled_and_a_book_registered_at_the_kiosk_survive_a_restart(tmp_path):
    from bookcorner.circulation.model import Card, Patron, Role
    from bookcorner.circulation.reference import build_reference

    base = reference()
    librarian = Patron("L99", "薛老师", Role.LIBRARIAN)
    ref = build_reference([*base.patrons.values(), librarian], [*base.cards.values(), Card("0001000077", "L99")],
                          base.items.values(), base.policy, base.calendar, base.timetable)
    ReferenceStore(DataPaths(tmp_path).reference).save(ref, "test-1", "Test school")
    with open_desk(tmp_path) as desk:
        boss = desk.identify("0001000077")
        assert desk.enrol_card(boss, "0005550001", XIAOMING.patron_id).ok
        registered = desk.register_item(boss, "9787544253994", "活着")
        assert registered.ok
        child = desk.identify("0005550001")
        assert isinstance(child, Identified) and desk.checkout(child, "9787544253994").ok
    for _ in range(2):  # from the checkpoint, then from a full replay
        with open_desk(tmp_path) as desk:
            child = desk.identify("0005550001")
            assert isinstance(child, Identified) and child.patron == XIAOMING
            assert desk.state.loan_of(registered.decision.result.item_id).patron_id == XIAOMING.patron_id
        (DataPaths(tmp_path).state / "state.db").unlink(missing_ok=True)
