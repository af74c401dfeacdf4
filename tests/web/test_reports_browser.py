"""The reports in a real headless Chromium: the index, form I for the term with its
charts, the reading stars, the print layout and the CSV and XLSX downloads.
Screenshots go to artifacts/dashboard-reports-*.png (not committed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.harness import CentralServer
from tests.central.pushes import KioskClient, checkout, checkin
from tests.web.chromium import shot, sign_in_as

NAMES = ["王小明", "李华", "张伟", "刘洋", "陈静", "<i>Amy</i> Lin", "赵磊", "孙丽", "周杰", "吴芳", "郑强", "冯雪"]
CLASSES = ["3.1", "3.2", "4.1"]


@pytest.fixture(scope="module")
def school(tmp_path_factory) -> Iterator[CentralServer]:
    """A server whose three class corners lent 30 books in the last hour (some children many)."""
    folder = tmp_path_factory.mktemp("reports-browser")
    server = CentralServer(f"sqlite:///{folder / 'central.db'}", folder / "server.log").start()
    try:
        load_document(server.store, ReferenceDocument(
            patrons=[PatronRecord(patron_id=f"S{n:02d}", name=name, role="student", class_name=CLASSES[n % 3])
                     for n, name in enumerate(NAMES)],
            items=[ItemRecord(item_id=f"I{n:02d}", title=f"Book {n}") for n in range(72)]))
        for corner in CLASSES:
            kiosk = KioskClient(server.url, f"class-{corner}", server.add_kiosk(f"class-{corner}"))
            events = []
            for n, patron in enumerate(p for p in range(len(NAMES)) if CLASSES[p % 3] == corner):
                for copy in range(1 + (n * 3 + len(corner)) % 6):
                    item = f"I{patron * 6 + copy:02d}"
                    events += [kiosk.event(*checkout(item, f"S{patron:02d}"), minutes=len(events) / 4),
                               kiosk.event(*checkin(item), minutes=len(events) / 4 + 0.1)]
            assert kiosk.push(events).status_code == 200
        yield server
    finally:
        server.stop()


def test_a_librarian_reads_prints_and_downloads_the_reports(school, browser):
    token = school.add_librarian("Ms Li")
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB", accept_downloads=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in_as(page, school.url, "Ms Li", token)
    page.click("nav a[href$='/reports']")
    page.fill("input[name=books_per_student]", "4")
    page.fill("input[name=class_loans]", "12")
    page.click("form.targets button[type=submit]")
    page.wait_for_url("**/reports?saved=1")
    assert page.locator("input[name=books_per_student]").input_value() == "4"
    shot(page, "reports-index")

    page.click("a[href*='/reports/term']")
    assert page.locator("#total-loans").inner_text() == str(sum(1 + (n * 3 + len(c)) % 6 for c in CLASSES
                                                                for n in range(4)))
    assert page.locator("figure#classes-chart svg.chart").is_visible()
    assert page.locator("svg.chart").count() == 1 + len(CLASSES)  # the classes, then each class's students
    assert page.locator("svg.chart line.target").count() == 1 + len(CLASSES)
    assert page.locator("tr.student.below").count() >= 1 and page.locator("svg.chart g.bar.below").count() >= 1
    assert page.get_by_text("<i>Amy</i> Lin").count() >= 1  # a name shown as text
    assert dialogs == []
    shot(page, "reports-term")

    rows = {}
    for form in ("csv", "xlsx"):
        with page.expect_download() as info:
            page.click(f"p.downloads a[href*='/reports/students.{form}']")
        download = info.value
        assert download.suggested_filename.endswith(f".{form}")
        if form == "csv":
            text = Path(download.path()).read_text("utf-8-sig")
            rows["csv"] = {r["Student id"]: int(r["Loans"]) for r in csv.DictReader(io.StringIO(text))}
        else:
            from openpyxl import load_workbook

            sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes())).active
            header, *body = list(sheet.iter_rows(values_only=True))
            rows["xlsx"] = {r[header.index("Student id")]: r[header.index("Loans")] for r in body}
    shown = {row.get_attribute("data-patron"): int(row.locator("td.loans").inner_text())
             for row in page.locator("tr.student").all()}
    assert rows["csv"] == rows["xlsx"] == shown and len(shown) == len(NAMES)

    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("p.downloads").is_visible()
    assert page.locator("svg.chart").first.is_visible()
    shot(page, "reports-print")
    page.emulate_media(media="screen")

    page.goto(f"{school.url}/dashboard/reports/stars")
    assert page.locator("tr.star").count() >= 10 and page.locator("tr.star td.place").first.inner_text() == "1"
    shot(page, "reports-stars")
    page.goto(f"{school.url}/dashboard/reports/term?lang=zh_CN")
    assert page.locator("figure#classes-chart svg.chart").is_visible()
    shot(page, "reports-term-zh")
    context.close()
