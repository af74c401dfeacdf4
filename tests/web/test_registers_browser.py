"""The registers in a real headless Chromium: the chase slips on screen and as printed,
each register's page, a withdrawal through its form, and every register's CSV and XLSX
downloaded by clicking its link. Screenshots: artifacts/dashboard-registers-*.png."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.harness import CentralServer
from tests.central.pushes import KioskClient, checkin
from tests.web.chromium import shot, sign_in_as


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[CentralServer]:
    folder = tmp_path_factory.mktemp("registers-browser")
    central = CentralServer(f"sqlite:///{folder / 'central.db'}", folder / "server.log").start()
    try:
        yield central
    finally:
        central.stop()


def checkout(item: str, patron: str, days: int) -> tuple[str, dict]:
    due = datetime.now().astimezone().date() + timedelta(days=days)
    return "loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": "c", "code": item,
                                "due": due.isoformat(), "warnings": []}


def a_school(server: CentralServer) -> None:
    load_document(server.store, ReferenceDocument(
        school="阳光小学 Sunshine Primary",
        patrons=[PatronRecord(patron_id="S1", name="王小明 <b>Wang</b>", role="student", class_name="三(2)班"),
                 PatronRecord(patron_id="S2", name="李雷", role="student", class_name="三(2)班"),
                 PatronRecord(patron_id="S3", name="韩梅梅", role="student", class_name="四(1)班"),
                 PatronRecord(patron_id="L1", name="张小花", role="student_librarian", class_name="四(1)班")],
        items=[ItemRecord(item_id="I1", title="<script>alert(1)</script> 小王子", call_number="I565.8/1",
                          home_corner="三(2)班书架"),
               ItemRecord(item_id="I2", title="夏洛的网 Charlotte's Web", call_number="I712.8/2",
                          home_corner="三(2)班书架"),
               ItemRecord(item_id="I3", title="西游记", call_number="I242.4/3", home_corner="四(1)班书架"),
               ItemRecord(item_id="I4", title="新华字典", call_number="H164/4", home_corner="四(1)班书架",
                          item_type="reference"),
               ItemRecord(item_id="I5", title="十万个为什么", call_number="Z228/5", home_corner="四(1)班书架"),
               ItemRecord(item_id="I6", title="草房子", call_number="I287.5/6", home_corner="三(2)班书架")]))
    kiosk = KioskClient(server.url, "class-3-2", server.add_kiosk("class-3-2"))
    kiosk.push([kiosk.event(*checkout("I1", "S1", -4)), kiosk.event(*checkout("I2", "S1", -1)),
                kiosk.event(*checkout("I3", "S3", -9)), kiosk.event(*checkout("I5", "S2", -2)),
                kiosk.event(*checkout("I6", "S2", 3)),
                kiosk.event("loan.returned", {**checkin("I5")[1], "patron_id": "S2"}, actor="L1"),
                kiosk.event("item.damaged", {"item_id": "I5", "note": "封面脱落"}, actor="L1"),
                kiosk.event("item.damaged", {"item_id": "I4", "note": ""}, actor="L1"),
                kiosk.event("item.repaired", {"item_id": "I4", "note": ""}, actor="L1")])


def test_the_registers_open_print_and_download(server, browser):
    a_school(server)
    tomorrow = datetime.now().astimezone().date() + timedelta(days=1)
    token = server.add_librarian("Ms Li")
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True, locale="en-GB")
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in_as(page, server.url, "Ms Li", token)

    page.click("nav a[href$='/registers']")
    assert page.locator("ul.register-links li").count() == 7
    shot(page, "registers-index")

    page.click("a[href$='/registers/overdue']")
    slips = page.locator("section[data-class='三(2)班'] article.slip")
    assert slips.count() == 1  # 王小明's two books on one slip; 李雷's book came back, the other is not due
    assert "<script>alert(1)</script> 小王子" in slips.first.inner_text()
    assert "阳光小学 Sunshine Primary" in slips.first.locator("h3").inner_text()
    assert page.locator("section[data-class='四(1)班'] article.slip").count() == 1
    assert dialogs == []
    shot(page, "registers-overdue")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator(".register-downloads").is_visible()
    breaks = page.locator("section.class-slips").evaluate_all(
        "sections => sections.map(s => getComputedStyle(s).breakAfter)")
    assert breaks == ["page", "auto"]  # a page per class, none after the last
    shot(page, "registers-overdue-print")
    pdf = page.pdf(format="A4", path=str(Path(shot.__globals__["ARTIFACTS"]) / "dashboard-registers-overdue.pdf"))
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 2  # printed: one page per class
    page.emulate_media(media="screen")

    page.goto(f"{server.url}/dashboard/registers/withdrawals")
    page.fill("form.withdraw input[name=item_id]", "I4")
    page.fill("form.withdraw input[name=reason]", "缺页 pages missing")
    page.click("form.withdraw button[type=submit]")
    page.wait_for_url("**/registers/withdrawals?done=I4")
    assert "缺页 pages missing" in page.locator("table.register").inner_text()
    shot(page, "registers-withdrawals")

    for name, check in (("repairs", "封面脱落"), ("librarians", "张小花"), ("stock-take", "草房子")):
        page.goto(f"{server.url}/dashboard/registers/{name}" + (f"?since={tomorrow}" if name == "stock-take" else ""))
        assert check in page.locator("main").inner_text(), name
        shot(page, f"registers-{name}")
    assert "新华字典" not in page.locator("main").inner_text()  # withdrawn: no need to look for it

    page.goto(f"{server.url}/dashboard/registers/privacy?lang=zh_CN")
    shot(page, "registers-privacy-zh")
    page.goto(f"{server.url}/dashboard/registers/privacy?lang=en")

    for name, needle in (("overdue", "王小明"), ("repairs", "封面脱落"), ("withdrawals", "缺页"),
                         ("librarians", "张小花"), ("stock-take", "草房子")):
        page.goto(f"{server.url}/dashboard/registers/{name}" + (f"?since={tomorrow}" if name == "stock-take" else ""))
        for suffix in ("csv", "xlsx"):
            with page.expect_download() as info:
                page.click(f".register-downloads a[href*='.{suffix}']")
            download = info.value
            assert download.suggested_filename.startswith(f"bookcorner-{name}-")
            assert download.suggested_filename.endswith(f".{suffix}")
            data = Path(download.path()).read_bytes()
            if suffix == "csv":
                rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
            else:
                rows = [[str(v) for v in r] for r in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)]
            assert len(rows) >= 2 and any(needle in cell for row in rows for cell in row), (name, suffix)
    context.close()
