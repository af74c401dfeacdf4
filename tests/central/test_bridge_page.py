"""The replay bridge on the dashboard over a real socket: the librarian sets the school's
library system up through the form (a wrong port is refused field by field; the password
is never shown again, nor written to the audit log, nor pulled by kiosks), a kiosk's loan
pushed over HTTP reaches the library system (tests/bridge/peer.py) through the server's own
keeper, and the page says what was sent, what it refused with its own words, and why it
cannot reach it."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord, ReferenceDocument
from tests.bridge.peer import Book, LibrarySystem, Peer
from tests.central.pushes import KioskClient

FORM = {"enabled": "on", "host": "127.0.0.1", "login": "bookcorner", "password": "s3cret-bridge",
        "location": "三(2)班角", "institution": "阳光小学", "encoding": "gb18030", "timeout_s": "5",
        "card_from": "", "card_to": "", "item_from": "", "item_to": ""}


def states(page: str) -> list[str]:
    return re.findall(r'<tr data-entry="\d+" data-status="(\w+)"', page)


def lend(kiosk: KioskClient, item: str, patron: str, card: str):
    return kiosk.event("loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": card, "code": item,
                                            "due": str(date.today() + timedelta(days=14)), "warnings": []})


def test_the_library_system_set_up_on_the_dashboard_gets_a_kiosks_loan(board, librarian):
    client, _name, _token = librarian
    load_document(board.store, ReferenceDocument(
        school="阳光小学", patrons=[PatronRecord(patron_id="BR1", name="王瑋東", role="student", class_name="三(2)班")],
        cards=[CardRecord(card_id="0077001", patron_id="BR1")],
        items=[ItemRecord(item_id="BRI1", title="東方墊子的故事", barcode="3077000001"),
               ItemRecord(item_id="BRI2", title="小王子", barcode="3077000002")]))
    system = LibrarySystem("bookcorner", "s3cret-bridge", {"0077001"}, {"3077000001": Book("東方墊子的故事")})
    peer = Peer(system, "gb18030").start()
    try:
        assert "id=\"bridge-state\"" in client.get("/library-system").text
        wrong = client.post("/library-system/settings", {**FORM, "port": "70000", "csrf": client.csrf()})
        assert wrong.status_code == 422 and 'id="error-port"' in wrong.text
        saved = client.post("/library-system/settings", {**FORM, "port": str(peer.port), "csrf": client.csrf()})
        assert saved.status_code == 303
        page = client.get("/library-system").text
        assert "s3cret-bridge" not in page and "(saved: leave empty to keep it)" in page
        kiosk = KioskClient(board.url, "k-bridge", board.add_kiosk("k-bridge"))
        assert kiosk.push([lend(kiosk, "BRI1", "BR1", "0077001"), lend(kiosk, "BRI2", "BR1", "0077001")]).status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and states(client.get("/library-system").text) != ["refused", "sent"]:
            time.sleep(0.3)
        page = client.get("/library-system").text
        assert states(page) == ["refused", "sent"]  # newest first
        assert "册条码号不存在 unknown item" in page
        assert [a[:3] for a in system.applied] == [("checkout", "3077000001", "0077001")]
        pulled = requests.get(f"{board.url}/v1/reference", params={"since": 0},
                              headers=bearer(board.add_kiosk("k-bridge-pull")), timeout=10)
        assert pulled.status_code == 200 and "s3cret-bridge" not in pulled.text and str(peer.port) not in pulled.text
        reviews = client.get("/reviews").text
        assert "册条码号不存在 unknown item" in reviews
    finally:
        peer.stop()
    with board.store.reading() as conn:
        audit = conn.execute(select(db.audit_log.c.detail).where(db.audit_log.c.action == "sip2.bridge")).scalars().all()
    assert audit and all("s3cret-bridge" not in detail and "***" in detail for detail in audit)
    # the library system goes away: the page says why the next loan waits
    assert kiosk.push([kiosk.event("loan.checked_in", {"item_id": "BRI1", "with_card": False, "implicit": False,
                                                       "warnings": []})]).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and 'id="last-error"' not in client.get("/library-system").text:
        time.sleep(0.3)
    page = client.get("/library-system").text
    assert "cannot connect" in page and states(page)[0] == "waiting"
