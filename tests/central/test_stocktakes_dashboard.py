"""Stock-takes by scanning on the dashboard, over a real socket (SQLite, and PostgreSQL when
it runs): a kiosk's stock-take pushed through the push API as a kiosk pushes it, a scan
file uploaded, the result as a page, CSV and XLSX, and the missing books marked lost once."""

from __future__ import annotations

import csv
import io
import uuid

import requests
from openpyxl import load_workbook
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.pushes import KioskClient, checkout


def a_corner(board, tag: str) -> KioskClient:
    """Corner C-<tag> holds A1–A4 (A2 lent to S1, then scanned on the shelf); B1 is elsewhere."""
    load_document(board.store, ReferenceDocument(
        patrons=[PatronRecord(patron_id=f"S1-{tag}", name="王小明", role="student", class_name=f"3.2-{tag}")],
        items=[ItemRecord(item_id=f"A{n}-{tag}", title=f"<i>Book {n}</i> {tag}", barcode=f"BC{n}-{tag}".upper(),
                          call_number=f"I{n}/1", home_corner=f"C-{tag}") for n in range(1, 5)]
        + [ItemRecord(item_id=f"B1-{tag}", title=f"Elsewhere {tag}", barcode=f"BCB-{tag}".upper(),
                      home_corner=f"D-{tag}")]))
    kiosk_id = "k-" + tag
    return KioskClient(board.url, kiosk_id, board.add_kiosk(kiosk_id))


def stock_take(kiosk: KioskClient, tag: str, stocktake_id: str, *codes: str, finished: bool = True) -> None:
    events = [kiosk.event("stocktake.started", {"stocktake_id": stocktake_id, "shelf": [f"C-{tag}"],
                                                "patron_id": f"S1-{tag}"})]
    events += [kiosk.event("stocktake.scanned", {"stocktake_id": stocktake_id, "code": code}) for code in codes]
    if finished:
        events.append(kiosk.event("stocktake.finished", {"stocktake_id": stocktake_id, "scans": len(codes)}))
    assert kiosk.push(events).status_code == 200


