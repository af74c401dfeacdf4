"""Reading lists, in a real headless Chromium, in English and Chinese: a list file with a
row that matches no book is uploaded, the row shown with why, the list saved and opened.
Screenshots: artifacts/dashboard-reading-*.png."""

from __future__ import annotations

from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import ItemRecord, ReferenceDocument
from tests.web.chromium import shot, sign_in_as


def test_a_list_is_uploaded_previewed_and_saved_in_both_languages(server, browser, tmp_path):
    load_document(server.store, ReferenceDocument(school="Test", items=[
        ItemRecord(item_id="B1", title="西游记", isbn13="9787020002207"),
        ItemRecord(item_id="B2", title="红楼梦", isbn13="9787020002214")]))
    name = "Ms Zhou"
    token = server.add_librarian(name)
    listed = tmp_path / "三年级书单.csv"
    listed.write_bytes("书名,ISBN\n西游记,9787020002207\n《红楼梦》,\n<b>不存在的书</b>,\n".encode("gb18030"))
    for language, locale in (("en", "en-GB"), ("zh_CN", "zh-CN")):
        context = browser.new_context(viewport={"width": 1200, "height": 900}, locale=locale)
        page = context.new_page()
        sign_in_as(page, server.url, name, token, language)
        page.goto(f"{server.url}/dashboard/reading?lang={language}")
        page.click("nav a[href$='/reading']")
        page.wait_for_url("**/dashboard/reading")
        page.fill("#upload-list input[name=name]", f"三年级推荐书目 {language}")
        page.fill("#upload-list input[name=grades]", "3")
        page.set_input_files("#upload-list input[type=file]", str(listed))
        page.click("#upload-list button[type=submit]")
        page.wait_for_url("**/dashboard/reading/preview/*")
        unmatched = page.locator("table.unmatched").inner_text()
        assert "<b>不存在的书</b>" in unmatched  # the title as text, not markup
        if language == "en":
            assert page.locator("#summary").inner_text() == "2 of 3 rows match a book in the catalogue."
            assert "No book in the catalogue has this ISBN or title" in unmatched
        assert "红楼梦" in page.locator("table.matched").inner_text()
        shot(page, f"reading-preview-{language}")
        page.click("#confirm")
        page.wait_for_url("**/dashboard/reading?saved=1")
        assert page.locator("#saved").is_visible()
        page.click(f"text=三年级推荐书目 {language}")
        page.wait_for_url("**/dashboard/reading/list/*")
        assert "西游记" in page.locator("table.books").inner_text()
        shot(page, f"reading-list-{language}")
        context.close()
