"""The reading lists' dashboard pages over a real server: upload a CSV, see which rows
match no book and why, save, see the list, delete it; a kiosk's delta carries the lists;
both languages; another librarian cannot save someone's upload; bad files are said so."""

from __future__ import annotations

import re
import uuid

import requests

from bookcorner.central.reference import load_document
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ItemRecord, ReferenceDelta, ReferenceDocument, decode
from tests.central.dashboard_client import Librarian

LIST = ("书名,ISBN\n西游记,9787020002207\n《红楼梦》,\n<b>不存在</b>,\n水浒传,9787020002222\n").encode("gb18030")


def _school(board) -> None:
    load_document(board.store, ReferenceDocument(school="Test", items=[
        ItemRecord(item_id="B1", title="西游记", isbn13="9787020002207"),
        ItemRecord(item_id="B2", title="红楼梦", isbn13="9787020002214"),
        ItemRecord(item_id="B3", title="水浒传", isbn13="9787020002221")]))


def _upload(client: Librarian, name: str, data: bytes, filename: str = "list.csv", **fields) -> requests.Response:
    form = {"csrf": client.csrf(), "name": name, "kind": "grade", "grades": "3", "class_name": "", **fields}
    return client.http.post(client.url + "/reading/upload", data=form, files={"file": (filename, data)},
                            allow_redirects=False, timeout=30)


def _token(answer: requests.Response) -> str:
    assert answer.status_code == 303, answer.text[-800:]
    location = answer.headers["location"]
    assert location.startswith("/dashboard/reading/preview/")
    return location.rsplit("/", 1)[1]


def test_a_list_is_uploaded_previewed_saved_and_reaches_the_kiosks(board, librarian):
    client, _name, _credential = librarian
    _school(board)
    name = "三年级推荐书目 " + uuid.uuid4().hex[:4]
    token = _token(_upload(client, name, LIST))
    page = client.get(f"/reading/preview/{token}")
    assert page.status_code == 200
    assert "3 of 4 rows match a book in the catalogue." in page.text
    assert "No book in the catalogue has this ISBN or title" in page.text
    assert "The ISBN&#39;s last digit does not fit" in page.text or "The ISBN's last digit does not fit" in page.text
    assert "&lt;b&gt;不存在&lt;/b&gt;" in page.text and "<b>不存在" not in page.text  # shown as text
    chinese = client.get(f"/reading/preview/{token}?lang=zh_CN")
    assert chinese.status_code == 200 and 'lang="zh' in chinese.text
    other = Librarian(board.url)
    other_name = "Mx Wu " + uuid.uuid4().hex[:4]
    assert other.sign_in(other_name, board.add_librarian(other_name)).status_code == 303
    refused = other.post(f"/reading/preview/{token}/confirm", {"csrf": other.csrf()})
    assert refused.status_code == 403 and "Another librarian uploaded this list" in refused.text
    saved = client.post(f"/reading/preview/{token}/confirm", {"csrf": client.csrf()})
    assert saved.status_code == 303 and saved.headers["location"] == "/dashboard/reading?saved=1"
    front = client.get("/reading?saved=1&lang=en")
    assert name in front.text and "Saved." in front.text
    list_id = re.search(r'/dashboard/reading/list/([0-9a-f]+)"', front.text).group(1)
    shown = client.get(f"/reading/list/{list_id}")
    assert shown.status_code == 200 and "西游记" in shown.text and "Several books" not in shown.text

    kiosk_id = "k-" + uuid.uuid4().hex[:8]
    token_k = board.add_kiosk(kiosk_id)
    pulled = requests.get(f"{board.url}/v1/reference", headers=bearer(token_k), timeout=15)
    assert pulled.status_code == 200, pulled.text[:300]
    delta = decode(pulled.content, ReferenceDelta)
    [shipped] = [r for r in delta.reading.lists if r.list_id == list_id]
    assert shipped.books == ["9787020002207", "9787020002214", "9787020002221"] and shipped.grades == [3]

    assert client.post(f"/reading/list/{list_id}/delete", {"csrf": client.csrf()}).status_code == 303
    assert name not in client.get("/reading").text
    assert client.get(f"/reading/list/{list_id}").status_code == 404
    assert client.post(f"/reading/preview/{token}/confirm", {"csrf": client.csrf()}).status_code == 404


def test_bad_uploads_are_said_so_to_the_librarian(board, librarian):
    client, _name, _credential = librarian
    _school(board)
    old = _upload(client, "x", b"\xd0\xcf\x11\xe0 old excel", "list.xls")
    assert old.status_code == 422 and 'role="alert"' in old.text
    nameless = _upload(client, "", LIST)
    assert nameless.status_code == 422 and "Give the list a name" in nameless.text
    grades = _upload(client, "x", LIST, grades="three")
    assert grades.status_code == 422 and "Grades are numbers from 1 to 12" in grades.text
    no_class = _upload(client, "x", LIST, kind="class")
    assert no_class.status_code == 422 and "needs the class it is for" in no_class.text
    nothing = _token(_upload(client, "x", "书名\n不存在的书\n".encode()))
    refused = client.post(f"/reading/preview/{nothing}/confirm", {"csrf": client.csrf()})
    assert refused.status_code == 409 and "No row of the file matched a book" in refused.text
    assert client.post(f"/reading/preview/{nothing}/cancel", {"csrf": client.csrf()}).status_code == 303
    assert client.get(f"/reading/preview/{nothing}").status_code == 404
