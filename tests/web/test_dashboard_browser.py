"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by
Playwright): signing in, the end of day, resolving a review item, in English and Chinese.
Screenshots go to artifacts/ (not committed)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.pushes import KioskClient, checkout, checkin
from tests.web.chromium import shot, sign_in_as


def test_a_librarian_signs_in_checks_the_day_and_resolves_a_review(server, browser):
    tag = uuid.uuid4().hex[:6]
    load_document(server.store, ReferenceDocument(
        patrons=[PatronRecord(patron_id="S1", name="王小明 <b>Wang</b>", role="student", class_name="3.2")],
        items=[ItemRecord(item_id="I1", title="<script>alert(1)</script> 小王子"),
               ItemRecord(item_id="I2", title="Charlotte's Web")]))
    kiosk_id = "class-3-2-" + tag
    kiosk = KioskClient(server.url, kiosk_id, server.add_kiosk(kiosk_id))
    add_kiosk(server.store, "class-4-1-" + tag, "Class 4.1")  # never synced: missing
    kiosk.push([kiosk.event(*checkout("I1", "S1")), kiosk.event(*checkout("I2", "S1"))])
    kiosk.push([kiosk.event(*checkin("I2")), kiosk.event(*checkin("I9"))])  # I9 was not on loan
    name = "Ms Li"
    token = server.add_librarian(name)

    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server.url}/dashboard/end-of-day")
    assert page.url.endswith("/dashboard/sign-in")
    page.fill("input[name=name]", name)
    page.fill("input[name=credential]", "bck1_wrong")
    page.click("form.sign-in button[type=submit]")
    assert page.locator(".error").is_visible()
    shot(page, "sign-in-refused")
    page.fill("input[name=name]", name)
    page.fill("input[name=credential]", token)
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url("**/dashboard/end-of-day")

    assert page.locator(f'tr[data-kiosk="{kiosk_id}"] .status').inner_text().startswith("✔")
    assert "missing" in page.locator(f'tr[data-kiosk="class-4-1-{tag}"] .status').inner_text()
    assert page.locator("#loans").inner_text() == "Loans: 2"
    assert page.locator("#returns").inner_text() == "Returns: 2"
    assert page.get_by_text("<script>alert(1)</script> 小王子").count() >= 1  # text, not a script
    assert dialogs == []
    shot(page, "end-of-day")
    page.emulate_media(media="print")  # the print style sheet: no navigation or forms on paper
    assert not page.locator("header.top").is_visible() and page.locator("table.corners").is_visible()
    shot(page, "end-of-day-print")
    page.emulate_media(media="screen")

    page.click("nav a[href$='/reviews']")
    review = page.locator("section.review").first
    assert "not on loan" in review.locator("h2").inner_text()
    review.locator("button[value=dismiss]").click()  # no note: refused, still there
    assert page.locator(".error").is_visible()
    review = page.locator("section.review").first
    review.locator("input[name=note]").fill("Found on the class shelf")
    shot(page, "review-queue")
    review.locator("button[value=dismiss]").click()
    page.wait_for_url("**/dashboard/reviews?done=*")
    assert page.locator("#empty").is_visible()
    assert "Found on the class shelf" in page.locator("table.decided").inner_text()
    assert name in page.locator("table.decided").inner_text()
    shot(page, "review-decided")
    page.click("nav a[href$='/audit']")
    assert f"{name} dismissed the case “A book was returned that was not on loan”" in page.locator(
        "table.audit").inner_text()
    shot(page, "audit")

    page.goto(f"{server.url}/dashboard/end-of-day?lang=zh_CN")
    assert page.locator("h2").first.inner_text() == "今日借还"
    assert "全部到齐" in page.locator(f'tr[data-kiosk="{kiosk_id}"] .status').inner_text()
    shot(page, "end-of-day-zh")

    page.click("button:has-text('退出登录')")
    page.wait_for_url("**/dashboard/sign-in")
    page.goto(f"{server.url}/dashboard/reviews")
    assert page.url.endswith("/dashboard/sign-in")
    context.close()


def test_the_exports_download_in_the_browser(server, browser):
    token = server.add_librarian("Mr Zhao")
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    sign_in_as(page, server.url, "Mr Zhao", token)
    page.click("nav a[href$='/exports']")
    shot(page, "exports")
    for index, suffix in ((0, ".csv"), (1, ".koc")):
        with page.expect_download() as info:
            page.locator("form.export button").nth(index).click()
        download = info.value
        assert download.suggested_filename.endswith(suffix)
        text = Path(download.path()).read_text("utf-8")
        assert text.startswith("time,kiosk_id" if suffix == ".csv" else "Version=1.0\tGenerator=bookcorner")
    context.close()
