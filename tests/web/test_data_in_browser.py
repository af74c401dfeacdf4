"""Data in, in a real headless Chromium: a roster with a wrong row is uploaded, its error
shown and Confirm refused; the fixed file is uploaded and confirmed. Screenshots:
artifacts/dashboard-data-in-*.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bookcorner.central import db
from tests.central.harness import CentralServer
from tests.web.chromium import shot, sign_in_as

HEADINGS = "学号,姓名,班级,角色\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[CentralServer]:
    folder = tmp_path_factory.mktemp("data-in-browser")
    central = CentralServer(f"sqlite:///{folder / 'central.db'}", folder / "server.log").start()
    try:
        yield central
    finally:
        central.stop()


def patrons(server: CentralServer) -> dict[str, str]:
    with server.store.reading() as conn:
        return dict(conn.execute(select(db.patrons.c.patron_id, db.patrons.c.data)).all())


def test_a_wrong_row_is_shown_and_refused_then_the_fixed_file_is_imported(server, browser, tmp_path):
    name = "Ms Chen"
    token = server.add_librarian(name)
    wrong = tmp_path / "三(2)班.csv"
    wrong.write_bytes((HEADINGS + "2024001,王小明 <b>Wang</b>,三(2)班,学生\r\n2024002,李华,三(2)班,班长\r\n"
                       "2024003,张小花,三(2)班,小图书管理员\r\n").encode("gb18030"))
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in_as(page, server.url, name, token)

    page.click("nav a[href$='/data-in']")
    page.wait_for_url("**/dashboard/data-in")
    shot(page, "data-in")
    page.set_input_files("#upload-roster input[type=file]", str(wrong))
    page.click("#upload-roster button[type=submit]")
    page.wait_for_url("**/dashboard/data-in/*")
    error = page.locator("table.problems tr[data-row='3']")
    assert "Unknown role “班长”" in error.inner_text() and "角色" in error.inner_text()
    assert page.locator("#count-errors").inner_text() == "Errors: 1"
    assert page.locator("#confirm").is_disabled()
    assert page.get_by_text("王小明 <b>Wang</b>").count() == 1  # the name as text, not markup
    shot(page, "data-in-errors")
    page.locator("#confirm").evaluate("button => button.disabled = false")  # as a stale or forged page would
    page.click("#confirm")
    assert "Nothing was imported" in page.locator("#refused").inner_text()
    assert patrons(server) == {}
    page.click("#cancel")
    page.wait_for_url("**/dashboard/data-in")

    fixed = tmp_path / "三(2)班-fixed.csv"
    fixed.write_bytes(wrong.read_bytes().replace("班长".encode("gb18030"), "学生".encode("gb18030")))
    page.set_input_files("#upload-roster input[type=file]", str(fixed))
    page.click("#upload-roster button[type=submit]")
    page.wait_for_url("**/dashboard/data-in/*")
    assert page.locator("#count-added").inner_text() == "To add: 3"
    assert page.locator("#count-errors").inner_text() == "Errors: 0"
    assert page.locator("#confirm").is_enabled()
    shot(page, "data-in-preview")
    page.click("#confirm")
    page.wait_for_url("**/dashboard/data-in?applied=roster")
    assert page.locator("#applied").is_visible()
    assert "三(2)班-fixed.csv" in page.locator("table.imports").inner_text()
    assert set(patrons(server)) == {"2024001", "2024002", "2024003"}
    assert dialogs == []
    shot(page, "data-in-done")

    page.goto(f"{server.url}/dashboard/data-in?lang=zh_CN")
    shot(page, "data-in-zh")
    context.close()
