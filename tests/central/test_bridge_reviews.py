"""A loan kept for review, corrected by the librarian on the dashboard of a real server, reaches
the school's library system (tests/bridge/peer.py) through the server's own bridge keeper,
once, after the loan it closes (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from datetime import date, timedelta

from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord, ReferenceDocument
from tests.bridge.peer import Book, LibrarySystem, Peer
from tests.central.pushes import KioskClient
from tests.central.test_bridge_page import FORM


def _sent(board) -> list[tuple[str, str, str]]:
    with board.store.reading() as conn:
        return [tuple(r) for r in conn.execute(select(db.sip2_outbox.c.kind, db.sip2_outbox.c.item_id,
                                                      db.sip2_outbox.c.status).order_by(db.sip2_outbox.c.outbox_id))]


def _until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.3)


def test_a_return_corrected_on_the_dashboard_reaches_the_library_system_once(board, librarian):
    client, _name, _token = librarian
    load_document(board.store, ReferenceDocument(
        school="阳光小学", patrons=[PatronRecord(patron_id="RV1", name="李雷", role="student", class_name="三(2)班")],
        cards=[CardRecord(card_id="0088001", patron_id="RV1")],
        items=[ItemRecord(item_id="RVI1", title="草房子", barcode="3088000001"),
               ItemRecord(item_id="RVI2", title="草房子", barcode="3088000002")]))
    system = LibrarySystem("bookcorner", "s3cret-bridge", {"0088001"},
                           {"3088000001": Book("草房子"), "3088000002": Book("草房子")})
    peer = Peer(system, "utf-8").start()
    try:
        assert client.post("/library-system/settings", {**FORM, "encoding": "utf-8", "port": str(peer.port),
                                                        "csrf": client.csrf()}).status_code == 303
        kiosk = KioskClient(board.url, "k-reviewed", board.add_kiosk("k-reviewed"))
        kiosk.push([kiosk.event("loan.checked_out", {"item_id": "RVI1", "patron_id": "RV1", "card_id": "0088001",
                                                     "code": "3088000001", "due": str(date.today() + timedelta(days=14)),
                                                     "warnings": []})])
        kiosk.push([kiosk.event("loan.checked_in", {"item_id": "RVI2", "with_card": False, "implicit": False,
                                                    "warnings": []})])  # the other copy scanned: kept for review
        with board.store.reading() as conn:
            (review,) = conn.execute(select(db.reviews.c.review_id).where(db.reviews.c.kiosk_id == "k-reviewed",
                                                                          db.reviews.c.resolved_at.is_(None))).scalars()
        _until(lambda: _sent(board) == [("checkout", "RVI1", "sent")])
        assert _sent(board) == [("checkout", "RVI1", "sent")]

        token = client.csrf()
        assert client.post(f"/reviews/{review}", {"csrf": token, "decision": "correct", "item_id": "RVI1",
                                                  "patron_id": "", "note": "two copies"}).status_code == 303
        assert client.post(f"/reviews/{review}", {"csrf": token, "decision": "correct", "item_id": "RVI1",
                                                  "patron_id": "", "note": "again"}).status_code == 409
        _until(lambda: len(system.applied) == 2)
        time.sleep(1.0)  # a round more: nothing else arrives
    finally:
        peer.stop()
    assert [a[:3] for a in system.applied] == [("checkout", "3088000001", "0088001"),
                                               ("checkin", "3088000001", "0088001")]
    assert _sent(board) == [("checkout", "RVI1", "sent"), ("checkin", "RVI1", "sent")]
