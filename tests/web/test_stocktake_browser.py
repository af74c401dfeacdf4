"""A stock-take by scanning in a real headless Chromium: a kiosk's stock-take pushed as a
kiosk pushes it, its result page in Chinese and in English, as printed, and the missing
books marked lost through the confirmed form; a scan file uploaded through the form.
Screenshots: artifacts/dashboard-stocktake-*.png."""

from __future__ import annotations

from pathlib import Path

from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.pushes import KioskClient, checkout
from tests.web.chromium import shot, sign_in_as

SHELF = "三(2)班书架"


def a_stock_take(server) -> None:
    load_document(server.store, ReferenceDocument(
        school="阳光小学 Sunshine Primary",
        patrons=[PatronRecord(patron_id="S1", name="王小明", role="student", class_name="三(2)班")],
        items=[ItemRecord(item_id="T1", title="<script>alert(1)</script> 小王子", barcode="30001000000011",
                          call_number="I565.8/1", home_corner=SHELF),
               ItemRecord(item_id="T2", title="夏洛的网", barcode="30001000000022", call_number="I712.8/2",
                          home_corner=SHELF),
               ItemRecord(item_id="T3", title="草房子", barcode="30001000000033", call_number="I287.5/6",
                          home_corner=SHELF),
               ItemRecord(item_id="T4", title="西游记", barcode="30001000000044", call_number="I242.4/3",
                          home_corner="四(1)班书架")]))
    kiosk = KioskClient(server.url, "class-3-2", server.add_kiosk("class-3-2"))
    codes = ["30001000000011", "30001000000022", "30001000000044", "ZZ-0001"]
    kiosk.push([kiosk.event(*checkout("T2", "S1")),
                kiosk.event("stocktake.started", {"stocktake_id": "st-1", "shelf": [SHELF], "patron_id": "S1"}),
                *(kiosk.event("stocktake.scanned", {"stocktake_id": "st-1", "code": code}) for code in codes),
                kiosk.event("stocktake.finished", {"stocktake_id": "st-1", "scans": len(codes)})])


def test_a_stock_takes_result_in_both_languages_printed_and_its_missing_books_marked_lost(server, browser, tmp_path):
    a_stock_take(server)
    token = server.add_librarian("Ms Li")
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in_as(page, server.url, "Ms Li", token)

    page.goto(f"{server.url}/dashboard/registers?lang=zh_CN")
    page.click("a[href$='/registers/stock-take/scans']")
    assert page.locator("tr[data-stocktake='st-1'] td.state").inner_text() == "已完成"
    shot(page, "stocktake-list-zh")
    page.click("tr[data-stocktake='st-1'] a")
    page.wait_for_url("**/scans/st-1")
    assert page.locator("h1").inner_text().startswith("清点结果")
    assert page.locator("#missing tr[data-item='T3']").count() == 1
    assert "四(1)班书架" in page.locator("#misplaced").inner_text()
    assert "三(2)班\t王小明 (S1)" in page.locator("#on-loan tr[data-item='T2']").inner_text()
    assert "王小明 (S1)" in page.locator("dl.stocktake-facts").inner_text()
    assert "<script>alert(1)</script> 小王子" in page.locator("#present").inner_text() and dialogs == []
    shot(page, "stocktake-result-zh")

    page.goto(f"{server.url}/dashboard/registers/stock-take/scans/st-1?lang=en")
    assert page.locator("h1").inner_text().startswith("Stock-take result")
    assert "ZZ-0001" in page.locator("#unknown").inner_text()
    shot(page, "stocktake-result-en")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator(".register-downloads").is_visible()
    assert not page.locator("form.mark-lost").is_visible() and page.locator("#missing table").is_visible()
    shot(page, "stocktake-result-print")
    page.emulate_media(media="screen")

    page.click("form.mark-lost button[type=submit]")  # not confirmed: the browser asks for the box first
    assert page.url.endswith("/scans/st-1?lang=en")
    page.check("form.mark-lost input[name=confirm]")
    page.click("form.mark-lost button[type=submit]")
    page.wait_for_url("**/scans/st-1?done=1")
    assert page.locator("#done").inner_text() == "Marked lost: 1 book(s)."
    assert "Ms Li" in page.locator("#marked").inner_text() and page.locator("form.mark-lost").count() == 0
    shot(page, "stocktake-marked-lost")

    scan_file = tmp_path / "scanner.txt"
    scan_file.write_text("30001000000011\n30001000000033\n")
    page.goto(f"{server.url}/dashboard/registers/stock-take/scans")
    page.select_option("form#upload-scans select[name=shelf]", SHELF)
    page.set_input_files("form#upload-scans input[name=file]", str(scan_file))
    page.click("form#upload-scans button[type=submit]")
    page.wait_for_url("**/scans/upload-*")
    assert page.locator("#present tr[data-item]").count() == 1  # T3 is lost now: found on the shelf
    assert page.locator("#found tr[data-item='T3']").count() == 1
    assert Path(scan_file).name in page.locator("h1").inner_text()
    context.close()
