"""The reading challenges' dashboard pages over a real server, on both databases: set a
challenge, see it reach a kiosk's pull, edit it, see the ranking per class and per child in
both languages, end it; refusals are said in words."""

from __future__ import annotations

import re
import subprocess
import uuid
from datetime import date, timedelta

import requests

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDelta, ReferenceDocument, decode
from tests.central.dashboard_client import Librarian


def _school(board, tag: str) -> dict[str, str]:
    """Two children of class 3-<tag>, one of 4-<tag>; each read some books this week."""
    klass3, klass4 = f"3-{tag}", f"4-{tag}"
    children = {f"A{tag}": ("王小明", klass3), f"B{tag}": ("李小红", klass3), f"C{tag}": ("张小华", klass4)}
    load_document(board.store, ReferenceDocument(
        school="Test", patrons=[PatronRecord(patron_id=p, name=n, role="student", class_name=k)
                                for p, (n, k) in children.items()],
        items=[ItemRecord(item_id=f"{tag}{n}", title=f"书{n}", call_number="I287") for n in range(3)]))
    now = db.now()
    with board.store.writing() as conn:
        conn.execute(db.loans.insert(), [
            {"loan_id": f"L{tag}{child}{n}", "item_id": f"{tag}{n}", "patron_id": child,
             "class_name": children[child][1], "kiosk_id": "K1", "out_at": now - timedelta(hours=1 + n),
             "due": date.today() + timedelta(days=14)}
            for child, books in ((f"A{tag}", 2), (f"B{tag}", 1), (f"C{tag}", 2)) for n in range(books)])
    return {"3": klass3, "4": klass4}


def _form(client: Librarian, name: str, classes: str, goal: str = "2", **more) -> dict[str, str]:
    today = date.today()
    return {"csrf": client.csrf(), "name": name, "starts_on": (today - timedelta(days=7)).isoformat(),
            "ends_on": (today + timedelta(days=7)).isoformat(), "goal": goal, "by": "books",
            "class_names": classes, **more}


def _pull(board) -> ReferenceDelta:
    kiosk_id = "k-" + uuid.uuid4().hex[:8]
    pulled = requests.get(f"{board.url}/v1/reference", headers=bearer(board.add_kiosk(kiosk_id)), timeout=15)
    assert pulled.status_code == 200, pulled.text[:300]
    return decode(pulled.content, ReferenceDelta)


