"""Old formats still decode: what kiosks and servers of the release before typed events
wrote (tests/data/formats, made with that release's code by tests/data/formats/make.py) is
read by this code into the typed payloads, replays to the same kiosk state, and ingests
into a real central database (SQLite) with the same outcomes as that release's server had.
The old name of the checkin (``loan.returned``) decodes as ``loan.checked_in``; the
central database's rows stored under it are renamed by migration 0006 (and back on
downgrade)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, timedelta
from pathlib import Path

import msgspec
from alembic import command
from sqlalchemy import func, select, update

from bookcorner.central import db, ingest
from bookcorner.central.imports import import_export
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.migrations import config
from bookcorner.central.services.reviews import end_of_day
from bookcorner.circulation.events import (
    OLD_NAMES,
    PAYLOAD_TYPES,
    Checkin,
    EventType,
    UnknownPayload,
    decode_payload,
    payload_builtins,
)
from bookcorner.circulation.retiming import parse_wall
from bookcorner.circulation.state import CirculationState, apply
from bookcorner.journal.journal import JournalReader
from bookcorner.protocol.credentials import signing_key
from bookcorner.protocol.messages import PushRequest
from tests.school import ZONE

FORMATS = Path(__file__).parent / "data" / "formats"
KIOSK = "corner-fmt"
TOKEN = "format-fixture-token"  # the credential the fixture's export was signed with (make.py)
EXPECTED = json.loads((FORMATS / "expected.json").read_text())


def current(name: str) -> str:
    return str(OLD_NAMES.get(name, name))


#: event types that came after the fixtures were written (no old kiosk wrote them)
ADDED_SINCE = {"stocktake.started", "stocktake.scanned", "stocktake.finished"}


def test_the_fixtures_hold_every_event_type_under_the_old_names():
    recorded = {e["type"] for e in EXPECTED["events"]}
    assert "loan.returned" in recorded and "loan.checked_in" not in recorded
    assert {current(t) for t in recorded} == {str(t) for t in EventType} - ADDED_SINCE


def test_an_old_journal_decodes_to_the_typed_payloads_and_replays_to_the_same_state(tmp_path):
    journal = tmp_path / "journal"
    shutil.copytree(FORMATS / "journal", journal)
    events = list(JournalReader(journal).events_after(0))
    assert [e.seq for e in events] == [e["seq"] for e in EXPECTED["events"]]
    for event, recorded in zip(events, EXPECTED["events"], strict=True):
        assert event.type is EventType(current(recorded["type"]))
        assert type(event.payload) is PAYLOAD_TYPES[event.type], event
        # nothing of what the kiosk recorded is lost: the typed payload is the recorded one
        assert json.loads(msgspec.json.encode(payload_builtins(event.payload))) == recorded["payload"], event.seq
    returns = [e for e in events if e.type is EventType.CHECKED_IN]
    assert returns and all(isinstance(e.payload, Checkin) for e in returns)
    assert [(e.payload.with_card, e.payload.implicit) for e in returns] == [
        (False, False), (True, False), (False, True), (True, False)]

    state = CirculationState()
    for event in events:
        state = apply(state, event)
    want = EXPECTED["kiosk_state"]
    assert {i: [l.loan_id, l.patron_id, l.due.isoformat(), l.renewals] for i, l in state.loans.items()} == want["loans"]
    assert {i: str(s) for i, s in state.item_status.items()} == want["item_status"]
    assert sorted(state.enrolled_cards) == want["enrolled_cards"]
    assert sorted(state.registered_items) == want["registered_items"]
    assert state.last_seq == want["last_seq"]


def test_a_type_this_code_does_not_know_keeps_its_raw_payload():
    assert decode_payload("shelf.rearranged", {"shelf": "B", "books": [1, 2]}) == UnknownPayload(
        {"shelf": "B", "books": [1, 2]})


def _central(tmp_path: Path) -> db.Store:
    store = db.Store(f"sqlite:///{tmp_path / 'central.db'}")
    store.migrate()
    add_kiosk(store, KIOSK)
    return store


def _what_the_server_made(store: db.Store) -> dict:
    with store.reading() as conn:
        stored = [dict(r._mapping) for r in conn.execute(
            select(db.events.c.seq, db.events.c.type, db.events.c.outcome, db.events.c.reason, db.events.c.payload)
            .order_by(db.events.c.seq))]
        reviews = sorted(r.reason for r in conn.execute(select(db.reviews.c.reason)))
        kept = db.loans.c
        loans = sorted([r.item_id, r.loan_id, r.patron_id, str(r.due), r.renewals, r.returned_at is not None]
                       for r in conn.execute(select(kept.item_id, kept.loan_id, kept.patron_id, kept.due,
                                                    kept.renewals, kept.returned_at)))
    return {"stored": [{**s, "payload": json.loads(s["payload"])} for s in stored], "reviews": reviews, "loans": loans}


def _expected_server() -> dict:
    want = EXPECTED["ingest"]
    # the old name is stored under the new one
    return {"stored": [{**s, "type": current(s["type"])} for s in want["stored"]], "reviews": want["reviews"],
            "loans": want["loans"]}


def test_an_old_kiosks_push_ingests_with_the_same_outcomes(tmp_path):
    push = msgspec.json.decode((FORMATS / "push.json").read_bytes(), type=PushRequest)
    assert "loan.returned" in {e.type for e in push.events}
    store = _central(tmp_path)
    try:
        received = parse_wall(push.clock.wall_time) + timedelta(seconds=1)
        reply = ingest.ingest(store, ingest.Batch(KIOSK, push.batch_id, push.from_seq, push.to_seq, push.clock,
                                                  push.events, journal=push.journal), received.astimezone(UTC))
        want = EXPECTED["ingest"]
        assert (reply.applied_seq, reply.needs_review) == (want["applied_seq"], want["needs_review"])
        assert [{"seq": r.seq, "outcome": str(r.outcome), "reason": r.reason, "warnings": r.warnings}
                for r in reply.results] == want["results"]
        assert _what_the_server_made(store) == _expected_server()

        # the end of the day counts the old kiosk's returns as returns
        day = parse_wall(push.clock.wall_time).astimezone(ZONE).date()
        _corners, movements = end_of_day(store, day, ZONE)
        assert sum(m.kind == "loan.checked_in" for m in movements) == 4

        # a server not yet upgraded (revision 0005) stored the old name; the migration renames it, and back
        with store.writing() as conn:
            command.downgrade(config(conn), "0005")
        assert _types(store) >= {"loan.returned"} and "loan.checked_in" not in _types(store)
        with store.writing() as conn:
            command.upgrade(config(conn), "head")
        assert "loan.returned" not in _types(store)
        assert _what_the_server_made(store) == _expected_server()
    finally:
        store.dispose()


def _types(store: db.Store) -> set[str]:
    with store.reading() as conn:
        return set(conn.execute(select(db.events.c.type).group_by(db.events.c.type)).scalars())


def test_an_old_kiosks_usb_export_imports_with_the_same_outcomes(tmp_path):
    store = _central(tmp_path)
    try:
        with store.writing() as conn:  # the kiosk's credential is the one the fixture was signed with
            conn.execute(update(db.kiosks).where(db.kiosks.c.kiosk_id == KIOSK)
                         .values(signing_key=signing_key(TOKEN).hex()))
        done = import_export(store, (FORMATS / "export.bcx").read_bytes())
        results = EXPECTED["ingest"]["results"]
        assert done.applied_seq == EXPECTED["ingest"]["applied_seq"]
        [chunk] = done.chunks
        assert (chunk.applied, chunk.applied_with_warning, chunk.needs_review) == (
            sum(r["outcome"] == "applied" for r in results),
            sum(r["outcome"] == "applied_with_warning" for r in results),
            sum(r["outcome"] == "needs_review" for r in results))
        made = _what_the_server_made(store)
        assert [(s["seq"], s["type"], s["payload"]) for s in made["stored"]] == [
            (s["seq"], s["type"], s["payload"]) for s in _expected_server()["stored"]]
        assert made["loans"] == EXPECTED["ingest"]["loans"]
        with store.reading() as conn:
            assert conn.execute(select(func.count()).select_from(db.events)).scalar_one() == len(results)
    finally:
        store.dispose()
