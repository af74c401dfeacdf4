"""The school pages in a real headless Chromium: a card scanned into the enrolment field
(a USB scanner types like a keyboard and ends with Enter), a kiosk provisioned and its
credential used, a rule with a mistake refused next to its field. Screenshots go to
artifacts/dashboard-school-*.png."""

from __future__ import annotations

import time
import uuid

import requests

from bookcorner.central.reference import load_document
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import PatronRecord, ReferenceDocument
from tests.central.pushes import KioskClient, checkout
from tests.web.chromium import shot, sign_in_as


def signed_in(server, browser, name: str, **options):
    token = server.add_librarian(name)
    context = browser.new_context(viewport={"width": 1200, "height": 900}, **options)
    page = context.new_page()
    sign_in_as(page, server.url, name, token)
    return context, page


def test_a_card_is_scanned_in_and_a_kiosk_is_provisioned(server, browser):
    tag = uuid.uuid4().hex[:6]
    load_document(server.store, ReferenceDocument(patrons=[
        PatronRecord(patron_id=f"S-{tag}", name="王小明 <b>Wang</b>", role="student", class_name="3.2"),
        PatronRecord(patron_id=f"T-{tag}", name="李华", role="student", class_name="3.2")]))
    context, page = signed_in(server, browser, "Ms Li", locale="en-GB")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.click("nav a[href$='/school']")
    page.click("main a[href$='/school/cards']")
    page.fill("input[name=q]", "王小明")
    page.press("input[name=q]", "Enter")
    assert page.locator(".found .name").first.inner_text() == "王小明 <b>Wang</b>"  # text, not markup
    page.click(f"a[href$='student=S-{tag}']")
    assert page.evaluate("document.activeElement.name") == "card"  # ready for the scanner
    page.keyboard.type(f"A{tag.encode().hex()[:8]}0B")  # keystrokes of a Codabar card...
    page.keyboard.press("Enter")  # ...ended by the scanner's Enter
    page.wait_for_url("**done=given**")
    card = f"{tag.encode().hex()[:8]}0"
    assert page.locator(f"tr[data-card='{card}'] .status").inner_text() == "active"
    shot(page, "school-card-given")

    page.goto(f"{server.url}/dashboard/school/cards?student=T-{tag}")
    page.fill("input[name=card]", card)
    page.press("input[name=card]", "Enter")
    assert "already held by 王小明 <b>Wang</b>" in page.locator("#card-error").inner_text()
    shot(page, "school-card-refused")

    page.click("nav a[href$='/school']")
    page.click("main a[href$='/school/kiosks']")
    kiosk_id = f"class-3-2-{tag}"
    page.fill("input[name=kiosk_id]", kiosk_id)
    page.fill("input[name=name]", "Class 3.2")
    page.click("form.add-kiosk button[type=submit]")
    token = page.locator("#credential").inner_text()
    assert token.startswith("bck1_") and f"id = {kiosk_id}" in page.locator("pre.setup").inner_text()
    shot(page, "school-kiosk-credential")
    kiosk = KioskClient(server.url, kiosk_id, token)
    assert kiosk.push([kiosk.event(*checkout("I1", f"S-{tag}"))]).status_code == 200

    page.click("a[href$='/school/kiosks']")
    row = page.locator(f"tr[data-kiosk='{kiosk_id}']")
    assert token not in page.content() and row.locator(".credential").inner_text() == "active"
    row.locator("input[name=confirm]").fill(kiosk_id)
    row.locator("button").click()
    page.wait_for_url("**done=revoked**")
    assert page.locator(f"tr[data-kiosk='{kiosk_id}'] .credential").inner_text() == "revoked"
    shot(page, "school-kiosk-revoked")
    assert dialogs == []
    context.close()
    # the server remembers a credential's answer for up to two seconds
    for _attempt in range(30):
        if requests.get(f"{server.url}/v1/reference", headers=bearer(token), timeout=10).status_code == 401:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the revoked credential still works")


def test_a_rule_with_a_mistake_is_refused_next_to_its_field_in_chinese(server, browser):
    context, page = signed_in(server, browser, "Mr Zhao", locale="zh-CN")
    page.goto(f"{server.url}/dashboard/school/policy?lang=zh_CN")
    page.fill("input[name='student.circulating.loan_days']", "999")
    page.click("form.policy button[type=submit]")
    error = page.locator("[id='error-student.circulating.loan_days']")
    assert error.is_visible()
    assert page.locator("input[name='student.circulating.loan_days']").input_value() == "999"
    shot(page, "school-policy-refused-zh")
    page.fill("input[name='student.circulating.loan_days']", "10")
    page.click("form.policy button[type=submit]")
    page.wait_for_url("**saved=yes")
    assert page.locator("#saved").is_visible()

    page.goto(f"{server.url}/dashboard/school/calendar")
    page.fill("textarea[name=closed_dates]", "2027-01-25..2027-02-14\n2026-10-01..2026-10-07")
    page.fill("textarea[name=open_dates]", "2026-10-10")
    page.fill("input[name='term.0.name']", "2026 秋季学期")
    page.fill("input[name='term.0.start']", "2026-09-01")
    page.fill("input[name='term.0.end']", "2027-01-22")
    page.click("form.calendar button[type=submit]")
    page.wait_for_url("**saved=yes")
    assert page.locator("textarea[name=closed_dates]").input_value() == "2026-10-01..2026-10-07\n2027-01-25..2027-02-14"
    shot(page, "school-calendar")
    context.close()
