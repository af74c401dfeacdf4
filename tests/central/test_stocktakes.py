"""Stock-takes by scanning on the central server (central/services/registers.py), on both
databases: a kiosk's stocktake.* events taken in as a push is, and a handheld scanner's
file; the result against the server's catalogue and loans; the missing books marked lost
once; the scan file's junk refused by its line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.ingest import Batch, ingest
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.reference import delta, load_document
from bookcorner.central.services import registers
from bookcorner.central.services.registers import MarkLostRefused, ScanFileRefused
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.pushes import KioskClient, checkout

ZONE = UTC
SHELF = "三(2)班"


def a_school(store: db.Store) -> KioskClient:
    """Corner 三(2)班 holds A1–A5 (A4 reported lost already); B1 is 四(1)班's."""
    load_document(store, ReferenceDocument(
        patrons=[PatronRecord(patron_id="S1", name="王小明", role="student", class_name="三(2)班")],
        items=[ItemRecord(item_id="A1", title="小王子", barcode="30001000000011", home_corner=SHELF),
               ItemRecord(item_id="A2", title="夏洛的网", barcode="30001000000022", home_corner=SHELF),
               ItemRecord(item_id="A3", title="草房子", barcode="30001000000033", home_corner=SHELF),
               ItemRecord(item_id="A4", title="城南旧事", barcode="30001000000044", home_corner=SHELF, status="lost"),
               ItemRecord(item_id="A5", title="西游记", barcode="30001000000055", home_corner=SHELF),
               ItemRecord(item_id="B1", title="新华字典", barcode="30001000000066", home_corner="四(1)班")]))
    return KioskClient("", "corner-32", add_kiosk(store, "corner-32"))


def push(store: db.Store, kiosk: KioskClient, *events: tuple[str, dict]) -> None:
    request = kiosk.request([kiosk.event(kind, payload) for kind, payload in events])
    ingest(store, Batch(request.kiosk_id, request.batch_id, request.from_seq, request.to_seq, request.clock,
                        request.events), db.now())


def scans(stocktake_id: str, *codes: str) -> list[tuple[str, dict]]:
    return [("stocktake.scanned", {"stocktake_id": stocktake_id, "code": code}) for code in codes]


def test_a_kiosks_stock_take_sorts_the_shelf_against_the_servers_catalogue_and_loans(store):
    kiosk = a_school(store)
    push(store, kiosk, checkout("A3", "S1"),
         ("stocktake.started", {"stocktake_id": "st-1", "shelf": [SHELF], "patron_id": "L1"}),
         *scans("st-1", "30001000000011", "30001000000033", "30001000000066", "ZZ-404", "30001000000011"),
         ("stocktake.finished", {"stocktake_id": "st-1", "scans": 5}),
         # another, given up, and a third still running
         ("stocktake.started", {"stocktake_id": "st-2", "shelf": [SHELF]}), *scans("st-2", "30001000000022"),
         ("stocktake.finished", {"stocktake_id": "st-2", "scans": 1, "cancelled": True}),
         ("stocktake.started", {"stocktake_id": "st-3"}))
    view = registers.stocktake(store, "st-1", ZONE)
    assert view is not None and view.stocktake.state == registers.FINISHED and view.stocktake.by == "L1"
    result = view.result
    assert (result.present, result.missing, result.misplaced, result.on_loan_on_shelf, result.unknown) == (
        ("A1",), ("A2", "A5"), ("B1",), ("A3",), ("ZZ-404",))
    assert result.repeated == 1 and result.scans == 5 and result.expected == 3
    assert view.borrowers == {"A3": ("三(2)班", "王小明 (S1)")}
    listed = {take.stocktake_id: (take.state, take.where, res.scans) for take, res in registers.stocktakes(store, ZONE)}
    assert listed == {"st-1": ("finished", "corner-32", 5), "st-2": ("cancelled", "corner-32", 1),
                      "st-3": ("running", "corner-32", 0)}
    table = registers.stocktake_table(view)
    assert [(row[0], row[1]) for row in table.rows] == [
        ("present", "A1"), ("missing", "A2"), ("missing", "A5"), ("misplaced", "B1"),
        ("on loan but on the shelf", "A3"), ("unknown code", "ZZ-404")]
    assert table.rows[3][4] == "四(1)班" and table.rows[4][5:] == ("三(2)班", "王小明 (S1)")
    for unfinished, why in (("st-2", "cancelled"), ("st-3", "running")):
        with pytest.raises(MarkLostRefused, match=why):
            registers.mark_missing_lost(store, unfinished, "Ms Li", db.now(), ZONE)
    assert registers.stocktake(store, "nothing", ZONE) is None