def _pdf_pages(pdf: bytes, folder) -> list[str]:
    """The PDF's text, page by page (poppler's pdftotext, as a person's viewer reads it)."""
    (folder / "certificates.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(folder / "certificates.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    return [page for page in text.split("\f") if page.strip()]


def test_a_challenge_is_set_ranked_edited_and_ended(board, librarian, tmp_path):
    client, _name, _credential = librarian
    tag = uuid.uuid4().hex[:4]
    classes = _school(board, tag)
    name = "读书月 " + tag
    made = client.post("/reading/challenges/new", _form(client, name, f"{classes['3']}, {classes['4']}"))
    assert made.status_code == 303, made.text[-600:]
    challenge_id = re.fullmatch(r"/dashboard/reading/challenge/([0-9a-f]+)\?saved=1", made.headers["location"]).group(1)
    listed = client.get("/reading/challenges?lang=en")
    assert name in listed.text and "Running" in listed.text and "2 books" in listed.text

    [shipped] = [c for c in _pull(board).reading.challenges if c.challenge_id == challenge_id]
    assert (shipped.name, shipped.goal, sorted(shipped.class_names)) == (name, 2, sorted(classes.values()))

    ranking = client.get(f"/reading/challenge/{challenge_id}/ranking?lang=en")
    assert ranking.status_code == 200
    rows = re.findall(r'<tr class="child-row" data-patron="(\w+)"><td class="name">(\w+)</td><td>([\w-]+)</td>\s*'
                      r'<td class="progress">([^<]+)</td>\s*<td class="reached">([^<]*)</td>', ranking.text)
    assert [(p, n, k, prog, "Goal" in r) for p, n, k, prog, r in rows] == [
        (f"A{tag}", "王小明", classes["3"], "2 of 2", True), (f"C{tag}", "张小华", classes["4"], "2 of 2", True),
        (f"B{tag}", "李小红", classes["3"], "1 of 2", False)]
    places = re.findall(r'<tr class="class-row" data-class="([\w-]+)">', ranking.text)
    assert places == [classes["4"], classes["3"]]  # all of 4's children reached the goal, half of 3's
    chinese = client.get(f"/reading/challenge/{challenge_id}/ranking?lang=zh_CN")
    assert chinese.status_code == 200 and 'lang="zh' in chinese.text and "王小明" in chinese.text

    pdf = client.get(f"/reading/challenge/{challenge_id}/certificates.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    pages = _pdf_pages(pdf.content, tmp_path)
    assert len(pages) == 2  # a page per child at the goal: 王小明 and 张小华, not 李小红
    assert "王小明" in pages[0] and "张小华" in pages[1] and "李小红" not in "".join(pages)
    assert all(name in page and "Reading Challenge Certificate" in page for page in pages)

    edited = client.post(f"/reading/challenge/{challenge_id}/save", _form(client, name, classes["3"], goal="3"))
    assert edited.status_code == 303
    again = client.get(f"/reading/challenge/{challenge_id}/ranking?lang=en").text
    assert "2 of 3" in again and f'data-patron="C{tag}"' not in again  # class 4 no longer takes part

    assert client.post(f"/reading/challenge/{challenge_id}/end", {"csrf": client.csrf()}).status_code == 303
    page = client.get(f"/reading/challenge/{challenge_id}?lang=en").text
    assert "Over" in page and 'id="ended"' in page and 'id="end-challenge"' not in page
    assert challenge_id not in {c.challenge_id for c in _pull(board).reading.challenges}
    audit = client.get("/audit?lang=en").text
    assert f"set the reading challenge {name}." in audit and f"ended the reading challenge {name}." in audit


def test_a_challenge_without_a_period_or_goal_is_refused_in_words(board, librarian):
    client, _name, _credential = librarian
    backwards = _form(client, "x", "", starts_on="2026-12-01", ends_on="2026-11-01")
    answer = client.post("/reading/challenges/new", backwards)
    assert answer.status_code == 422 and "Give the first and the last day" in answer.text
    answer = client.post("/reading/challenges/new", _form(client, "x", "", goal="zero"))
    assert answer.status_code == 422 and "The goal is a number of books from 1 to 1000." in answer.text
    assert client.get("/reading/challenge/nosuch/ranking").status_code == 404
    assert client.post("/reading/challenge/nosuch/end", {"csrf": client.csrf()}).status_code == 404
    assert client.get("/reading/challenge/nosuch/certificates.pdf").status_code == 404
    nobody = client.post("/reading/challenges/new", _form(client, "无人完成 " + uuid.uuid4().hex[:4], "9-9"))
    ranking = client.get(nobody.headers["location"].removeprefix("/dashboard").split("?")[0] + "/ranking?lang=en")
    assert "No student takes part." in ranking.text and 'id="certificates"' not in ranking.text
    none = client.get(nobody.headers["location"].removeprefix("/dashboard").split("?")[0] + "/certificates.pdf?lang=en")
    assert none.status_code == 422 and "No student has reached the goal yet" in none.text
    assert "x</a>" not in client.get("/reading/challenges").text


def _challenge_id(answer) -> str:
    assert answer.status_code == 303, answer.text[-600:]
    return re.fullmatch(r"/dashboard/reading/challenge/([0-9a-f]+)\?saved=1", answer.headers["location"]).group(1)


def test_the_schools_award_rules_mark_the_ranking_and_make_the_certificates(board, librarian, tmp_path):
    client, _name, _credential = librarian
    tag = uuid.uuid4().hex[:4]
    classes = _school(board, tag)  # 3-x: 2 books and 1 book; 4-x: 2 books (goal 2)
    name = "书香月 " + tag
    rules = {"star_at_least": "2", "stars_per_class": "1", "class_share": "100", "class_average": "2"}
    challenge_id = _challenge_id(client.post("/reading/challenges/new", _form(
        client, name, f"{classes['3']}, {classes['4']}", **rules)))
    edit = client.get(f"/reading/challenge/{challenge_id}?lang=en").text
    assert all(re.search(rf'name="{field}" id="{field}" [^>]*value="{value}"', edit) for field, value in rules.items())

    english = client.get(f"/reading/challenge/{challenge_id}/ranking?lang=en").text
    assert re.findall(r'<li class="star" data-patron="(\w+)">★ (\w+)', english) == [
        (f"A{tag}", "王小明"), (f"C{tag}", "张小华")]
    assert re.findall(r'<li class="book-loving" data-class="([\w-]+)">◆', english) == [classes["4"]]
    awards = dict(re.findall(r'<tr class="child-row" data-patron="(\w+)">.*?<td class="award">([^<]*)</td>',
                             english, re.S))
    assert awards == {f"A{tag}": "★ Reading Star", f"C{tag}": "★ Reading Star", f"B{tag}": ""}
    class_awards = dict(re.findall(r'<tr class="class-row" data-class="([\w-]+)">.*?<td class="award">([^<]*)</td>',
                                   english, re.S))
    assert class_awards == {classes["4"]: "◆ Book-loving Class", classes["3"]: ""}  # 3-x: half at the goal
    assert "at most 1 reading stars per class" in english.lower() and "at least 100%" in english
    chinese = client.get(f"/reading/challenge/{challenge_id}/ranking?lang=zh_CN").text
    assert "★ 阅读之星" in chinese and "◆ 书香班级" in chinese and "至少占全班 100%" in chinese

    pdf = client.get(f"/reading/challenge/{challenge_id}/certificates.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    pages = _pdf_pages(pdf.content, tmp_path)
    assert len(pages) == 3  # the two reading stars, then the book-loving class
    assert "王小明" in pages[0] and "张小华" in pages[1] and "李小红" not in "".join(pages)
    assert all("阅读之星" in page and "Reading Star" in page for page in pages[:2])
    assert "书香班级" in pages[2] and "Book-loving Class" in pages[2] and f"Class {classes['4']}" in pages[2]
    assert f"{classes['4']}班" in pages[2] and "1 of its 1 students reached the goal" in pages[2]
    assert all(name in page for page in pages)

    # a least number nobody reached, no class share: the goal reached, but no award and no certificate
    nobody = {**rules, "star_at_least": "5", "class_share": "", "class_average": ""}
    assert client.post(f"/reading/challenge/{challenge_id}/save", _form(
        client, name, f"{classes['3']}, {classes['4']}", **nobody)).status_code == 303
    again = client.get(f"/reading/challenge/{challenge_id}/ranking?lang=en").text
    assert "No reading star yet." in again and 'id="certificates"' not in again and 'id="book-loving"' not in again
    assert "No book-loving class award" in again and "✓ Goal reached" in again
    none = client.get(f"/reading/challenge/{challenge_id}/certificates.pdf?lang=en")
    assert none.status_code == 422 and "No student or class has earned an award" in none.text


def test_award_rules_out_of_range_are_refused_next_to_their_field(board, librarian):
    client, _name, _credential = librarian
    for field, value, words, chinese in (
            ("star_at_least", "1", "from the goal up to 1000", "从目标数到 1000"),  # below the goal of 2
            ("stars_per_class", "0", "from 1 to 1000 (empty: no limit)", "不限"),
            ("class_share", "101", "a percentage from 1 to 100", "百分数"),
            ("class_share", "eighty", "a percentage from 1 to 100", "百分数"),
            ("class_average", "-2", "per student on average is a whole number", "平均读书数")):
        for language, text in (("en", words), ("zh_CN", chinese)):
            answer = client.post(f"/reading/challenges/new?lang={language}",
                                 _form(client, "规则 " + uuid.uuid4().hex[:4], "", **{field: value,
                                       **({"class_share": "80"} if field == "class_average" else {})}))
            assert answer.status_code == 422, (field, value)
            mark = re.search(rf'<input type="number" name="{field}" id="{field}"[^>]*value="([^"]*)" '
                             rf'aria-invalid="true" aria-describedby="error-{field}">'
                             rf'<span class="field-error" id="error-{field}" role="alert">([^<]+)</span>', answer.text)
            assert mark is not None and mark.group(1) == value and text in mark.group(2), (field, language)
    alone = client.post("/reading/challenges/new?lang=en", _form(client, "x", "", class_average="3"))
    assert alone.status_code == 422 and 'id="error-class_share"' in alone.text
    assert "the average alone makes no book-loving class" in alone.text
    assert "规则 " not in client.get("/reading/challenges").text  # nothing was saved
