"""Writes the format fixtures in this folder with the code of the commit it runs on.

Run once, on commit a76b905 (before event payloads were typed), so that the files are what
kiosks and servers of that release wrote (the desk's calls had that release's names; they
were renamed here since, with the rest of the code):

    PYTHONPATH=$PWD python tests/data/formats/make.py

- ``journal/``: a kiosk's TinyDB journal with every event type, made through the real
  desk (the rules decide, the journal records), one segment sealed, and a damage report;
- ``push.json``: the body of the push the sync daemon sends for that journal;
- ``export.bcx`` (signed with ``TOKEN``): the USB export of the same events;
- ``expected.json``: what the code of that commit made of them: each event's type and
  payload as recorded, the kiosk's state after them, and the outcome of ingesting the
  push into a fresh central database (SQLite).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, timedelta
from pathlib import Path

import msgspec
from sqlalchemy import select

from bookcorner.central import db, ingest
from bookcorner.central.kiosks import add_kiosk
from bookcorner.circulation.rules import Ambiguity, Identified
from bookcorner.circulation.retiming import parse_wall
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import Journal, JournalReader
from bookcorner.circulation.state import CirculationState, apply
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import CirculationDesk, DataPaths
from bookcorner.protocol.credentials import signing_key
from bookcorner.protocol.export import ExportBody, seal
from bookcorner.protocol.messages import ClockReading, PushRequest, WireEvent
from bookcorner.sync.batches import journal_identity, next_batch
from tests.school import ANDERSEN, CARDS, DICTIONARY, HONGLOUMENG, MEIMEI, SHUIHU, TEACHER, XIAOHONG, XIAOMING, \
    XIYOUJI, at, reference

HERE = Path(__file__).parent
KIOSK = "corner-fmt"
TOKEN = "format-fixture-token"


def librarian_reference():
    """The test school, with the teacher as the librarian (who may enrol cards and register books)."""
    from dataclasses import replace

    from bookcorner.circulation.model import Role
    from bookcorner.circulation.reference import build_reference
    from tests.school import CALENDAR, ITEMS, LOST_CARD, TIMETABLE
    from bookcorner.circulation.model import Card
    patrons = [replace(p, role=Role.LIBRARIAN) if p is TEACHER else p for p in CARDS]
    cards = [Card(card, patron.patron_id) for patron, card in CARDS.items()] + [LOST_CARD]
    return build_reference(patrons=patrons, cards=cards, items=ITEMS, calendar=CALENDAR, timetable=TIMETABLE)


def kiosk_day(root: Path, clock: FixedClock) -> None:
    ReferenceStore(DataPaths(root).reference).save(librarian_reference(), "fmt-1", "Test school")
    with CirculationDesk(root, KIOSK, clock, segment_events=8) as desk:
        ming = desk.identify(CARDS[XIAOMING])
        hong = desk.identify(CARDS[XIAOHONG])
        mei = desk.identify(CARDS[MEIMEI])
        teacher = desk.identify(CARDS[TEACHER])
        assert all(isinstance(w, Identified) for w in (ming, hong, mei, teacher))
        desk.identify("0007777777")                                   # scan.unknown_card
        desk.checkout(ming, XIYOUJI.barcode)                             # loan.checked_out
        desk.checkout(ming, "9787999999994")                             # scan.unknown_item
        desk.checkout(ming, "%%garbage%%")                               # scan.unreadable
        desk.checkout(ming, DICTIONARY.barcode)                          # scan.refused (reference only)
        desk.checkout(ming, HONGLOUMENG.barcode)
        desk.checkout(ming, SHUIHU.barcode)                              # scan.refused (limit, with loans listed)
        clock.advance(minutes=2 * 1440)
        desk.checkout(ming, XIYOUJI.barcode)                             # loan.renewed
        desk.checkin(XIYOUJI.barcode)                                # loan.returned, no card
        desk.checkout(hong, ANDERSEN[0].isbn13)
        desk.checkin(ANDERSEN[0].isbn13, hong, Ambiguity.OLDEST)     # loan.returned, with the card
        desk.checkout(hong, SHUIHU.barcode)
        desk.report_damaged(mei, SHUIHU.barcode, "torn cover")         # implicit return + item.damaged
        desk.report_found(mei, SHUIHU.barcode)                         # item.repaired
        desk.report_lost(mei, HONGLOUMENG.barcode, "not found")        # item.lost (on loan)
        desk.report_found(mei, HONGLOUMENG.barcode, "under a desk")    # item.found
        desk.report_lost(teacher, XIYOUJI.barcode)
        desk.checkout(hong, XIYOUJI.barcode)                             # item.found + checkout of a lost book
        desk.enrol_card(teacher, "0008888888", XIAOMING.patron_id, replace_other_cards=True)  # card.enrolled
        desk.register_item(teacher, "9787533259563", "窗边的小豆豆", author="黑柳彻子",
                           call_number="I313.45/1")                  # item.registered
        clock.advance(minutes=30)
        desk.checkin(XIYOUJI.barcode, hong)


def damage_and_repair(journal_dir: Path, clock: FixedClock) -> None:
    """One flipped byte in the hot segment: reopening salvages the rest and records journal.damage."""
    hot = max(journal_dir.glob("seg-*.log"), key=lambda p: int(p.stem.split("-")[1]))
    lines = hot.read_bytes().split(b"\n")
    lines[2] = lines[2][:30] + b"X" + lines[2][31:]
    hot.write_bytes(b"\n".join(lines))
    with Journal(journal_dir, KIOSK, clock, segment_events=8):
        pass
    for kept in journal_dir.parent.rglob("*"):  # the damaged copy kept aside is not part of the fixture
        if kept.is_file() and "damaged" in kept.parts and kept.parent != journal_dir:
            kept.unlink()


def main() -> None:
    work = Path(tempfile.mkdtemp())
    clock = FixedClock(at(2026, 9, 14, 12, 5), synced=True)
    root = work / "kiosk"
    kiosk_day(root, clock)
    damage_and_repair(DataPaths(root).journal, clock)

    target = HERE / "journal"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(DataPaths(root).journal, target, ignore=shutil.ignore_patterns("damaged", "writer.lock"))

    reading = clock.read()
    wire_clock = ClockReading(reading.boot_id, reading.monotonic_ns, reading.wall.isoformat(timespec="milliseconds"),
                              reading.synced)
    batch = next_batch(target, 0, 10**6)
    push = PushRequest(kiosk_id=KIOSK, batch_id="fmt-push-1", from_seq=batch.from_seq, to_seq=batch.to_seq,
                       clock=wire_clock, events=[WireEvent(**r) for r in batch.events], waiting=len(batch.events),
                       journal=journal_identity(target))
    (HERE / "push.json").write_bytes(msgspec.json.encode(push))
    body = ExportBody(kiosk_id=KIOSK, batch_id=f"usb-{batch.from_seq}-{batch.to_seq}-fixture", clock=wire_clock,
                      from_seq=batch.from_seq, to_seq=batch.to_seq, events=push.events, journal=push.journal)
    (HERE / "export.bcx").write_bytes(seal(body, signing_key(TOKEN), reading.wall.isoformat(timespec="seconds")))

    # what this release's server made of the push
    store = db.Store(f"sqlite:///{work / 'central.db'}")
    store.migrate()
    add_kiosk(store, KIOSK)
    received = parse_wall(wire_clock.wall_time) + timedelta(seconds=1)
    reply = ingest.ingest(store, ingest.Batch(KIOSK, push.batch_id, push.from_seq, push.to_seq, push.clock,
                                              push.events, journal=push.journal), received.astimezone(UTC))
    with store.reading() as conn:
        stored = [dict(r._mapping) for r in conn.execute(
            select(db.events.c.seq, db.events.c.type, db.events.c.outcome, db.events.c.reason, db.events.c.payload)
            .order_by(db.events.c.seq))]
        reviews = sorted(r.reason for r in conn.execute(select(db.reviews.c.reason)))
        kept = db.loans.c
        loans = sorted([r.item_id, r.loan_id, r.patron_id, str(r.due), r.renewals, r.returned_at is not None]
                       for r in conn.execute(select(kept.item_id, kept.loan_id, kept.patron_id, kept.due,
                                                    kept.renewals, kept.returned_at)))
    store.dispose()

    state = CirculationState()
    for event in JournalReader(target).events_after(0):
        state = apply(state, event)
    kiosk_state = {
        "loans": {i: [l.loan_id, l.patron_id, l.due.isoformat(), l.renewals] for i, l in sorted(state.loans.items())},
        "item_status": {i: str(s) for i, s in sorted(state.item_status.items())},
        "enrolled_cards": sorted(state.enrolled_cards),
        "registered_items": sorted(state.registered_items),
        "last_seq": state.last_seq,
    }
    expected = {
        "made_with": "a76b905",
        "events": [{"seq": e.seq, "type": e.type, "payload": e.payload} for e in push.events],
        "kiosk_state": kiosk_state,
        "ingest": {
            "applied_seq": reply.applied_seq, "needs_review": reply.needs_review,
            "results": [{"seq": r.seq, "outcome": str(r.outcome), "reason": r.reason, "warnings": r.warnings}
                        for r in reply.results],
            "stored": [{**s, "payload": json.loads(s["payload"])} for s in stored],
            "reviews": reviews,
            "loans": loans,
        },
    }
    (HERE / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1, default=str) + "\n")
    shutil.rmtree(work)
    print(f"{len(push.events)} events: {sorted({e.type for e in push.events})}", file=sys.stderr)


if __name__ == "__main__":
    main()