def test_marking_the_missing_books_lost_happens_once_audited_and_reaches_the_kiosks(store):
    kiosk = a_school(store)
    push(store, kiosk, ("stocktake.started", {"stocktake_id": "st-9", "shelf": [SHELF]}),
         *scans("st-9", "30001000000011", "30001000000033"), ("stocktake.finished", {"stocktake_id": "st-9"}))
    at = db.now()
    assert registers.mark_missing_lost(store, "st-9", "Ms Li", at, ZONE) == ["A2", "A5"]
    assert registers.mark_missing_lost(store, "st-9", "Mr Wu", at + timedelta(minutes=1), ZONE) == []
    pulled = {item.item_id: item.status for item in delta(store, "corner-32", 0).items}
    assert pulled == {"A1": "available", "A2": "lost", "A3": "available", "A4": "lost", "A5": "lost",
                      "B1": "available"}
    with store.reading() as conn:
        audit = conn.execute(select(db.audit_log.c.who, db.audit_log.c.action, db.audit_log.c.target)
                             .order_by(db.audit_log.c.audit_id)).all()
    assert [tuple(row) for row in audit] == [("Ms Li", "registers.lost", "A2"), ("Ms Li", "registers.lost", "A5"),
                                             ("Ms Li", "registers.stocktake.lost", "st-9")]
    take = registers.stocktake(store, "st-9", ZONE)
    assert take is not None and take.stocktake.marked == ("A2", "A5") and take.stocktake.marked_by == "Ms Li"
    assert take.result.missing == ()  # lost now: nothing left to look for


def test_an_uploaded_scan_file_is_a_stock_take_of_the_chosen_shelf(store):
    a_school(store)
    codes = registers.read_scan_file("\ufeffBarcode,Time\r\n30001000000011,2026-12-04 10:00\r\n\r\n"
                                     '"30001000000022",2026-12-04 10:01\r\n30001000000066\r\n'.encode())
    assert codes == ["30001000000011", "30001000000022", "30001000000066"]
    stocktake_id = registers.upload_stocktake(store, "Ms Li", "scans.csv", (SHELF,), codes,
                                              datetime(2026, 12, 4, 10, 5, tzinfo=UTC))
    view = registers.stocktake(store, stocktake_id, ZONE)
    assert view is not None and view.stocktake.source == "upload" and view.stocktake.where == "scans.csv"
    assert (view.result.present, view.result.missing, view.result.misplaced) == (("A1", "A2"), ("A3", "A5"), ("B1",))
    whole = registers.upload_stocktake(store, "Ms Li", "all.txt", None, codes, db.now())
    every = registers.stocktake(store, whole, ZONE)
    assert every is not None and every.result.misplaced == () and "B1" in every.result.present
    assert registers.corners(store) == ["三(2)班", "四(1)班"]
    assert registers.mark_missing_lost(store, stocktake_id, "Ms Li", db.now(), ZONE) == ["A3", "A5"]


@pytest.mark.parametrize(("data", "code", "line"), [
    (b"30001000000011\n30001000000022\nhello world\n", "bad_code", 3),
    (b"30001000000011\n" + b"x" * 81 + b"\n", "bad_code", 2),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary", 0),
    ("条码\n".encode("gbk") + b"\xff\xfe", "encoding", 0),
    (b"\n \n,,\n", "empty", 0)])
def test_a_scan_file_with_junk_is_refused_naming_the_line(data, code, line):
    with pytest.raises(ScanFileRefused) as refused:
        registers.read_scan_file(data)
    assert (refused.value.code, refused.value.line) == (code, line)


def test_a_stock_take_of_every_book_and_scans_without_their_start_are_kept_apart(store):
    kiosk = a_school(store)
    push(store, kiosk, ("stocktake.started", {"stocktake_id": "st-5"}), *scans("st-5", "30001000000066"),
         *scans("st-orphan", "30001000000011"))
    view = registers.stocktake(store, "st-5", ZONE)
    assert view is not None and view.stocktake.shelf is None and view.result.present == ("B1",)
    assert view.result.missing == ("A1", "A2", "A3", "A5")  # every book of the catalogue is this shelf's
    assert registers.stocktake(store, "st-orphan", ZONE) is None


def test_the_paper_checklist_leaves_out_books_a_stock_take_found_since_the_date(store):
    kiosk = a_school(store)
    push(store, kiosk, ("stocktake.started", {"stocktake_id": "st-7", "shelf": [SHELF]}),
         *scans("st-7", "30001000000011", "30001000000066"), ("stocktake.finished", {"stocktake_id": "st-7"}))
    registers.upload_stocktake(store, "Ms Li", "old.txt", (SHELF,), ["30001000000022"],
                               datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    today = db.now().date()
    looked_for = {u.item_id: u.last_seen for u in registers.stock_take(store, today, ZONE)}
    assert looked_for == {"A2": date(2026, 1, 5), "A3": None, "A4": None, "A5": None}  # A1, B1: scanned today
    everything = {u.item_id for u in registers.stock_take(store, today + timedelta(days=1), ZONE)}
    assert everything == {"A1", "A2", "A3", "A4", "A5", "B1"}
