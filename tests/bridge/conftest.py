"""A central database of the test's own with a small school (cards and barcodes), a kiosk
to record loans at, and the school's library system (tests/bridge/peer.py) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from bookcorner.central import db
from bookcorner.central.ingest import Batch, ingest
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord, ReferenceDocument
from tests.bridge.peer import Book, LibrarySystem
from tests.central.harness import database
from tests.central.pushes import KioskClient

PATRONS = [(f"S{n}", f"00099900{n:02d}", name) for n, name in
           enumerate(["王瑋東", "李雷", "韩梅梅", "张伟", "刘洋", "陈墊", "赵六", "孙七", "周八", "吴九"], start=1)]
ITEMS = [(f"I{n}", f"307320009{n:05d}", title) for n, title in
         enumerate(["東方墊子的故事", "小王子", "夏洛的网", "西游记", "草房子", "十万个为什么", "窗边的小豆豆",
                    "城南旧事", "青铜葵花", "稻草人", "安徒生童话", "格林童话"], start=1)]


@dataclass
class School:
    store: db.Store
    kiosk: KioskClient

    def record(self, *events) -> None:
        request = self.kiosk.request(list(events))
        ingest(self.store, Batch(request.kiosk_id, request.batch_id, request.from_seq, request.to_seq,
                                 request.clock, request.events), db.now())

    def checkout(self, item: str, patron: str, days: int = 14):
        card = {p: c for p, c, _ in PATRONS}[patron]
        return self.kiosk.event("loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": card,
                                                     "code": item, "due": str(date.today() + timedelta(days=days)),
                                                     "warnings": []})

    def checkin(self, item: str):
        return self.kiosk.event("loan.checked_in", {"item_id": item, "with_card": False, "implicit": False,
                                                    "warnings": []})

    def renew(self, item: str, patron: str, days: int = 28, renewal: int = 1):
        return self.kiosk.event("loan.renewed", {"item_id": item, "patron_id": patron, "renewal": renewal,
                                                 "due": str(date.today() + timedelta(days=days))})


@pytest.fixture
def school(tmp_path) -> Iterator[School]:
    with database("sqlite", tmp_path) as url:
        store = db.Store(url, pool_size=2)
        store.migrate()
        load_document(store, ReferenceDocument(
            school="阳光小学",
            patrons=[PatronRecord(patron_id=p, name=name, role="student", class_name="三(2)班")
                     for p, _, name in PATRONS],
            cards=[CardRecord(card_id=card, patron_id=p) for p, card, _ in PATRONS],
            items=[ItemRecord(item_id=i, title=title, barcode=code) for i, code, title in ITEMS]))
        try:
            yield School(store, KioskClient("", "corner-1", add_kiosk(store, "corner-1")))
        finally:
            store.dispose()


@pytest.fixture
def other():
    """The school's library system (its state; serve it with peer.Peer): it knows every patron
    and book but the last of each, its barcodes with ``prefix`` in front."""
    return _library_system


def _library_system(prefix: str = "") -> LibrarySystem:
    return LibrarySystem("bookcorner", "s3cret", {card for _, card, _ in PATRONS[:-1]},
                         {prefix + code: Book(title) for _, code, title in ITEMS[:-1]})
