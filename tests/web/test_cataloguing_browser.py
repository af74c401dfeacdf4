"""Cataloguing from an ISBN in a real headless Chromium, in English and Chinese: a Z39.50
server (YAZ's yaz-ztest) and one that is down set up through the form, an ISBN typed as a
scanner types it, the record shown as a form with the server that gave nothing named,
the record corrected, two copies' accession barcodes scanned in and added, and their
labels one click away. Screenshots: artifacts/dashboard-cataloguing*.png."""

from __future__ import annotations

from tests.central.catalogue_servers import free_port
from tests.web.chromium import shot, sign_in_as


def sign_in(server, browser, locale: str):
    token = server.add_librarian("Ms Zhao")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    page = context.new_page()
    sign_in_as(page, server.url, "Ms Zhao", token)
    return context, page


def add_server(page, name: str, protocol: str, port: int, syntax: str) -> None:
    page.fill("#name", name)
    page.select_option("#protocol", protocol)
    page.fill("#host", "127.0.0.1")
    page.fill("#port", str(port))
    page.fill("#database", "Default")
    page.select_option("#syntax", syntax)
    page.click("#save-server")
    page.wait_for_url("**/cataloguing?done=server*")


def test_the_librarian_catalogues_a_book_from_its_isbn(server, browser, ztest):
    context, page = sign_in(server, browser, "en-GB")
    page.click("nav a[href$='/cataloguing']")
    add_server(page, "YAZ test server", "z3950", ztest.port, "marc21")
    add_server(page, "National Library (offline)", "z3950", free_port(), "cnmarc")
    assert page.locator("table.catalogue-servers tbody tr").count() == 2

    page.fill("#isbn", "9787020002207")
    page.press("#isbn", "Enter")
    page.wait_for_selector("#record")
    assert page.input_value("#draft-title") == "How to program a computer"
    assert page.input_value("#draft-call_number") == "123-xyz"
    failure = page.locator("p.failure").inner_text()
    assert "National Library (offline) gave nothing" in failure and "did not accept the connection" in failure
    assert page.input_value("#draft-isbn") == "9787020002207"
    shot(page, "cataloguing-record")
    other = page.locator("#records a").nth(1)  # another of the server's records, chosen by its title
    title = other.inner_text()
    other.click()
    page.wait_for_url("**pick=*")
    assert page.input_value("#draft-title") == title and page.input_value("#draft-isbn") == "9787020002207"

    page.fill("#draft-title", "红楼梦")
    page.fill("#draft-author", "曹雪芹")
    page.fill("#draft-clc", "I242.4")
    page.fill("#draft-call_number", "I242.4/C12")
    page.fill("#copies", "30001000000110\n30001000000128")
    page.click("#add")
    page.wait_for_selector("#added")
    assert "2 copies of “红楼梦” added" in page.locator("#added").inner_text()
    shot(page, "cataloguing-added")
    page.click("#labels-link")
    page.wait_for_url("**/labels?**")
    assert page.locator("table.label-copies tbody tr").count() == 2
    assert "I242.4/C12" in page.locator("table.label-copies").inner_text()
    context.close()

    context, page = sign_in(server, browser, "zh-CN")
    page.goto(f"{server.url}/dashboard/cataloguing?lang=zh_CN&isbn=12345")
    assert page.locator("#isbn-error").is_visible()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.goto(f"{server.url}/dashboard/cataloguing?lang=zh_CN&isbn=9787020002207")
    page.wait_for_selector("#record")
    assert page.input_value("#draft-title") == "How to program a computer"
    shot(page, "cataloguing-zh")
    context.close()
