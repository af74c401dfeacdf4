"""The librarian's dashboard over a real socket (SQLite, and PostgreSQL when it runs):
who may open it, form tokens, text shown as text, end of day, the review queue and the
exports (the .koc checked line by line against ../shared/DOMAIN.md)."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import datetime

import requests
from sqlalchemy import select

from central import db
from central.dashboard import FORMS, PAGES
from central.kiosks import add_kiosk
from central.reference import load_document
from protocol.credentials import bearer
from protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.dashboard_client import Librarian, board, librarian  # noqa: F401  (fixtures)
from tests.central.pushes import KioskClient, checkout, give_back

SCRIPT_TITLE = '<script>alert("t")</script> & <b>Friends</b>'
HTML_NAME = '<img src=x onerror=alert(1)>Wang'


def new_kiosk(board) -> KioskClient:
    kiosk_id = "k-" + uuid.uuid4().hex[:10]
    return KioskClient(board.url, kiosk_id, board.add_kiosk(kiosk_id))


def reference(board, tag: str) -> None:
    load_document(board.store, ReferenceDocument(
        patrons=[PatronRecord(patron_id=f"S-{tag}", name=HTML_NAME, role="student", class_name="3.2")],
        items=[ItemRecord(item_id=f"I-{tag}", title=SCRIPT_TITLE, barcode=f"3{tag}"),
               ItemRecord(item_id=f"J-{tag}", title=f"Plain {tag}")]))


def test_anonymous_and_kiosk_credentials_open_no_dashboard_page(board):
    kiosk = new_kiosk(board)
    librarian_token = board.add_librarian("someone")
    for headers in ({}, bearer(kiosk.token), bearer(librarian_token), {"Cookie": "bc_session=forged"}):
        for path in PAGES:
            answer = requests.get(f"{board.url}/dashboard{path}", headers=headers, allow_redirects=False, timeout=10)
            assert answer.status_code == 303, (path, headers)
            assert answer.headers["location"] == "/dashboard/sign-in"
            assert "<table" not in answer.text and "csrf" not in answer.text
        for path in FORMS:
            answer = requests.post(f"{board.url}/dashboard{path}", headers=headers, data={"csrf": "x"},
                                   allow_redirects=False, timeout=10)
            assert answer.status_code == 403, (path, headers)


def test_only_a_librarian_signs_in_and_signing_out_ends_the_session(board):
    name = "Mr Zhao " + uuid.uuid4().hex[:4]
    token = board.add_librarian(name)
    kiosk = new_kiosk(board)
    client = Librarian(board.url)
    assert client.sign_in(name, kiosk.token).status_code == 401  # a kiosk's credential
    assert client.sign_in(kiosk.kiosk_id, kiosk.token).status_code == 401
    assert client.sign_in("someone else", token).status_code == 401  # the wrong name
    assert client.sign_in(name, token + "x").status_code == 401
    assert "bc_session" not in client.http.cookies
    signed = client.sign_in(name, token)
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard/end-of-day"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/dashboard" in cookie
    page = client.get("/end-of-day")
    assert page.status_code == 200 and name in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    session = client.http.cookies["bc_session"]
    assert client.post("/sign-out", {"csrf": client.csrf()}).status_code == 303
    again = requests.get(f"{board.url}/dashboard/end-of-day", cookies={"bc_session": session},
                         allow_redirects=False, timeout=10)
    assert again.status_code == 303  # the old cookie is dead on the server, not just forgotten


def test_signing_in_needs_the_forms_own_token(board):
    name = "Ms Sun " + uuid.uuid4().hex[:4]
    token = board.add_librarian(name)
    bare = requests.post(f"{board.url}/dashboard/sign-in", data={"name": name, "credential": token},
                         allow_redirects=False, timeout=10)
    assert bare.status_code == 403 and "bc_session" not in bare.cookies
    forged = requests.post(f"{board.url}/dashboard/sign-in", data={"name": name, "credential": token, "csrf": "a"},
                           cookies={"bc_sign_in": "b"}, allow_redirects=False, timeout=10)
    assert forged.status_code == 403


def test_revoking_the_credential_ends_its_sessions(board, librarian):
    client, _name, token = librarian
    from protocol.credentials import token_hash

    with board.store.writing() as conn:
        conn.execute(db.credentials.update().where(db.credentials.c.token_hash == token_hash(token))
                     .values(revoked_at=db.now()))
    assert client.get("/end-of-day").status_code == 303


def test_a_dashboard_session_cannot_push_events(board, librarian):
    client, _name, _token = librarian
    kiosk = new_kiosk(board)
    body = kiosk.request([kiosk.event(*checkout("I-x", "S-x"))])
    from protocol.messages import encode

    session = client.http.cookies["bc_session"]
    for headers in ({"Cookie": f"bc_session={session}"}, bearer(session)):
        answer = requests.post(f"{board.url}/v1/push", data=encode(body), timeout=10,
                               headers={**headers, "Content-Type": "application/json"})
        assert answer.status_code == 401


def _open_review(board, kiosk: KioskClient, item: str) -> int:
    answer = kiosk.push([kiosk.event(*give_back(item))])  # not on loan: kept for review
    assert answer.json()["results"][0]["reason"] == "not_on_loan"
    with board.store.reading() as conn:
        return conn.execute(select(db.reviews.c.review_id).where(db.reviews.c.kiosk_id == kiosk.kiosk_id)
                            .order_by(db.reviews.c.review_id.desc())).scalars().first()


def test_every_form_needs_the_sessions_token(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    reference(board, tag)
    review = _open_review(board, new_kiosk(board), f"I-{tag}")
    other = Librarian(board.url)
    other_name = "Mx Wu " + tag
    assert other.sign_in(other_name, board.add_librarian(other_name)).status_code == 303
    for path in FORMS:
        path = path.replace("/1", f"/{review}")
        for data in ({"decision": "accept"}, {"decision": "accept", "csrf": ""},
                     {"decision": "accept", "csrf": "guess"}, {"decision": "accept", "csrf": other.csrf()}):
            assert client.post(path, data).status_code == 403, (path, data)
    assert client.get("/end-of-day").status_code == 200  # still signed in
    with board.store.reading() as conn:
        assert conn.execute(select(db.reviews.c.resolved_at).where(db.reviews.c.review_id == review)).scalar() is None


def test_titles_and_names_holding_html_are_shown_as_text(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    reference(board, tag)
    kiosk = new_kiosk(board)
    assert kiosk.push([kiosk.event(*checkout(f"I-{tag}", f"S-{tag}"))]).status_code == 200
    _open_review(board, kiosk, f"J-{tag}")
    kiosk.push([kiosk.event("loan.renewed", {"item_id": f"I-{tag}", "patron_id": f"S-{tag}", "due": "2026-12-01",
                                             "loan_id": "nope"})])
    for path in ("/end-of-day", "/reviews"):
        text = client.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text and "<b>Friends" not in text
    day = client.get("/end-of-day").text
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; &amp; &lt;b&gt;Friends&lt;/b&gt;" in day
    assert "&lt;img src=x onerror=alert(1)&gt;Wang" in day


def test_end_of_day_shows_each_corner_all_in_or_missing_and_todays_loans(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    reference(board, tag)
    kiosk = new_kiosk(board)
    silent = "quiet-" + tag
    add_kiosk(board.store, silent, "Class <3.2>")
    kiosk.push([kiosk.event(*checkout(f"I-{tag}", f"S-{tag}")), kiosk.event(*checkout(f"J-{tag}", f"S-{tag}"))])
    kiosk.push([kiosk.event(*give_back(f"J-{tag}"))])
    gappy = new_kiosk(board)
    assert gappy.push([gappy.event(*checkout(f"K-{tag}", f"S-{tag}"), seq=3)], from_seq=3, to_seq=3).status_code == 200
    page = client.get("/end-of-day").text
    rows = {k: s for s, k in re.findall(r'<tr class="corner (\w+)" data-kiosk="([^"]+)"', page)}
    assert rows[kiosk.kiosk_id] == "ok"
    assert rows[silent] == "missing" and rows[gappy.kiosk_id] == "missing"
    assert "Class &lt;3.2&gt;" in page
    assert 'class="summary missing"' in page
    movements = page.split("movements", 1)[1]
    assert movements.count(f"J-{tag}") == 0  # a book with a title is shown by its title
    assert movements.count(f"Plain {tag}") == 2 and movements.count("&lt;script&gt;") >= 1
    zh = client.get("/end-of-day", params={"lang": "zh_CN"}).text
    assert "今日借还" in zh and "缺" in zh
    assert "今日借还" in client.get("/end-of-day").text  # the choice is remembered


def test_a_review_leaves_the_queue_only_with_a_recorded_decision(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    reference(board, tag)
    kiosk = new_kiosk(board)
    review = _open_review(board, kiosk, f"I-{tag}")
    queue = client.get("/reviews").text
    assert f'id="review-{review}"' in queue and "not_on_loan" in queue
    token = client.csrf()
    no_note = client.post(f"/reviews/{review}", {"csrf": token, "decision": "dismiss", "note": ""})
    assert no_note.status_code == 422
    assert client.post(f"/reviews/{review}", {"csrf": token, "decision": "delete"}).status_code == 422
    done = client.post(f"/reviews/{review}", {"csrf": token, "decision": "dismiss", "note": "found on the shelf"})
    assert done.status_code == 303
    assert f'id="review-{review}"' not in client.get("/reviews").text
    assert client.post(f"/reviews/{review}", {"csrf": token, "decision": "accept"}).status_code == 409
    with board.store.reading() as conn:
        row = conn.execute(select(db.reviews).where(db.reviews.c.review_id == review)).one()
        audit = conn.execute(select(db.audit_log).where(db.audit_log.c.target == f"review:{review}")).all()
    assert row.resolved_at is not None
    assert json.loads(row.resolution)["by"] == name and json.loads(row.resolution)["decision"] == "dismiss"
    assert [(a.who, a.action) for a in audit] == [(name, "review.dismiss")]
    assert json.loads(audit[0].detail)["note"] == "found on the shelf"


KOC_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \d{3}\t(issue\t[^\t]+\t[^\t]+|return\t[^\t]+)$")


def test_koc_and_csv_exports_of_a_period(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    reference(board, tag)
    kiosk = new_kiosk(board)
    kiosk.push([kiosk.event(*checkout(f"I-{tag}", f"S-{tag}")), kiosk.event(*give_back(f"I-{tag}")),
                kiosk.event(*checkout(f"J-{tag}", f"S-{tag}"))])
    _open_review(board, kiosk, f"Q-{tag}")  # a return that did not apply: not for Koha
    today = datetime.now().astimezone().date().isoformat()
    answer = client.get("/exports/circulation.koc", params={"from": today, "to": today})
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    raw = answer.content.decode("utf-8")
    assert raw.endswith("\n") and "\r" not in raw
    lines = raw.splitlines()
    assert re.fullmatch(r"Version=1\.0\tGenerator=bookcorner\tGeneratorVersion=[0-9A-Za-z.+-]+", lines[0])
    for line in lines[1:]:
        assert KOC_LINE.match(line), line
    stamps = [line.split("\t")[0] for line in lines[1:]]
    assert stamps == sorted(stamps)  # time order
    ours = [line.split("\t", 1)[1] for line in lines[1:] if tag in line]
    assert ours == [f"issue\tc\t3{tag}", f"return\t3{tag}", f"issue\tc\tJ-{tag}"]
    exported = client.get("/exports/events.csv", params={"from": today, "to": today})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = [r for r in csv.DictReader(io.StringIO(exported.text)) if r["kiosk_id"] == kiosk.kiosk_id]
    assert [(r["type"], r["outcome"], r["item_id"]) for r in rows] == [
        ("loan.checked_out", "applied", f"I-{tag}"), ("loan.returned", "applied", f"I-{tag}"),
        ("loan.checked_out", "applied", f"J-{tag}"), ("loan.returned", "needs_review", f"Q-{tag}")]
    assert client.get("/exports/events.csv", params={"from": "yesterday"}).status_code == 422
    with board.store.reading() as conn:
        actions = conn.execute(select(db.audit_log.c.action).where(db.audit_log.c.who == _name)).scalars().all()
    assert "export.koc" in actions and "export.csv" in actions


def test_a_correction_that_fits_applies_and_one_that_does_not_changes_nothing(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    reference(board, tag)
    kiosk = new_kiosk(board)
    kiosk.push([kiosk.event(*checkout(f"I-{tag}", f"S-{tag}"))])
    review = _open_review(board, kiosk, f"J-{tag}")  # the wrong copy was scanned at the return
    assert 'value="correct"' in client.get("/reviews").text
    token = client.csrf()
    for item, expected in (("", "name the right book"), ("nope", "no book with that id"),
                           (f"J-{tag}", "not on loan")):
        answer = client.post(f"/reviews/{review}", {"csrf": token, "decision": "correct", "item_id": item})
        assert answer.status_code == 422 and expected in answer.text, item
    with board.store.reading() as conn:
        loan = conn.execute(select(db.item_state.c.patron_id).where(db.item_state.c.item_id == f"I-{tag}")).scalar()
        assert loan == f"S-{tag}"
    fixed = client.post(f"/reviews/{review}", {"csrf": token, "decision": "correct", "item_id": f"I-{tag}",
                                               "note": "two copies look alike"})
    assert fixed.status_code == 303
    with board.store.reading() as conn:
        state = conn.execute(select(db.item_state).where(db.item_state.c.item_id == f"I-{tag}")).one()
        row = conn.execute(select(db.reviews).where(db.reviews.c.review_id == review)).one()
        audit = conn.execute(select(db.audit_log.c.who, db.audit_log.c.action)
                             .where(db.audit_log.c.target == f"review:{review}")).all()
    assert state.patron_id is None and state.loan_id is None  # the loan is closed
    assert json.loads(row.resolution)["item_id"] == f"I-{tag}" and audit == [(name, "review.correct")]
    assert "two copies look alike" in client.get("/reviews").text


def test_the_security_tests_cover_every_dashboard_route(tmp_path):
    """A new page or form must join PAGES, FORMS or PUBLIC (and so the refusal tests above)."""
    from central.app import create_app
    from central.dashboard import PUBLIC

    store = db.Store(f"sqlite:///{tmp_path / 'routes.db'}")
    try:
        app = create_app(store)
    finally:
        store.dispose()
    listed = {("GET", "/dashboard" + p) for p in PAGES + PUBLIC} | {("POST", "/dashboard" + p) for p in PUBLIC + FORMS}
    served = {(method, route.path) for route in app.routes if route.path.startswith("/dashboard")
              for method in getattr(route, "methods", ()) if method != "HEAD"}
    # a route with parameters ("/reviews/{review_id}") is covered by a listed sample ("/reviews/1")
    unlisted = {(method, path) for method, path in served
                if not any(m == method and re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)), p)
                           for m, p in listed)}
    assert not unlisted, unlisted


def test_the_audit_log_shows_who_did_what(board, librarian):
    client, name, _token = librarian
    today = datetime.now().astimezone().date().isoformat()
    assert client.get("/exports/events.csv", params={"from": today}).status_code == 200
    page = client.get("/audit")
    assert page.status_code == 200 and "export.csv" in page.text and name in page.text


def test_a_corrected_return_goes_to_koha_as_corrected(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    reference(board, tag)
    kiosk = new_kiosk(board)
    kiosk.push([kiosk.event(*checkout(f"I-{tag}", f"S-{tag}"))])
    review = _open_review(board, kiosk, f"J-{tag}")
    today = datetime.now().astimezone().date().isoformat()
    before = client.get("/exports/circulation.koc", params={"from": today}).text
    assert [line.split("\t", 1)[1] for line in before.splitlines() if tag in line] == [f"issue\tc\t3{tag}"]
    assert client.post(f"/reviews/{review}", {"csrf": client.csrf(), "decision": "correct",
                                              "item_id": f"I-{tag}"}).status_code == 303
    after = client.get("/exports/circulation.koc", params={"from": today}).text
    assert [line.split("\t", 1)[1] for line in after.splitlines() if tag in line] == [
        f"issue\tc\t3{tag}", f"return\t3{tag}"]
    rows = [r for r in csv.DictReader(io.StringIO(client.get("/exports/events.csv", params={"from": today}).text))
            if r["kiosk_id"] == kiosk.kiosk_id]
    assert [(r["outcome"], r["item_id"], r["decision"]) for r in rows] == [
        ("applied", f"I-{tag}", ""), ("needs_review", f"I-{tag}", "correct")]
