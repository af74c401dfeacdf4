"""The registers over a real socket (SQLite, and PostgreSQL when it runs), from events
pushed as kiosks push them: the overdue chase slips, the repair register (E), withdrawals
(F), the student librarians' work record (G), the stock-take checklist and the retention
period (closed loans anonymised), each as a page, CSV and XLSX; and the circulation log's
own, longer period (old events stop naming the child; the exports still answer)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta

import requests
from openpyxl import load_workbook
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.privacy import EVENTS_RETENTION_KEY, RETENTION_KEY, anonymise, anonymise_events
from bookcorner.central.reference import load_document
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.harness import CentralServer, store_events
from tests.central.pushes import KioskClient, checkin

HTML_TITLE = '<script>alert("t")</script> 小王子'
HTML_NAME = "<b>王小明</b>"


def today() -> date:
    return datetime.now().astimezone().date()


def checkout(item: str, patron: str, due: date) -> tuple[str, dict]:
    return "loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": "c", "code": item,
                                "due": due.isoformat(), "warnings": []}


def school(board, tag: str) -> KioskClient:
    """A class corner of its own (ids carry ``tag``): students in two classes, a teacher,
    two student librarians, shelved books with call numbers, one withdrawn on paper."""
    load_document(board.store, ReferenceDocument(
        patrons=[PatronRecord(patron_id=f"S1-{tag}", name=HTML_NAME, role="student", class_name=f"3.2-{tag}"),
                 PatronRecord(patron_id=f"S2-{tag}", name=f"Li Lei {tag}", role="student", class_name=f"4.1-{tag}"),
                 PatronRecord(patron_id=f"T1-{tag}", name=f"Ms Zhou {tag}", role="teacher"),
                 PatronRecord(patron_id=f"L1-{tag}", name=f"Han Meimei {tag}", role="student_librarian",
                              class_name=f"4.1-{tag}"),
                 PatronRecord(patron_id=f"L2-{tag}", name=f"Idle {tag}", role="student_librarian",
                              class_name=f"4.1-{tag}")],
        items=[ItemRecord(item_id=f"I1-{tag}", title=HTML_TITLE, call_number="I565.8/1", home_corner=f"A-{tag}"),
               ItemRecord(item_id=f"I2-{tag}", title=f"Charlotte's Web {tag}", call_number="I712.8/2",
                          home_corner=f"A-{tag}"),
               ItemRecord(item_id=f"I3-{tag}", title=f"Journey {tag}", call_number="I287.5/12",
                          home_corner=f"B-{tag}"),
               ItemRecord(item_id=f"I4-{tag}", title=f"Dictionary {tag}", call_number="H164/3",
                          home_corner=f"B-{tag}"),
               ItemRecord(item_id=f"I5-{tag}", title=f"Never lent {tag}", call_number="I247/5"),
               ItemRecord(item_id=f"W1-{tag}", title=f"Torn atlas {tag}", status="withdrawn")]))
    kiosk_id = "k-" + tag
    return KioskClient(board.url, kiosk_id, board.add_kiosk(kiosk_id))


def ours(text: str, tag: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return [row for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))) if tag in ",".join(row.values())]


def sheet_rows(content: bytes, tag: str) -> list[list]:
    sheet = load_workbook(io.BytesIO(content)).active
    return [list(r) for r in sheet.iter_rows(values_only=True) if any(tag in str(v) for v in r)]


def test_overdue_slips_one_per_student_grouped_by_class(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    kiosk = school(board, tag)
    day = today()
    assert kiosk.push([kiosk.event(*checkout(f"I1-{tag}", f"S1-{tag}", day - timedelta(days=3))),
                       kiosk.event(*checkout(f"I2-{tag}", f"S1-{tag}", day - timedelta(days=1))),
                       kiosk.event(*checkout(f"I3-{tag}", f"S2-{tag}", day + timedelta(days=5))),
                       kiosk.event(*checkout(f"I4-{tag}", f"T1-{tag}", day - timedelta(days=2)))]).status_code == 200
    page = client.get("/registers/overdue")
    assert page.status_code == 200
    text = page.text
    assert "<script>alert" not in text and "<b>王小明" not in text
    section = text.split(f'data-class="3.2-{tag}"', 1)[1].split("</section>", 1)[0]
    assert section.count('<article class="slip"') == 1 and f'data-patron="S1-{tag}"' in section
    assert "&lt;b&gt;王小明&lt;/b&gt;" in section and "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; 小王子" in section
    assert f"<td>{(day - timedelta(days=3)).isoformat()}</td><td>3</td>" in section
    assert f'data-patron="S2-{tag}"' not in text  # not due yet
    assert f'data-patron="T1-{tag}"' in text.split('data-class=""', 1)[1]  # no class: last
    rows = ours(client.get("/registers/overdue.csv").content.decode("utf-8"), tag)
    assert [(r["Student id"], r["Book id"], r["Days overdue"]) for r in rows] == [
        (f"S1-{tag}", f"I1-{tag}", "3"), (f"S1-{tag}", f"I2-{tag}", "1"), (f"T1-{tag}", f"I4-{tag}", "2")]
    assert rows[0]["Title"] == HTML_TITLE and rows[0]["Class"] == f"3.2-{tag}"
    book = client.get("/registers/overdue.xlsx")
    assert book.headers["content-type"].startswith("application/vnd.openxmlformats")
    cells = sheet_rows(book.content, tag)
    assert [(r[2], r[6]) for r in cells] == [(f"S1-{tag}", 3), (f"S1-{tag}", 1), (f"T1-{tag}", 2)]
    assert cells[0][5] == datetime.combine(day - timedelta(days=3), datetime.min.time())  # a date, not text
    zh = client.get("/registers/overdue.csv", params={"lang": "zh_CN"})
    assert zh.status_code == 200 and "attachment" in zh.headers["content-disposition"]


def test_repair_register_and_student_librarians_work_record(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    kiosk = school(board, tag)
    day = today()
    l1 = f"L1-{tag}"
    assert kiosk.push([
        kiosk.event(*checkout(f"I1-{tag}", f"S1-{tag}", day + timedelta(days=7))),
        kiosk.event(*checkout(f"I3-{tag}", l1, day + timedelta(days=7)), actor=l1),
        # the student librarian takes S1's book back for her, then her own (not work)
        kiosk.event("loan.returned", {**checkin(f"I1-{tag}")[1], "patron_id": f"S1-{tag}"}, actor=l1),
        kiosk.event("loan.returned", {**checkin(f"I3-{tag}")[1], "patron_id": l1}, actor=l1),
        kiosk.event("item.damaged", {"item_id": f"I1-{tag}", "note": "torn <page>"}, actor=l1),
        kiosk.event("item.damaged", {"item_id": f"I2-{tag}", "note": ""}, actor=f"T1-{tag}"),
        kiosk.event("item.repaired", {"item_id": f"I1-{tag}", "note": "glued"}, actor=l1),
    ]).status_code == 200
    page = client.get("/registers/repairs").text
    assert "torn &lt;page&gt;" in page and "&lt;script&gt;" in page and "<script>alert" not in page
    rows = ours(client.get("/registers/repairs.csv").content.decode("utf-8"), tag)
    assert [(r["Book id"], r["Reported by"], r["Kiosk"]) for r in rows] == [
        (f"I1-{tag}", f"Han Meimei {tag} ({l1})", kiosk.kiosk_id),
        (f"I2-{tag}", f"Ms Zhou {tag} (T1-{tag})", kiosk.kiosk_id)]
    assert rows[0]["Back from repair"].startswith(day.isoformat()) and rows[1]["Back from repair"] == "still in repair"
    cells = sheet_rows(client.get("/registers/repairs.xlsx").content, tag)
    assert isinstance(cells[0][0], datetime) and cells[1][6] == "still in repair"
    before = (day - timedelta(days=60)).isoformat()
    assert ours(client.get("/registers/repairs.csv", params={"from": before, "to": before}).text, tag) == []
    assert client.get("/registers/repairs", params={"from": "yesterday"}).status_code == 422

    work = {r["Student id"]: r for r in ours(client.get("/registers/librarians.csv").content.decode("utf-8"), tag)}
    assert set(work) == {l1, f"L2-{tag}"}  # the teacher and students are not student librarians
    assert (work[l1]["Returns handled"], work[l1]["Damaged books reported"],
            work[l1]["Other reports (lost, found, repaired)"], work[l1]["Days on duty"]) == ("1", "1", "1", "1")
    assert work[f"L2-{tag}"]["Returns handled"] == "0" and work[f"L2-{tag}"]["Days on duty"] == "0"
    cells = sheet_rows(client.get("/registers/librarians.xlsx").content, tag)
    assert [c[3:] for c in cells if c[2] == l1] == [[1, 1, 1, 1]]
    assert f"Han Meimei {tag}" in client.get("/registers/librarians", params={"lang": "zh_CN"}).text


def test_withdrawing_a_book_changes_the_catalogue_kiosks_pull_and_enters_the_register(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    kiosk = school(board, tag)
    kiosk.push([kiosk.event(*checkout(f"I3-{tag}", f"S2-{tag}", today() + timedelta(days=7)))])
    first = requests.get(f"{board.url}/v1/reference", headers=bearer(kiosk.token), timeout=10).json()
    item = f"I2-{tag}"
    for data in ({"item_id": item, "reason": "torn"}, {"item_id": item, "reason": "torn", "csrf": "guess"}):
        assert client.post("/registers/withdrawals", data).status_code == 403
    token = client.csrf()
    for fields, expected in (({"item_id": item, "reason": " "}, "needs a reason"),
                             ({"item_id": f"nope-{tag}", "reason": "torn"}, "No book with that id"),
                             ({"item_id": f"I3-{tag}", "reason": "torn"}, "on loan"),
                             ({"item_id": f"W1-{tag}", "reason": "torn"}, "already withdrawn")):
        answer = client.post("/registers/withdrawals", {"csrf": token, **fields})
        assert answer.status_code == 422 and expected in answer.text, fields
    with board.store.reading() as conn:
        assert json.loads(conn.execute(select(db.catalogue.c.data).where(db.catalogue.c.item_id == item))
                          .scalar_one()).get("status", "available") == "available"
    done = client.post("/registers/withdrawals", {"csrf": token, "item_id": item, "reason": "pages <missing>"})
    assert done.status_code == 303 and done.headers["location"] == f"/dashboard/registers/withdrawals?done={item}"
    with board.store.reading() as conn:
        record = json.loads(conn.execute(select(db.catalogue.c.data)
                                         .where(db.catalogue.c.item_id == item)).scalar_one())
        audit = conn.execute(select(db.audit_log).where(db.audit_log.c.target == item)).all()
    assert record["status"] == "withdrawn"
    assert [(a.who, a.action, json.loads(a.detail)["reason"]) for a in audit] == [
        (name, "registers.withdraw", "pages <missing>")]
    pulled = requests.get(f"{board.url}/v1/reference", params={"since": first["cursor"], "epoch": first["epoch"]},
                          headers=bearer(kiosk.token), timeout=10).json()
    assert [(i["item_id"], i["status"]) for i in pulled["items"] if tag in i["item_id"]] == [(item, "withdrawn")]
    assert client.post("/registers/withdrawals", {"csrf": token, "item_id": item, "reason": "again"}).status_code == 422
    page = client.get("/registers/withdrawals").text
    assert "pages &lt;missing&gt;" in page and f"Torn atlas {tag}" in page
    rows = ours(client.get("/registers/withdrawals.csv").content.decode("utf-8"), tag)
    assert [(r["Book id"], r["Reason"], r["By"]) for r in rows] == [
        (item, "pages <missing>", name), (f"W1-{tag}", "", "")]
    assert rows[1]["Withdrawn"] == "in the loaded catalogue"
    cells = sheet_rows(client.get("/registers/withdrawals.xlsx").content, tag)
    assert isinstance(cells[0][0], datetime) and cells[0][4] == "pages <missing>"


def test_stock_take_lists_books_not_seen_since_the_date_without_withdrawn_ones(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    kiosk = school(board, tag)
    kiosk.push([kiosk.event(*checkout(f"I1-{tag}", f"S1-{tag}", today() + timedelta(days=7))),
                kiosk.event("item.damaged", {"item_id": f"I4-{tag}", "note": ""}, actor=f"T1-{tag}")])
    assert client.post("/registers/withdrawals", {"csrf": client.csrf(), "item_id": f"I3-{tag}",
                                                  "reason": "lost for years"}).status_code == 303
    since = today()
    rows = ours(client.get("/registers/stock-take.csv", params={"since": since.isoformat()}).content.decode(), tag)
    assert [(r["Shelf"], r["Call number"], r["Book id"], r["Should be"], r["Last seen"]) for r in rows] == [
        (f"A-{tag}", "I712.8/2", f"I2-{tag}", "on the shelf", "never"),
        ("", "I247/5", f"I5-{tag}", "on the shelf", "never")]  # no shelf: last
    later = ours(client.get("/registers/stock-take.csv", params={"since": (since + timedelta(days=1)).isoformat()})
                 .content.decode(), tag)
    where = {r["Book id"]: (r["Should be"], r["Last seen"]) for r in later}
    assert where[f"I1-{tag}"] == (f"on loan, due {today() + timedelta(days=7)}", since.isoformat())
    assert where[f"I4-{tag}"] == ("in repair", since.isoformat())
    assert f"I3-{tag}" not in where and f"W1-{tag}" not in where
    page = client.get("/registers/stock-take", params={"since": since.isoformat()}).text
    assert f'data-shelf="A-{tag}"' in page and f'data-item="I2-{tag}"' in page and f'data-item="I1-{tag}"' not in page
    cells = sheet_rows(client.get("/registers/stock-take.xlsx", params={"since": since.isoformat()}).content, tag)
    assert [c[3] for c in cells] == [f"I2-{tag}", f"I5-{tag}"]
    assert client.get("/registers/stock-take", params={"since": "soon"}).status_code == 422


def _loan(tag: str, n: int, returned: datetime | None, out: datetime) -> dict:
    return {"loan_id": f"L{n}-{tag}", "item_id": f"I1-{tag}", "patron_id": f"S1-{tag}", "class_name": f"3.2-{tag}",
            "kiosk_id": "k-" + tag, "out_at": out, "due": out.date() + timedelta(days=7), "returned_at": returned,
            "renewals": 0, "anonymised_at": None}


def test_closed_loans_are_anonymised_after_the_retention_period(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    now = db.now()
    old, recent = now - timedelta(days=400), now - timedelta(days=100)
    loans = [_loan(tag, n, old, old - timedelta(days=5)) for n in range(5)]
    loans += [_loan(tag, 5, recent, recent - timedelta(days=5)), _loan(tag, 6, None, old - timedelta(days=5))]
    with board.store.writing() as conn:
        conn.execute(db.loans.insert(), loans)
        conn.execute(db.meta.delete().where(db.meta.c.key == RETENTION_KEY))

    def state() -> dict[str, tuple]:
        with board.store.reading() as conn:
            return {r.loan_id: (r.patron_id, r.class_name, r.anonymised_at is not None) for r in conn.execute(
                select(db.loans).where(db.loans.c.loan_id.like(f"%-{tag}")))}

    assert anonymise(board.store, now, "test", batch=2) >= 5  # the default: 365 days, in batches of 2
    after = state()
    assert all(after[f"L{n}-{tag}"] == (None, f"3.2-{tag}", True) for n in range(5))
    assert after[f"L5-{tag}"] == (f"S1-{tag}", f"3.2-{tag}", False)
    assert after[f"L6-{tag}"] == (f"S1-{tag}", f"3.2-{tag}", False)  # still on loan
    with board.store.reading() as conn:
        runs = conn.execute(select(db.audit_log.c.detail).where(db.audit_log.c.who == "test",
                                                                db.audit_log.c.action == "registers.anonymise")).all()
    assert len(runs) == 1 and json.loads(runs[0].detail)["retention_days"] == 365
    assert anonymise(board.store, now, "test") == 0  # nothing left: no audit entry
    assert 'id="days">365 days<' in client.get("/registers/privacy").text

    assert client.post("/registers/privacy", {"days": "50"}).status_code == 403
    token = client.csrf()
    for bad in ("", "-1", "x", "99999"):
        assert client.post("/registers/privacy", {"csrf": token, "days": bad}).status_code == 422
    assert client.post("/registers/privacy", {"csrf": token, "days": "0"}).status_code == 303
    assert anonymise(board.store, now + timedelta(days=1000), "test") == 0  # 0: never
    saved = client.post("/registers/privacy", {"csrf": token, "days": "50"})
    assert saved.status_code == 303 and saved.headers["location"].startswith("/dashboard/registers/privacy?saved=")
    assert state()[f"L5-{tag}"] == (None, f"3.2-{tag}", True)
    assert state()[f"L6-{tag}"][0] == f"S1-{tag}"
    page = client.get("/registers/privacy").text
    assert "50 days" in page and "What is not anonymised" in page
    with board.store.reading() as conn:
        actions = conn.execute(select(db.audit_log.c.action).where(db.audit_log.c.who == name)).scalars().all()
    assert actions.count("registers.retention") == 2 and "registers.anonymise" in actions

    with board.store.writing() as conn:
        conn.execute(db.loans.insert(), [_loan(tag, 7, now - timedelta(days=60), now - timedelta(days=70))])
    command = subprocess.run([sys.executable, "-m", "bookcorner", "central", "anonymise", "--db", board.db_url],
                             capture_output=True, text=True, timeout=60)
    assert command.returncode == 0, command.stderr
    assert "returned loans anonymised (retention period 50 days)" in command.stdout
    assert state()[f"L7-{tag}"] == (None, f"3.2-{tag}", True)


def test_the_register_index_links_every_register(board, librarian):
    client, _name, _token = librarian
    page = client.get("/registers")
    assert page.status_code == 200
    for path in ("overdue", "repairs", "withdrawals", "librarians", "stock-take", "privacy"):
        assert f'href="/dashboard/registers/{path}"' in page.text
    assert client.get("/registers", params={"lang": "zh_CN"}).status_code == 200


def test_a_server_applies_the_retention_period_when_it_starts_and_a_run_stops_between_batches(board, tmp_path):
    tag = uuid.uuid4().hex[:6]
    old = db.now() - timedelta(days=400)
    with board.store.writing() as conn:
        conn.execute(db.meta.delete().where(db.meta.c.key == RETENTION_KEY))  # the default: 365 days
        conn.execute(db.loans.insert(), [_loan(tag, n, old, old - timedelta(days=3)) for n in range(5)])
    assert anonymise(board.store, db.now(), f"stopped-{tag}", batch=2, stopping=lambda: True) == 2
    with board.store.reading() as conn:
        audit = conn.execute(select(db.audit_log.c.detail)
                             .where(db.audit_log.c.who == f"stopped-{tag}")).scalars().all()
    assert [json.loads(a)["loans"] for a in audit] == [2]  # what was done is audited even when stopped

    second = CentralServer(board.db_url, tmp_path / "second.log").start()  # another server on the same database
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with board.store.reading() as conn:
                left = conn.execute(select(db.loans.c.loan_id).where(db.loans.c.loan_id.like(f"%-{tag}"),
                                                                     db.loans.c.patron_id.is_not(None))).all()
            if not left:
                break
            time.sleep(0.1)
        assert left == []
    finally:
        second.stop()
    with board.store.reading() as conn:
        whom = conn.execute(select(db.audit_log.c.who).where(db.audit_log.c.action == "registers.anonymise")
                            .order_by(db.audit_log.c.audit_id.desc())).scalars().first()
    assert whom == "bookcorner (retention period)"


def _event(tag: str, n: int, kind: str, at: datetime, actor: str, payload: dict, outcome: str = "applied") -> dict:
    """An event as ingest stores it (written straight into the table: kiosks cannot push
    events months old)."""
    return {"event_id": f"E{n}-{tag}", "kiosk_id": "k-" + tag, "seq": n, "boot_id": "b", "monotonic_ns": n,
            "wall_time": at.isoformat(), "clock_synced": True, "actor": actor, "type": kind,
            "payload": json.dumps(payload, separators=(",", ":")), "received_at": at, "time": at,
            "time_quality": "synced", "time_lower": None, "time_upper": None, "outcome": outcome, "reason": None,
            "warnings": None, "batch_id": "b-" + tag, "source": "push"}


def test_the_circulation_log_forgets_the_children_after_its_own_period(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    now = db.now()
    old, recent = now - timedelta(days=200), now - timedelta(days=30)
    s1, s2, lib = f"S1-{tag}", f"S2-{tag}", f"L1-{tag}"
    due = (old + timedelta(days=14)).date().isoformat()

    def out(n, item, patron, at=old, card="c1", **more):
        return _event(tag, n, "loan.checked_out", at + timedelta(minutes=n), patron,
                      {"item_id": item, "patron_id": patron, "card_id": card, "code": item, "due": due,
                       "warnings": []}, **more)

    events = [
        out(1, f"I1-{tag}", s1),  # a loan returned long ago...
        _event(tag, 2, "loan.checked_in", old + timedelta(minutes=2), "kiosk",
               {"item_id": f"I1-{tag}", "loan_id": f"E1-{tag}", "patron_id": s1, "due": due, "with_card": False,
                "implicit": False, "warnings": []}),  # ...given back without a card: the kiosk is the actor
        out(3, f"I2-{tag}", s2, card="c2"),  # still on loan (loans)
        _event(tag, 4, "loan.renewed", old + timedelta(minutes=4), s2,
               {"item_id": f"I2-{tag}", "loan_id": f"E3-{tag}", "patron_id": s2, "due_before": due, "due": due,
                "renewal": 1}),  # of that open loan
        out(5, f"I3-{tag}", s1),  # still on loan (the book's state)
        _event(tag, 6, "scan.refused", old + timedelta(minutes=6), s1,
               {"reason": "overdue", "code": f"I4-{tag}", "item_id": f"I4-{tag}", "patron_id": s1}),  # open review
        _event(tag, 7, "item.damaged", old + timedelta(minutes=7), lib, {"item_id": f"I1-{tag}", "note": "torn"}),
        out(8, f"I4-{tag}", s2, outcome="needs_review"),  # a librarian corrected it to S1
        out(9, f"I5-{tag}", s1, at=recent),  # recent: kept
    ]
    with board.store.writing() as conn:
        conn.execute(db.meta.delete().where(db.meta.c.key == EVENTS_RETENTION_KEY))
        store_events(conn, events)
        conn.execute(db.loans.insert(), [
            {**_loan(tag, 0, old + timedelta(minutes=2), old), "loan_id": f"E1-{tag}"},
            {**_loan(tag, 0, None, old), "loan_id": f"E3-{tag}", "item_id": f"I2-{tag}"}])
        conn.execute(db.item_state.insert().values(item_id=f"I3-{tag}", loan_id=f"E5-{tag}", patron_id=s1,
                                                   due=old.date(), renewals=0, rev=0))
        conn.execute(db.reviews.insert(), [
            {"kiosk_id": "k-" + tag, "event_id": f"E6-{tag}", "seq": 6, "reason": "overdue", "detail": "{}",
             "created_at": old, "resolved_at": None, "resolution": None},
            {"kiosk_id": "k-" + tag, "event_id": f"E8-{tag}", "seq": 8, "reason": "not_allowed", "detail": "{}",
             "created_at": old, "resolved_at": old + timedelta(days=1),
             "resolution": json.dumps({"decision": "correct", "patron_id": s1})}])

    def stored() -> dict[str, tuple]:
        with board.store.reading() as conn:
            return {r.event_id.split("-")[0]: (r.actor, json.loads(r.payload)) for r in conn.execute(
                select(db.events).where(db.events.c.kiosk_id == "k-" + tag))}

    before = stored()
    assert anonymise_events(board.store, now, "test") == 0 and stored() == before  # the default, 0: as they are

    assert client.post("/registers/privacy/events", {"events_days": "150"}).status_code == 403
    assert client.post("/registers/privacy/events", {"events_days": "150", "csrf": "guess"}).status_code == 403
    token = client.csrf()
    assert client.post("/registers/privacy", {"csrf": token, "days": "100"}).status_code == 303
    for bad, why in (("89", "at least 90 days"), ("95", "shorter than the loans&#39; retention period (100 days)"),
                     ("x", "from 0 to 36500"), ("-1", "from 0 to 36500"), ("36501", "from 0 to 36500")):
        answer = client.post("/registers/privacy/events", {"csrf": token, "events_days": bad})
        assert answer.status_code == 422 and why in answer.text, bad
    assert stored() == before

    with board.store.writing() as conn:  # the period, then a run in batches of two
        conn.execute(db.meta.insert().values(key=EVENTS_RETENTION_KEY, value="150"))
    assert anonymise_events(board.store, now, "test", batch=2) >= 3
    after = stored()
    gone = {"patron_id": None, "card_id": None, "anonymised": True}
    assert after["E1"] == ("anonymised", {**before["E1"][1], **gone})
    assert after["E2"] == ("kiosk", {**before["E2"][1], **gone})  # a kiosk's own act keeps its actor
    assert after["E7"] == ("anonymised", {**before["E7"][1], **gone})  # a student librarian is a child too
    assert after["E8"] == ("anonymised", {**before["E8"][1], **gone})
    for kept in ("E3", "E4", "E5", "E6", "E9"):  # open loans, an open review, a recent event
        assert after[kept] == before[kept], kept
    with board.store.reading() as conn:
        runs = conn.execute(select(db.audit_log.c.detail).where(
            db.audit_log.c.who == "test", db.audit_log.c.action == "registers.anonymise_events")).scalars().all()
    assert len(runs) == 1 and json.loads(runs[0])["retention_days"] == 150
    assert anonymise_events(board.store, now, "test") == 0 and stored() == after  # done: nothing again

    saved = client.post("/registers/privacy/events", {"csrf": token, "events_days": "150"})
    assert saved.status_code == 303 and saved.headers["location"] == "/dashboard/registers/privacy?events_saved=0"
    page = client.get("/registers/privacy").text
    assert 'id="events-days">150 days<' in page and "no longer says which child borrowed what" in page
    for loans_days in ("0", "151"):  # the loans cannot keep names longer than the log
        answer = client.post("/registers/privacy", {"csrf": token, "days": loans_days})
        assert answer.status_code == 422 and "from 1 to 150 days" in answer.text
    with board.store.reading() as conn:
        audit = conn.execute(select(db.audit_log.c.action, db.audit_log.c.detail)
                             .where(db.audit_log.c.who == name)).all()
    assert [json.loads(d) for a, d in audit if a == "registers.events_retention"] == [{"days": 150, "before": 150}]

    day = old.date()
    period = {"from": (day - timedelta(days=1)).isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    exported = client.get("/exports/events.csv", params=period)
    assert exported.status_code == 200
    rows = {r["event_id"].split("-")[0]: r for r in csv.DictReader(io.StringIO(exported.text))
            if r["kiosk_id"] == "k-" + tag}
    assert [(rows[n]["patron_id"], rows[n]["card_id"], rows[n]["actor"]) for n in ("E1", "E2", "E7", "E8")] == [
        ("", "", "anonymised"), ("", "", "kiosk"), ("", "", "anonymised"), ("", "", "anonymised")]
    assert rows["E8"]["decision"] == "correct"  # the correction's student is not put back
    assert (rows["E3"]["patron_id"], rows["E3"]["card_id"]) == (s2, "c2")
    koc = client.get("/exports/circulation.koc", params=period)
    assert koc.status_code == 200
    mine = [line.split("\t", 1)[1] for line in koc.text.splitlines() if tag in line]
    # no card: no issue; the open loan's renewal is an issue to its card (Koha's renewal)
    assert mine == [f"return\tI1-{tag}", f"issue\tc2\tI2-{tag}", f"issue\tc2\tI2-{tag}", f"issue\tc1\tI3-{tag}"]

    with board.store.writing() as conn:  # the book comes back: its loan's events go at the next run
        conn.execute(db.loans.update().where(db.loans.c.loan_id == f"E3-{tag}").values(returned_at=old))
    try:
        command = subprocess.run([sys.executable, "-m", "bookcorner", "central", "anonymise", "--db", board.db_url],
                                 capture_output=True, text=True, timeout=60)
        assert command.returncode == 0, command.stderr
        assert "events of the circulation log anonymised (period 150 days)" in command.stdout
        last = stored()
        assert last["E3"][0] == "anonymised" and last["E4"][1]["patron_id"] is None
        assert last["E5"] == before["E5"] and last["E6"] == before["E6"]
    finally:  # the other tests' servers on this database keep their log
        with board.store.writing() as conn:
            conn.execute(db.meta.delete().where(db.meta.c.key == EVENTS_RETENTION_KEY))


def test_a_note_holding_control_characters_downloads_as_xlsx(board, librarian):
    """Issue 12: a damage note holding \\u0001 made repairs.xlsx answer 500 (openpyxl refuses
    control characters) for every period that included it; the shared writer leaves them out."""
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    kiosk = school(board, tag)
    assert kiosk.push([kiosk.event("item.damaged", {"item_id": f"I2-{tag}", "note": "torn\u0001page\u000b\u001f"},
                                   actor=f"T1-{tag}")]).status_code == 200
    answer = client.get("/registers/repairs.xlsx")
    assert answer.status_code == 200, answer.text[:300]
    assert [c for c in sheet_rows(answer.content, tag)[0] if c and "torn" in str(c)] == ["tornpage"]
    assert "torn\u0001page" in client.get("/registers/repairs.csv").content.decode("utf-8")
