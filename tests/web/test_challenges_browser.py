"""Reading challenges in a real headless Chromium, in English and Chinese: the librarian sets
a challenge from the form with the school's award rules, opens its ranking (per class, per
child, the reading stars and the book-loving classes marked with a sign and words) and the
print view.
Screenshots: artifacts/dashboard-challenge-ranking-*.png."""

from __future__ import annotations

from datetime import date, timedelta

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.web.chromium import shot, sign_in_as

CHILDREN = {"S1": ("王小明", "3-1"), "S2": ("李小红", "3-1"), "S3": ("张小华", "3-2")}


def _school(server) -> None:
    load_document(server.store, ReferenceDocument(
        school="Test", patrons=[PatronRecord(patron_id=p, name=n, role="student", class_name=k)
                                for p, (n, k) in CHILDREN.items()],
        items=[ItemRecord(item_id=f"B{n}", title=f"书{n}") for n in range(3)]))
    now = db.now()
    with server.store.writing() as conn:
        conn.execute(db.loans.insert(), [
            {"loan_id": f"L{child}{n}", "item_id": f"B{n}", "patron_id": child, "class_name": CHILDREN[child][1],
             "kiosk_id": "K1", "out_at": now - timedelta(hours=1 + n), "due": date.today() + timedelta(days=14)}
            for child, books in (("S1", 3), ("S2", 1), ("S3", 2)) for n in range(books)])


def test_a_challenge_is_set_and_its_ranking_shown_in_both_languages(server, browser):
    _school(server)
    name = "Ms Qian"
    token = server.add_librarian(name)
    today = date.today()
    for language, locale in (("en", "en-GB"), ("zh_CN", "zh-CN")):
        context = browser.new_context(viewport={"width": 1200, "height": 900}, locale=locale)
        page = context.new_page()
        sign_in_as(page, server.url, name, token, language)
        page.goto(f"{server.url}/dashboard/reading?lang={language}")
        page.click("#challenges-link")
        page.wait_for_url("**/dashboard/reading/challenges")
        form = page.locator("#new-challenge")
        form.locator("input[name=name]").fill(f"读书月 {language}")
        form.locator("input[name=starts_on]").fill((today - timedelta(days=3)).isoformat())
        form.locator("input[name=ends_on]").fill((today + timedelta(days=3)).isoformat())
        form.locator("input[name=goal]").fill("2")
        form.locator("input[name=class_names]").fill("3-1, 3-2")
        form.locator("input[name=stars_per_class]").fill("1")
        form.locator("input[name=class_share]").fill("100")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/dashboard/reading/challenge/*?saved=1")
        assert page.locator("#saved").is_visible()
        shot(page, f"challenge-{language}")
        page.click("#ranking-link")
        page.wait_for_url("**/ranking")
        assert page.locator("html").get_attribute("lang").startswith("zh" if language == "zh_CN" else "en")
        children = page.locator("tr.child-row")
        assert [children.nth(i).locator("td.name").inner_text() for i in range(children.count())] == [
            "王小明", "张小华", "李小红"]
        assert page.locator("tr.class-row").first.get_attribute("data-class") == "3-2"  # all of 3-2 reached it
        reached = [children.nth(i).locator("td.reached").inner_text().startswith("✓") for i in range(3)]
        assert reached == [True, True, False]
        star, book_loving = ("Reading Star", "Book-loving Class") if language == "en" else ("阅读之星", "书香班级")
        assert [children.nth(i).locator("td.award").inner_text() for i in range(3)] == [f"★ {star}", f"★ {star}", ""]
        assert page.locator("#stars li.star").all_inner_texts() == ["★ 王小明 (3-1) · 3", "★ 张小华 (3-2) · 2"]
        assert page.locator("#book-loving li.book-loving").all_inner_texts() == ["◆ 3-2 · 100%"]
        assert page.locator("tr.class-row td.award").all_inner_texts() == [f"◆ {book_loving}", ""]
        assert page.locator("#certificates").is_visible()
        # (the Chinese "1/2" comes with the translations: see the report)
        assert children.nth(2).locator("td.progress").inner_text() == ("1 of 2" if language == "en" else "1/2")
        page.emulate_media(media="print")
        assert page.locator("table.ranking-children").is_visible() and page.locator("#period").is_visible()
        shot(page, f"challenge-ranking-{language}")
        context.close()
