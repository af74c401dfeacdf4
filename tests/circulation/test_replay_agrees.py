"""The kiosk and the server are two uses of one circulation model: replaying a kiosk's own
events on the server yields the kiosk's own state, and raises no review.

A kiosk's day is generated (card taps, checkouts, renewals by re-scanning later, returns
with or without a card, damage, loss and finds reported, time moving forward) and run
through the kiosk's desk: the rules decide, the journal records. Its recorded events are
then re-timed and replayed as the server does it, purely (``circulation.retiming``,
``circulation.ledger``) and through the real ingest on a SQLite database.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bookcorner.central import db, ingest
from bookcorner.central.kiosks import add_kiosk
from bookcorner.circulation.events import Event
from bookcorner.circulation.ledger import LoanLedger
from bookcorner.circulation.model import ItemStatus
from bookcorner.circulation.outcomes import Outcome
from bookcorner.circulation.replay import ItemState, ReplayEvent
from bookcorner.circulation.retiming import Anchor, Stamp, parse_wall, retime
from bookcorner.circulation.rules import Ambiguity, Identified
from bookcorner.circulation.state import CirculationState
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import CirculationDesk, DataPaths
from bookcorner.protocol.messages import ClockReading, WireEvent
from tests.school import (
    ANDERSEN, CARDS, DAWEI, DICTIONARY, HONGLOUMENG, ITEMS, LEFT, LOST_CARD, MAGAZINE, MEIMEI, OLD_BOOK, SHUIHU,
    TEACHER, XIAOHONG, XIAOMING, XIYOUJI, at, reference,
)

KIOSK = "corner-a"
#: who taps: mostly children and staff who may check out; now and then a suspended child, one who
#: left, a card reported lost, a card nobody enrolled
TAPS = [CARDS[p] for p in (XIAOMING, XIAOHONG, MEIMEI, TEACHER)] * 4 + [
    CARDS[DAWEI], CARDS[LEFT], LOST_CARD.card_id, "0007777777"]
#: who reports a book damaged, lost or found: mostly those allowed to
REPORTERS = [CARDS[MEIMEI], CARDS[TEACHER]] * 3 + [CARDS[XIAOMING]]
#: what is scanned: mostly books that lend (labels, shared ISBNs, an ISBN-10), now and then a
#: reference book or a code the catalogue lacks
CODES = [XIYOUJI.barcode, HONGLOUMENG.barcode, SHUIHU.barcode, ANDERSEN[0].isbn13, OLD_BOOK.isbn10,
         MAGAZINE.barcode] * 3 + [DICTIONARY.barcode, "9787999999994"]

checkout = st.tuples(st.just("checkout"), st.sampled_from(TAPS), st.sampled_from(CODES))
checkin = st.tuples(st.just("return"), st.sampled_from([None, None, *TAPS]), st.sampled_from(CODES),
                      st.sampled_from(list(Ambiguity)))
report = st.tuples(st.sampled_from(["damaged", "lost", "found"]), st.sampled_from(REPORTERS), st.sampled_from(CODES))
#: minutes to the next act: a few, or days (renewals, overdue returns, the term's end)
wait = st.tuples(st.just("wait"), st.one_of(st.integers(0, 90), st.integers(1, 12).map(lambda d: d * 1440 + 7)))
#: the holder of the k-th open loan scans it again (a renewal, once a day has passed), or it
#: comes back with or without their card
again = st.tuples(st.sampled_from(["renew", "bring_back"]), st.integers(0, 20), st.booleans())
action = st.one_of(checkout, checkout, checkin, again, again, wait, wait, report)
CARD_OF = {patron.patron_id: card for patron, card in CARDS.items()}
day = st.lists(action, min_size=10, max_size=40)
start = st.integers(min_value=0, max_value=130)


@dataclass
class KioskRun:
    events: list[Event]
    state: CirculationState
    #: the kiosk's clocks when it pushes (what the server pairs with its receipt)
    clock: ClockReading


def run_kiosk(actions, start_days: int, root: Path) -> KioskRun:
    """The actions through the kiosk's desk, as the kiosk's screens drive it."""
    ReferenceStore(DataPaths(root).reference).save(reference(), "test-1", "Test school")
    clock = FixedClock(at(2026, 9, 1) + timedelta(days=start_days))
    with CirculationDesk(root, KIOSK, clock, segment_events=64) as desk:
        for act in actions:
            if act[0] == "wait":
                clock.advance(minutes=act[1])
                continue
            if act[0] in ("renew", "bring_back"):
                act = _on_loan(desk.state, *act)
                if act is None:
                    continue
            tap = act[1]
            who = desk.identify(tap) if tap is not None else None
            if not isinstance(who, Identified | None):
                continue  # a refused card: recorded, nothing more to do
            if act[0] == "checkout":
                desk.checkout(who, act[2])
            elif act[0] == "return":
                desk.checkin(act[2], who, act[3])
            else:
                report = {"damaged": desk.report_damaged, "lost": desk.report_lost, "found": desk.report_found}
                report[act[0]](who, act[2])
        events = list(desk.journal.events_after(0))
        state = desk.state
    reading = clock.read()
    return KioskRun(events, state, ClockReading(reading.boot_id, reading.monotonic_ns,
                                                 reading.wall.isoformat(timespec="milliseconds"), reading.synced))


def _on_loan(state: CirculationState, kind: str, k: int, with_card: bool) -> tuple | None:
    """The act on the k-th open loan, by its holder: a re-scan, or a return."""
    if not state.loans:
        return None
    loan = state.loans[sorted(state.loans)[k % len(state.loans)]]
    item = next(i for i in ITEMS if i.item_id == loan.item_id)
    code = item.barcode or item.isbn13
    if kind == "renew":
        return ("checkout", CARD_OF[loan.patron_id], code)
    return ("return", CARD_OF[loan.patron_id] if with_card else None, code, Ambiguity.OLDEST)


def kiosk_view(run: KioskRun) -> tuple[dict, dict]:
    loans = {i: (l.loan_id, l.patron_id, l.due, l.renewals) for i, l in run.state.loans.items()}
    return loans, {item.item_id: run.state.status_of(item) for item in ITEMS}


def server_view(items: dict[str, ItemState]) -> tuple[dict, dict]:
    catalogue = {item.item_id: item.status for item in ITEMS}
    loans = {i: (s.loan.loan_id, s.loan.patron_id, s.loan.due, s.loan.renewals) for i, s in items.items() if s.loan}
    return loans, {i: s.status or catalogue[i] for i, s in items.items()}


def checkout_times_agree(run: KioskRun, items: dict[str, ItemState]) -> None:
    """The server's re-timed lending time is the kiosk's wall clock (to its milliseconds)."""
    for item_id, loan in run.state.loans.items():
        server_loan = items[item_id].loan
        assert server_loan is not None and abs(server_loan.since - loan.since) < timedelta(milliseconds=5)


def replay_purely(run: KioskRun, received: datetime) -> tuple[dict[str, ItemState], LoanLedger]:
    """As central.ingest does it, without the database: re-time, then replay in order."""
    stamps = [Stamp(e.seq, e.boot_id, e.monotonic_ns, parse_wall(e.wall_time), e.clock_synced) for e in run.events]
    pushed = Anchor(run.clock.boot_id, run.clock.monotonic_ns, received)
    timings = retime(stamps, anchors={pushed.boot_id: pushed}, received=received, provisioned=received)
    items = {item.item_id: ItemState(item.item_id) for item in ITEMS}
    ledger = LoanLedger()
    for event, timing in zip(run.events, timings, strict=True):
        assert not timing.flags, f"the kiosk's own clock flagged: {timing}"
        done = ledger.replay(ReplayEvent(event.event_id, event.kiosk_id, event.seq, str(event.type),
                                         event.payload, timing.time), items)
        assert done.outcome is not Outcome.NEEDS_REVIEW, f"{event.type} {event.payload}: {done}"
    return items, ledger


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(day, start)
def test_the_servers_replay_of_a_kiosks_events_is_the_kiosks_own_state(actions, start_days):
    with tempfile.TemporaryDirectory() as folder:
        run = run_kiosk(actions, start_days, Path(folder))
    received = parse_wall(run.clock.wall_time)  # the push arrives as it is sent
    items, ledger = replay_purely(run, received)

    assert server_view(items) == kiosk_view(run)
    checkout_times_agree(run, items)
    # the ledger's loans still open are the loans the books are on (every loan began in this batch)
    still_open = {row[1]: (row[0], row[2], row[5], row[7]) for row in ledger.opened.values() if row[6] is None}
    assert still_open == server_view(items)[0] and not ledger.changed


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """A migrated central database with the kiosk paired (copied for each example: cheap)."""
    path = tmp_path_factory.mktemp("central") / "template.db"
    store = db.Store(f"sqlite:///{path}")
    store.migrate()
    add_kiosk(store, KIOSK)
    store.dispose()
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(day, start)
def test_the_real_ingest_of_a_kiosks_push_is_the_kiosks_own_state(template_db, actions, start_days):
    with tempfile.TemporaryDirectory() as folder:
        run = run_kiosk(actions, start_days, Path(folder) / "kiosk")
        assume(run.events)  # nothing to push
        path = Path(folder) / "central.db"
        shutil.copy(template_db, path)
        store = db.Store(f"sqlite:///{path}")
        try:
            batch = ingest.Batch(KIOSK, str(uuid.uuid4()), 1, run.events[-1].seq, run.clock,
                                 [WireEvent(**e.to_record()) for e in run.events])
            received = parse_wall(run.clock.wall_time)  # the push arrives as it is sent
            reply = ingest.ingest(store, batch, received.astimezone(UTC))
            with store.reading() as conn:
                items = ingest.load_items(conn, [item.item_id for item in ITEMS])
                reviews = conn.execute(select(func.count()).select_from(db.reviews)).scalar_one()
                kept = db.loans.c
                open_loans = {row.item_id: (row.loan_id, row.patron_id, row.due, row.renewals) for row in conn.execute(
                    select(kept.item_id, kept.loan_id, kept.patron_id, kept.due, kept.renewals)
                    .where(kept.returned_at.is_(None)))}
        finally:
            store.dispose()

    assert [r for r in reply.results if r.outcome == Outcome.NEEDS_REVIEW] == [] and reviews == 0
    assert reply.needs_review == 0 and reply.applied_seq == batch.to_seq
    assert server_view(items) == kiosk_view(run)
    checkout_times_agree(run, items)
    # the loans the reports read: those not returned are the books' open loans
    assert open_loans == kiosk_view(run)[0]
