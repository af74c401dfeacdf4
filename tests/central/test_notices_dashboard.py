"""Notices and labels on the dashboard over a real socket: class teachers' addresses from a
roster's teacher e-mail column (the kiosks never get them); the mail server, the schedule
and "send now" set through the forms, the notices reaching a real SMTP server (aiosmtpd)
and the outbox page saying what was sent and when, and a wrong password in the server's
own words; labels as a PDF whose every barcode zbar decodes back to its copy's number."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.dashboard_client import Librarian
from tests.central.mailbox import PASSWORD, USER
from tests.central.pushes import KioskClient


def upload(client: Librarian, name: str, data: bytes) -> str:
    """The staged roster's token, from the upload's redirect to its preview."""
    answer = client.http.post(client.url + "/data-in/upload", data={"kind": "roster", "csrf": client.csrf()},
                              files={"file": (name, data)}, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text[-800:]
    return answer.headers["location"].rsplit("/", 1)[1]


def outbox_rows(page: str) -> dict[str, str]:
    """Each outbox row's class and state as the page shows them."""
    rows = re.findall(r'<tr data-notice="\d+" data-status="(\w+)".*?</td><td>([^<]*)</td>', page, re.DOTALL)
    return {class_name: status for status, class_name in rows}


def test_a_roster_brings_the_class_teachers_addresses_which_the_kiosks_never_get(board, librarian):
    client, _name, _token = librarian
    roster = ("学号,姓名,班级,角色,班主任邮箱\r\n"
              "T301,王老师,三(1)班,教师,wang.laoshi@school.example\r\n"
              "S301,王小明,三(1)班,学生,wang.laoshi@school.example\r\n"
              "S302,李雷,三(1)班,学生,\r\n"
              "S401,韩梅梅,四(1)班,学生,ZHOU@school.example\r\n").encode("gb18030")
    token = upload(client, "roster.csv", roster)
    preview = client.get(f"/data-in/{token}").text
    table = preview.split('<table class="teachers">', 1)[1].split("</table>", 1)[0]
    assert '<tr data-class="三(1)班"><td>2</td><td>三(1)班</td><td>王老师</td><td>wang.laoshi@school.example</td>' \
           in table
    assert 'data-class="四(1)班"' in table and table.count("<tr data-class") == 2
    assert client.post(f"/data-in/{token}/confirm", {"csrf": client.csrf()}).status_code == 303
    page = client.get("/notices").text
    assert 'value="wang.laoshi@school.example"' in page and 'value="ZHOU@school.example"' in page
    assert 'value="王老师"' in page

    kiosk_id = "k-roster-mail"
    pulled = requests.get(f"{board.url}/v1/reference", params={"since": 0},
                          headers=bearer(board.add_kiosk(kiosk_id)), timeout=10)
    assert pulled.status_code == 200 and "王小明" in pulled.text and "school.example" not in pulled.text

    wrong = ("学号,姓名,班级,班主任邮箱\r\n"
             "S501,张伟,五(1)班,zhang@school.example\r\n"
             "S502,刘洋,五(1)班,li@school.example\r\n"
             "S503,陈晨,,chen@school.example\r\n"
             "S504,赵敏,五(2)班,not an address\r\n").encode()
    problems = client.get(f"/data-in/{upload(client, 'wrong.csv', wrong)}").text
    assert "one class, one address" in problems and "needs a class on its row" in problems
    assert "“not an address” is not an e-mail address." in problems

    plain = "学号,姓名,班级\r\nS601,孙悟空,六(1)班\r\n".encode()  # a roster without the column still loads
    token = upload(client, "plain.csv", plain)
    assert 'class="teachers"' not in client.get(f"/data-in/{token}").text
    assert client.post(f"/data-in/{token}/confirm", {"csrf": client.csrf()}).status_code == 303
    with board.store.reading() as conn:
        assert conn.execute(select(db.class_teachers.c.email).where(
            db.class_teachers.c.class_name == "三(1)班")).scalar() == "wang.laoshi@school.example"


def _lend(kiosk: KioskClient, item: str, patron: str, days: int):
    due = datetime.now().astimezone().date() + timedelta(days=days)
    return kiosk.event("loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": "c", "code": item,
                                            "due": due.isoformat(), "warnings": []})


