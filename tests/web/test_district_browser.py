"""A district in a real headless Chromium (issue 15): the district's staff sign in, in Chinese,
and land on every school's figures with the total; a school's librarian signs in with their
school's credential and sees their own school's end of day. Screenshots go to
artifacts/dashboard-district-*.png (not committed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bookcorner.central import db
from bookcorner.central.kiosks import add_district_user, add_kiosk, add_librarian
from bookcorner.central.reference import load_document
from bookcorner.central.schools import Schools
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.harness import CentralServer, counted_since
from tests.central.pushes import KioskClient, checkout
from tests.web.chromium import shot, sign_in_as

SCHOOLS = {"east-lake": ("东湖小学", 3), "west-hill": ("西山小学", 5)}


@pytest.fixture(scope="module")
def district(tmp_path_factory) -> Iterator[tuple[CentralServer, dict[str, db.Store]]]:
    """The first school and two more, each with a corner that lent a few books."""
    folder = tmp_path_factory.mktemp("district-browser")
    url = f"sqlite:///{folder / 'central.db'}"
    root = db.Store(url)
    root.migrate()
    schools = Schools(root)
    for slug, (name, _lent) in SCHOOLS.items():
        schools.add(slug, name)
    server = CentralServer(url, folder / "server.log", "--district-every", "1").start()
    try:
        stores = {slug: schools.store(slug) for slug in ("", *SCHOOLS)}
        for slug, store in stores.items():
            lent = SCHOOLS.get(slug, ("", 1))[1]
            load_document(store, ReferenceDocument(
                patrons=[PatronRecord(patron_id="S1", name="王小明", role="student", class_name="3.1")],
                items=[ItemRecord(item_id=f"I{n}", title=f"书 {n}") for n in range(6)]))
            kiosk = KioskClient(server.url, "corner-1", add_kiosk(store, "corner-1", f"三(1)班 {slug}"))
            assert kiosk.push([kiosk.event(*checkout(f"I{n}", "S1")) for n in range(lent)]).status_code == 200
        counted_since(root, 3, db.now())  # (the page shows the figures the server's job counts, every second here)
        yield server, stores
    finally:
        server.stop()
        schools.dispose()
        root.dispose()


def test_the_district_reads_every_school_and_a_librarian_only_their_own(district, browser):
    server, stores = district
    token = add_district_user(stores[""], "区教育局")
    context = browser.new_context(viewport={"width": 1300, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server.url}/dashboard/sign-in?lang=zh_CN")
    page.fill("input[name=name]", "区教育局")
    page.fill("input[name=credential]", token)
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url("**/dashboard/district")
    assert page.locator("h1").inner_text() == "学区各校"
    rows = page.locator("table.district tbody tr")
    assert rows.count() == 3
    lent = {row.get_attribute("data-school"): int(row.locator("td.on-loan").inner_text())
            for row in rows.all()}
    assert lent == {"": 1, "east-lake": 3, "west-hill": 5}
    assert page.locator("tfoot td.on-loan").inner_text() == "9"
    assert "东湖小学" in page.locator("table.district").inner_text()
    assert page.locator("nav a").count() == 1  # the district's page only: no school's pages to open
    shot(page, "district-zh")
    page.goto(f"{server.url}/dashboard/district?lang=en")  # the same page in English
    assert page.locator("h1").inner_text() != "学区各校" and "Figures as of" in page.locator("p.as-of").inner_text()
    shot(page, "district-en")
    context.close()

    token = add_librarian(stores["west-hill"], "Ms Zhou")
    assert token.startswith("west-hill.")
    context = browser.new_context(viewport={"width": 1300, "height": 800}, locale="en-GB")
    page = context.new_page()
    sign_in_as(page, server.url, "Ms Zhou", token)
    assert "三(1)班 west-hill" in page.content() and "三(1)班 east-lake" not in page.content()
    page.goto(f"{server.url}/dashboard/district")
    assert "403" in page.title() or page.locator("main").inner_text() != ""
    assert "east-lake" not in page.content()
    shot(page, "district-librarian-refused")
    context.close()