def test_a_kiosks_stock_take_shows_downloads_and_marks_the_missing_lost_once(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    kiosk = a_corner(board, tag)
    assert kiosk.push([kiosk.event(*checkout(f"A2-{tag}", f"S1-{tag}"))]).status_code == 200
    sid = f"st-{tag}"
    stock_take(kiosk, tag, sid, f"BC1-{tag}".upper(), f"BC2-{tag}".upper(), f"BCB-{tag}".upper(), f"NOPE-{tag}".upper())
    stock_take(kiosk, tag, f"run-{tag}", f"BC1-{tag}".upper(), finished=False)

    listing = client.get("/registers/stock-take/scans")
    assert listing.status_code == 200
    row = listing.text.split(f'data-stocktake="{sid}"', 1)[1].split("</tr>", 1)[0]
    assert f"k-{tag}" in row and "finished" in row and "<td>4</td><td>1</td><td>2</td><td>1</td><td>1</td><td>1</td>" in row
    assert "running" in listing.text.split(f'data-stocktake="run-{tag}"', 1)[1].split("</tr>", 1)[0]

    page = client.get(f"/registers/stock-take/scans/{sid}")
    assert page.status_code == 200
    text = page.text
    assert "<i>Book" not in text and "&lt;i&gt;Book 3&lt;/i&gt;" in text
    missing = text.split('id="missing"', 1)[1].split("</section>", 1)[0]
    assert f'data-item="A3-{tag}"' in missing and f'data-item="A4-{tag}"' in missing and "A1-" not in missing
    assert f"D-{tag}" in text.split('id="misplaced"', 1)[1].split("</section>", 1)[0]
    on_loan = text.split('id="on-loan"', 1)[1].split("</section>", 1)[0]
    assert f'data-item="A2-{tag}"' in on_loan and f"3.2-{tag}" in on_loan
    assert f"NOPE-{tag}".upper() in text.split('id="unknown"', 1)[1]
    assert 'class="mark-lost"' in text
    zh = client.get(f"/registers/stock-take/scans/{sid}", params={"lang": "zh_CN"})
    assert zh.status_code == 200 and 'lang="zh-CN"' in zh.text and "图书编号" in zh.text  # (a msgid of before)
    assert client.get("/registers/stock-take/scans", params={"lang": "en"}).status_code == 200

    rows = list(csv.reader(io.StringIO(client.get(f"/registers/stock-take/scans/{sid}.csv").content.decode("utf-8-sig"))))
    assert rows[0] == ["Found", "Book id", "Title", "Call number", "Home corner", "Borrower's class", "Borrower"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("present", f"A1-{tag}"), ("missing", f"A3-{tag}"), ("missing", f"A4-{tag}"), ("misplaced", f"B1-{tag}"),
        ("on loan but on the shelf", f"A2-{tag}"), ("unknown code", f"NOPE-{tag}".upper())]
    assert rows[5][5:] == [f"3.2-{tag}", f"王小明 (S1-{tag})"] and rows[4][4] == f"D-{tag}"
    book = client.get(f"/registers/stock-take/scans/{sid}.xlsx")
    assert book.headers["content-type"].startswith("application/vnd.openxmlformats")
    cells = [list(r) for r in load_workbook(io.BytesIO(book.content)).active.iter_rows(values_only=True)]
    assert cells[2][:3] == ["missing", f"A3-{tag}", f"<i>Book 3</i> {tag}"] and len(cells) == 7

    lost_path = f"/registers/stock-take/scans/{sid}/lost"
    assert client.post(lost_path, {"csrf": "guess", "confirm": "yes"}).status_code == 403
    assert client.post(lost_path, {"csrf": client.csrf()}).status_code == 422  # not confirmed
    assert client.post(f"/registers/stock-take/scans/run-{tag}/lost",
                       {"csrf": client.csrf(), "confirm": "yes"}).status_code == 409
    done = client.post(lost_path, {"csrf": client.csrf(), "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"].endswith(f"/scans/{sid}?done=2")
    again = client.post(lost_path, {"csrf": client.csrf(), "confirm": "yes"})
    assert again.status_code == 303 and again.headers["location"].endswith("?done=0")
    with board.store.reading() as conn:
        audit = conn.execute(select(db.audit_log.c.who, db.audit_log.c.action, db.audit_log.c.target)
                             .where(db.audit_log.c.action.in_(("registers.lost", "registers.stocktake.lost")),
                                    db.audit_log.c.detail.contains(sid) | (db.audit_log.c.target == sid))
                             .order_by(db.audit_log.c.audit_id)).all()
    assert [tuple(r) for r in audit] == [(name, "registers.lost", f"A3-{tag}"), (name, "registers.lost", f"A4-{tag}"),
                                         (name, "registers.stocktake.lost", sid)]
    pulled = requests.get(f"{board.url}/v1/reference", headers=bearer(kiosk.token), timeout=10)
    statuses = {i["item_id"]: i.get("status", "available") for i in pulled.json()["items"] if tag in i["item_id"]}
    assert statuses == {f"A1-{tag}": "available", f"A2-{tag}": "available", f"A3-{tag}": "lost",
                        f"A4-{tag}": "lost", f"B1-{tag}": "available"}
    after = client.get(f"/registers/stock-take/scans/{sid}").text
    assert 'id="marked"' in after and name in after and 'class="mark-lost"' not in after
    told = client.get("/audit").text
    assert f"{name} marked the 2 missing book(s) of the stock-take at k-{tag} lost." in told
    assert f"{name} marked “&lt;i&gt;Book 3&lt;/i&gt; {tag}” lost: missing at a stock-take." in told


def test_a_scan_file_upload_becomes_a_stock_take_and_junk_is_refused_by_its_line(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    a_corner(board, tag)
    url = f"{client.url}/registers/stock-take/upload"
    body = f"barcode\n{f'BC1-{tag}'.upper()}\n{f'BC3-{tag}'.upper()},2026-12-04\n".encode()
    answer = client.http.post(url, data={"csrf": client.csrf(), "shelf": f"C-{tag}"},
                              files={"file": ("scans.csv", body, "text/csv")}, allow_redirects=False, timeout=15)
    assert answer.status_code == 303
    result = client.get(answer.headers["location"].removeprefix("/dashboard"))
    assert "uploaded the scan file scans.csv for a stock-take (2 codes)." in client.get("/audit").text
    assert result.status_code == 200 and "scans.csv" in result.text
    missing = result.text.split('id="missing"', 1)[1].split("</section>", 1)[0]
    present = result.text.split('id="present"', 1)[1].split("</section>", 1)[0]
    assert f'data-item="A2-{tag}"' in missing and f'data-item="A4-{tag}"' in missing
    assert f'data-item="A1-{tag}"' in present and f'data-item="A3-{tag}"' in present
    junk = client.http.post(url, data={"csrf": client.csrf()}, allow_redirects=False, timeout=15,
                            files={"file": ("scans.txt", b"BC1\nBC2\nthis is not a code\n", "text/plain")})
    assert junk.status_code == 422 and "Line 3 is not a code" in junk.text and "this is not a code" in junk.text
    assert client.http.post(url, data={"csrf": "guess"}, allow_redirects=False, timeout=15,
                            files={"file": ("scans.txt", b"BC1\n", "text/plain")}).status_code == 403
    assert client.get("/registers/stock-take/scans/no-such-thing").status_code == 404