def test_the_librarian_sets_the_mail_server_sends_now_and_sees_what_went(board, librarian, mailbox):
    client, _name, _token = librarian
    load_document(board.store, ReferenceDocument(
        patrons=[PatronRecord(patron_id="N1", name="王小明", role="student", class_name="二(3)班"),
                 PatronRecord(patron_id="N2", name="李雷", role="student", class_name="二(4)班")],
        items=[ItemRecord(item_id="NB1", title="小王子"), ItemRecord(item_id="NB2", title="夏洛的网")]))
    kiosk = KioskClient(board.url, "k-notices", board.add_kiosk("k-notices"))
    assert kiosk.push([_lend(kiosk, "NB1", "N1", -3), _lend(kiosk, "NB2", "N2", -5)]).status_code == 200
    csrf = client.csrf()
    for class_name, email in (("二(3)班", "er3@school.example"), ("二(4)班", "er4@school.example")):
        saved = client.post("/notices/class", {"csrf": csrf, "class_name": class_name, "teacher_name": "",
                                               "email": email})
        assert saved.status_code == 303
    bad = client.post("/notices/class", {"csrf": csrf, "class_name": "二(4)班", "teacher_name": "",
                                         "email": "er4 at school"})
    assert bad.status_code == 422 and "is not an e-mail address" in bad.text

    smtp = {"csrf": csrf, "host": "127.0.0.1", "port": str(mailbox.port), "security": "none", "user": USER,
            "password": "wrong", "sender": "library@school.example"}
    assert client.post("/notices/smtp", {**smtp, "port": "99999"}).status_code == 422
    assert client.post("/notices/smtp", smtp).status_code == 303
    assert client.post("/notices/schedule", {"csrf": csrf, "day0": "0", "day4": "4", "at": "07:30",
                                             "language": "en"}).status_code == 303
    page = client.get("/notices").text
    assert '<option value="en" selected>' in page and 'name="day0" value="0" checked' in page and 'name="day1" value="1">' in page and 'value="07:30"' in page

    sent = client.post("/notices/send-now", {"csrf": csrf})
    assert sent.status_code == 303 and "held=2" in sent.headers["location"]
    page = client.get("/notices").text
    assert outbox_rows(page) == {"二(3)班": "held", "二(4)班": "held"}
    said = re.findall(r'<td class="server-said">([^<]*)</td>', page)
    assert said and all(s.startswith("535 ") and "Authentication" in s for s in said)
    assert not mailbox.received

    assert client.post("/notices/smtp", {**smtp, "password": PASSWORD}).status_code == 303
    assert client.post("/notices/send-now", {"csrf": csrf}).status_code == 303
    page = client.get("/notices").text
    assert outbox_rows(page) == {"二(3)班": "sent", "二(4)班": "sent"}
    assert "<pre>Dear class teacher," in page and "王小明: 小王子, due" in page  # what each one said
    assert client.post("/notices/send-now", {"csrf": csrf}).status_code == 303  # once a day for each class
    assert sorted(r.recipients[0] for r in mailbox.received) == ["er3@school.example", "er4@school.example"]
    message = next(r for r in mailbox.received if r.recipients == ["er3@school.example"]).message()
    assert "二(3)班" in message["Subject"] and "王小明: 小王子" in message.get_content()
    assert client.post("/notices/smtp", {**smtp, "password": ""}).status_code == 303  # empty keeps the password
    assert 'name="password"' in client.get("/notices").text
    zh = client.get("/notices", params={"lang": "zh_CN"})
    assert zh.status_code == 200 and "<html lang=\"zh-CN\">" in zh.text


def _tools() -> None:
    missing = [tool for tool in ("pdftoppm", "zbarimg", "pdftotext") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt-get install poppler-utils zbar-tools)")


def decoded(pdf: bytes, folder: Path) -> list[str]:
    """Every barcode zbar finds on every page of the PDF, rendered at 300 dpi."""
    (folder / "labels.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "300", "-png", str(folder / "labels.pdf"), str(folder / "page")], check=True)
    found = []
    for page in sorted(folder.glob("page-*.png")):
        out = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Scode128.enable", str(page)],
                             capture_output=True, text=True, check=False)  # (status 4: no barcode on a page)
        found += out.stdout.split()
    return found


def test_labels_as_a_pdf_every_barcode_decodes_to_its_copy(board, librarian, tmp_path):
    _tools()
    client, _name, _token = librarian
    barcodes = [f"3000100{n:07d}" for n in range(1, 28)]  # 27 labels: more than one 24-label sheet
    load_document(board.store, ReferenceDocument(items=[
        *(ItemRecord(item_id=f"L{n}", title=f"小王子 第{n}册", barcode=code, call_number=f"I565.8/{n}")
          for n, code in enumerate(barcodes, start=1)),
        ItemRecord(item_id="LX", title="没有条码的书", isbn13="9787020002207", barcode="9787020002207")]))
    page = client.get("/labels", params={"choose": "codes", "codes": "L1\n30001000000002 l3, NOPE", "kind": "barcode",
                                         "sheet": "a4-3x8", "skip": "0"})
    assert page.status_code == 200
    assert "Not in the catalogue: NOPE" in page.text and "3 copies to label" in page.text
    assert "No accession barcode" not in page.text
    asked = client.get("/labels", params={"choose": "codes", "codes": "LX L2", "kind": "barcode", "sheet": "a4-3x8"})
    assert "LX (没有条码的书)" in asked.text and "1 copy to label" in asked.text

    since = {"choose": "since", "since": datetime.now().astimezone().date().isoformat(), "kind": "barcode",
             "sheet": "a4-3x8", "skip": "2"}
    pdf = client.get("/labels.pdf", params=since)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"] and pdf.content.startswith(b"%PDF")
    found = decoded(pdf.content, tmp_path)
    assert sorted(found) == barcodes  # each once, the ISBN-only book left out
    small = client.get("/labels.pdf", params={**since, "sheet": "a4-5x13", "skip": "0"})
    (tmp_path / "small").mkdir()
    assert sorted(decoded(small.content, tmp_path / "small")) == barcodes  # 38.1 mm wide labels too

    spine = client.get("/labels.pdf", params={**since, "kind": "spine", "sheet": "a4-5x13"})
    (tmp_path / "spine.pdf").write_bytes(spine.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "spine.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "I565.8" in text and "小王子 第1册" in text and "小王子 第27册" in text
    refused = client.get("/labels.pdf", params={**since, "skip": "24"})
    assert refused.status_code == 422 and "Skip from 0 to 23 places" in refused.text
    none = client.get("/labels.pdf", params={"choose": "codes", "codes": "NOPE"})
    assert none.status_code == 422 and "No copy to label" in none.text
