"""Notices to class teachers and labels in a real headless Chromium, in English and
Chinese: a class teacher's address, the mail server and the schedule set through the
forms, "send now" reaching a real SMTP server (aiosmtpd) and the outbox saying so; the
labels' copies chosen by scanning their barcodes into the page, shown, and downloaded as
a PDF whose barcodes zbar reads back. Screenshots: artifacts/dashboard-notices-*.png,
artifacts/dashboard-labels-*.png."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.mailbox import PASSWORD, USER
from tests.central.pushes import KioskClient
from tests.web.chromium import shot, sign_in_as


def a_school(server, lend: bool = True) -> None:
    load_document(server.store, ReferenceDocument(
        school="阳光小学",
        patrons=[PatronRecord(patron_id="S1", name="王小明", role="student", class_name="三(2)班"),
                 PatronRecord(patron_id="S2", name="韩梅梅", role="student", class_name="四(1)班")],
        items=[ItemRecord(item_id="I1", title="小王子", barcode="30001000000011", call_number="I565.8/1"),
               ItemRecord(item_id="I2", title="夏洛的网", barcode="30001000000029", call_number="I712.8/2"),
               ItemRecord(item_id="I3", title="西游记", barcode="30001000000037", call_number="I242.4/3")]))
    if not lend:
        return
    kiosk = KioskClient(server.url, "corner-3-2", server.add_kiosk("corner-3-2"))
    due = (datetime.now().astimezone().date() - timedelta(days=3)).isoformat()
    kiosk.push([kiosk.event("loan.checked_out", {"item_id": "I1", "patron_id": "S1", "card_id": "c", "code": "I1",
                                                 "due": due, "warnings": []})])


def sign_in(server, browser):
    token = server.add_librarian("Ms Li")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="en-GB")
    page = context.new_page()
    sign_in_as(page, server.url, "Ms Li", token)
    return context, page


def test_the_librarian_sets_up_notices_and_sends_them_now(server, browser, mailbox):
    a_school(server)
    context, page = sign_in(server, browser)
    page.click("nav a[href$='/notices']")
    row = page.locator("tr[data-class='三(2)班']")
    row.locator("input[name=teacher_name]").fill("王老师")
    row.locator("input[name=email]").fill("wang@school.example")
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/notices?done=class*")
    page.fill("#host", "127.0.0.1")
    page.fill("#port", str(mailbox.port))
    page.select_option("#security", "none")
    page.fill("#user", USER)
    page.fill("#password", PASSWORD)
    page.fill("#sender", "library@school.example")
    page.click("#save-smtp")
    page.wait_for_url("**/notices?done=smtp")
    page.check("input[name=day0]")
    page.fill("#at", "07:30")
    page.select_option("#language", "en")
    page.click("#save-schedule")
    page.wait_for_url("**/notices?done=schedule")
    assert page.locator("input[name=day0]").is_checked() and not page.locator("input[name=day1]").is_checked()
    page.click("#send-now")
    page.wait_for_url("**/notices?done=sent*")
    sent = page.locator("table.outbox tr[data-status=sent]")
    assert sent.count() == 1 and "wang@school.example" in sent.inner_text()
    held = page.locator("table.outbox tr[data-status=held]")  # 四(1)班 has no book overdue: no notice
    assert held.count() == 0
    assert [r.recipients for r in mailbox.received] == [["wang@school.example"]]
    assert "王小明: 小王子" in mailbox.received[0].message().get_content()
    shot(page, "notices")
    page.goto(f"{server.url}/dashboard/notices?lang=zh_CN")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "三(2)班" in page.locator("table.outbox").inner_text()
    shot(page, "notices-zh")
    page.goto(f"{server.url}/dashboard/notices?lang=en")
    context.close()


def test_labels_chosen_by_scanning_shown_and_downloaded(server, browser, tmp_path):
    a_school(server, lend=False)
    context, page = sign_in(server, browser)
    page.click("nav a[href$='/labels']")
    page.check("#choose-codes")
    page.fill("#codes", "30001000000011\n30001000000029\nI3\nUNKNOWN1")
    page.select_option("#sheet", "a4-5x13")
    page.click("#show")
    assert page.locator("table.label-copies tbody tr").count() == 3
    assert "UNKNOWN1" in page.locator("#unknown").inner_text()
    shot(page, "labels")
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftoppm") and shutil.which("zbarimg"):
        (tmp_path / "labels.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "300", "-png", str(tmp_path / "labels.pdf"), str(tmp_path / "p")],
                       check=True)
        found = subprocess.run(["zbarimg", "--quiet", "--raw", *sorted(map(str, tmp_path.glob("p-*.png")))],
                               capture_output=True, text=True, check=False).stdout.split()
        assert sorted(found) == ["30001000000011", "30001000000029", "30001000000037"]
    page.goto(page.url.replace("/labels?", "/labels?lang=zh_CN&"))
    assert page.locator("table.label-copies tbody tr").count() == 3
    shot(page, "labels-zh")
    context.close()
