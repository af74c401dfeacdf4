"""The loans table and the reports over a real server (SQLite, and PostgreSQL when it
runs), fed by real pushes: form I per student and per class for a week in the school's
zone (Asia/Shanghai here, so a week's edges are not UTC's), targets, reading stars,
anonymised loans, the CSV and XLSX downloads, the targets form's token."""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select, update

from bookcorner.central import db
from bookcorner.central.services.reports import Student, _ranked
from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import CalendarRecord, ItemRecord, PatronRecord, ReferenceDocument, TermRecord
from tests.central.dashboard_client import Librarian
from tests.central.harness import BACKENDS, CentralServer, running_server
from tests.central.pushes import KioskClient, checkout, checkin

SCHOOL = ZoneInfo("Asia/Shanghai")
HTML_NAME = "<b>Zhao</b> & co"
TODAY = datetime.now(SCHOOL).date()
#: the week reported on: last week (Monday..Sunday, school time)
WEEK = TODAY - timedelta(days=TODAY.weekday() + 7)
#: a term of 20 weeks around it: a week's target is 1/20 of the term's
TERM = TermRecord("Autumn term", WEEK - timedelta(weeks=5), WEEK - timedelta(weeks=5) + timedelta(days=139))
ROSTER = [
    PatronRecord(patron_id="S1", name="Li Hua", role="student", class_name="3.1"),
    PatronRecord(patron_id="S2", name="Wang Fang", role="student", class_name="3.1"),
    PatronRecord(patron_id="S3", name=HTML_NAME, role="student", class_name="3.1"),
    PatronRecord(patron_id="S4", name="Chen Jie", role="student", class_name="3.2"),
    PatronRecord(patron_id="S5", name="Zhou Min", role="student", class_name="3.2"),
    PatronRecord(patron_id="T1", name="Ms Teacher", role="teacher"),
    PatronRecord(patron_id="T2", name="Mr Head", role="teacher", class_name="3.1"),
]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SCHOOL)


@pytest.fixture(scope="module", params=BACKENDS)
def school(request, tmp_path_factory) -> Iterator[tuple[CentralServer, KioskClient]]:
    """A server keeping Shanghai time, and a corner whose loans of the weeks around WEEK
    were pushed (its credential dates from last year, so old times are believed)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    try:
        with running_server(request.param, tmp_path_factory.mktemp(f"reports-{request.param}")) as server:
            if before is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = before
            load_document(server.store, ReferenceDocument(
                patrons=ROSTER, items=[ItemRecord(item_id=f"I{n}", title=f"Book {n}") for n in range(1, 12)],
                calendar=CalendarRecord(terms=[TERM])))
            kiosk = KioskClient(server.url, "corner-3", server.add_kiosk("corner-3"))
            with server.store.writing() as conn:
                conn.execute(update(db.kiosks).values(provisioned=db.now() - timedelta(days=400)))
            kiosk.start = at(WEEK, 0) - timedelta(days=1)  # minutes count from here
            events = []
            for when, (kind, payload) in [
                (at(WEEK, 0) - timedelta(minutes=30), checkout("I2", "S2")),  # Sunday 23:30: the week before
                (at(WEEK, 0, 30), checkout("I1", "S1")),  # Monday 00:30 (Sunday in UTC)
                (at(WEEK, 9), ("loan.renewed", {"item_id": "I2", "due": "2027-01-11"})),
                (at(WEEK + timedelta(days=1), 12), checkout("I4", "S3")),
                (at(WEEK + timedelta(days=1), 12, 5), checkout("I8", "S5")),  # anonymised below
                (at(WEEK + timedelta(days=2), 12), checkout("I3", "S1")),
                (at(WEEK + timedelta(days=2), 12, 10), checkout("I7", "T1")),  # a teacher: no class
                (at(WEEK + timedelta(days=2), 12, 15), checkout("I10", "T2")),  # the class's teacher
                (at(WEEK + timedelta(days=3), 12), checkin("I3")),
                (at(WEEK + timedelta(days=3), 16), ("item.damaged", {"item_id": "I4"})),
                (at(WEEK + timedelta(days=4), 12), checkout("I3", "S1")),
                (at(WEEK + timedelta(days=5), 10), checkout("I1", "S2")),  # over S1's loan: closes it
                (at(WEEK + timedelta(days=6), 23, 30), checkout("I5", "S4")),  # Sunday 23:30: still the week
                (at(WEEK + timedelta(days=7), 0, 10), checkout("I6", "S5")),  # Monday 00:10: the next week
            ]:
                events.append(kiosk.event(kind, payload, minutes=(when - kiosk.start).total_seconds() / 60))
            answer = kiosk.push(events)
            assert answer.status_code == 200, answer.text
            assert {r["outcome"] for r in answer.json()["results"]} <= {"applied", "applied_with_warning"}
            with server.store.writing() as conn:  # what the retention job does to an old loan
                conn.execute(update(db.loans).where(db.loans.c.item_id == "I8")
                             .values(patron_id=None, anonymised_at=db.now()))
            yield server, kiosk
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before


@pytest.fixture
def librarian(school) -> Librarian:
    server, _kiosk = school
    name = "Ms Li " + uuid.uuid4().hex[:4]
    client = Librarian(server.url)
    assert client.sign_in(name, server.add_librarian(name)).status_code == 303
    return client


def loans_of(server: CentralServer) -> dict[str, list]:
    with server.store.reading() as conn:
        rows = conn.execute(select(db.loans).order_by(db.loans.c.out_at)).all()
    by_item: dict[str, list] = {}
    for row in rows:
        by_item.setdefault(row.item_id, []).append(row)
    return by_item


def test_every_loan_that_applied_is_in_the_loans_table(school):
    server, kiosk = school
    loans = loans_of(server)
    first, second = loans["I1"]
    assert (first.patron_id, first.class_name, first.kiosk_id) == ("S1", "3.1", "corner-3")
    assert first.out_at == at(WEEK, 0, 30).astimezone(timezone.utc)
    assert first.returned_at == second.out_at  # a checkout over a loan closes it
    assert (second.patron_id, second.returned_at) == ("S2", None)
    renewed = loans["I2"][0]
    assert (renewed.due, renewed.renewals, renewed.returned_at) == (date(2027, 1, 11), 1, None)
    assert loans["I4"][0].returned_at == at(WEEK + timedelta(days=3), 16).astimezone(timezone.utc)  # damaged
    returned, again = loans["I3"]
    assert returned.returned_at == at(WEEK + timedelta(days=3), 12).astimezone(timezone.utc)
    assert again.returned_at is None and again.loan_id != returned.loan_id
    assert loans["I7"][0].class_name is None  # the teacher
    assert loans["I10"][0].class_name == "3.1"  # a class's teacher: counted for the class by no report
    assert loans["I8"][0].patron_id is None
    # the class is the borrower's when the book went out, whatever the roster says later
    def roster(*extra: PatronRecord) -> None:
        load_document(server.store, ReferenceDocument(
            patrons=[*ROSTER, *extra], items=[ItemRecord(item_id=f"I{n}", title=f"Book {n}") for n in range(1, 12)],
            calendar=CalendarRecord(terms=[TERM])))

    def minutes_ago(minutes: float) -> float:
        return (datetime.now(timezone.utc) - kiosk.start).total_seconds() / 60 - minutes

    roster(PatronRecord(patron_id="S6", name="New Pupil", role="student", class_name="4.1"))
    events = [kiosk.event(*checkout("I9", "S6"), minutes=minutes_ago(3)),
              kiosk.event(*checkin("I9"), minutes=minutes_ago(2))]
    assert kiosk.push(events).status_code == 200
    roster(PatronRecord(patron_id="S6", name="New Pupil", role="student", class_name="5.1"))  # moved up
    assert kiosk.push([kiosk.event(*checkout("I11", "S6"), minutes=minutes_ago(1))]).status_code == 200
    loans = loans_of(server)
    assert [(r.class_name, r.loan_id) for r in loans["I9"]] == [("4.1", events[0].event_id)]
    assert loans["I9"][0].returned_at is not None and loans["I11"][0].class_name == "5.1"
    duplicate = kiosk.push(events)  # the same events again change nothing
    assert duplicate.status_code == 200 and len(loans_of(server)["I9"]) == 1
    roster()  # S6 leaves again (the other tests count the roster)


def rows_of(page: str, kind: str) -> dict[str, dict[str, str]]:
    """The rows of a report table by their data attribute: each cell's text by its class."""
    found = {}
    for key, body in re.findall(rf'<tr class="[^"]*" data-{kind}="([^"]+)">(.*?)</tr>', page, re.S):
        cells = dict(re.findall(r'<td class="([\w-]+)">(.*?)</td>', body, re.S))
        found[key] = {**cells, "below": "below target" in body or "▼" in body}
    return found


def test_form_i_counts_a_week_of_the_schools_own_time(school, librarian):
    client = librarian
    assert client.post("/reports/targets", {"csrf": client.csrf(), "books_per_student": "40",
                                            "class_loans": "100"}).status_code == 303
    page = client.get("/reports/week", params={"day": (WEEK + timedelta(days=3)).isoformat()})
    assert page.status_code == 200
    text = page.text
    assert f"{WEEK.isoformat()} – {(WEEK + timedelta(days=6)).isoformat()}" in text
    # a week is 1/20 of the term: 40 books per student per term is 2 a week, 100 per class 5
    assert '<strong id="student-target">2.0</strong>' in text and '<strong id="class-target">5.0</strong>' in text
    classes = rows_of(text, "class")
    assert {k: (v["loans"], v["borrowers"], v["per-student"], v["below"]) for k, v in classes.items()} == {
        "3.1": ("5", "3", "1.67", False), "3.2": ("2", "1", "1.00", True)}
    students = rows_of(text, "patron")
    assert {k: (v["loans"], v["below"]) for k, v in students.items()} == {
        "S1": ("3", False), "S2": ("1", True), "S3": ("1", True), "S4": ("1", True), "S5": ("0", True)}
    assert "T1" not in students and "Ms Teacher" not in text and "T2" not in students and "Mr Head" not in text
    assert "&lt;b&gt;Zhao&lt;/b&gt; &amp; co" in text and HTML_NAME not in text
    assert '<strong id="below">4</strong>' in text and '<strong id="total-loans">7</strong>' in text
    assert "1 loans whose borrower" in text  # the anonymised one: in 3.2's total, no student's
    assert "<svg" in text and 'class="target"' in text and 'class="bar below"' in text
    # the weeks on either side got the loans at their edges
    before = rows_of(client.get("/reports/week", params={"day": (WEEK - timedelta(days=1)).isoformat()}).text, "patron")
    after = rows_of(client.get("/reports/week", params={"day": (WEEK + timedelta(days=7)).isoformat()}).text, "patron")
    assert before["S2"]["loans"] == "1" and before["S1"]["loans"] == "0"
    assert after["S5"]["loans"] == "1"


def test_the_term_and_the_stars(school, librarian):
    client = librarian
    page = client.get("/reports/term", params={"from": TERM.start.isoformat(), "to": TERM.end.isoformat()})
    assert page.status_code == 200 and "Autumn term" in page.text
    students = rows_of(page.text, "patron")
    assert (students["S1"]["loans"], students["S2"]["loans"], students["S5"]["loans"]) == ("3", "2", "1")
    stars = client.get("/reports/stars", params={"from": WEEK.isoformat(),
                                                  "to": (WEEK + timedelta(days=6)).isoformat()})
    assert stars.status_code == 200
    placed = re.findall(r'<tr class="star" data-patron="([^"]+)"><td class="place">(\d+)</td>', stars.text)
    assert placed[0] == ("S1", "1") and sorted(placed[1:]) == [("S2", "2"), ("S3", "2"), ("S4", "2")]
    best = re.findall(r'<tr class="best" data-class="([^"]+)"><td class="place">(\d+)</td>', stars.text)
    assert best == [("3.1", "1"), ("3.2", "2")]
    assert client.get("/reports/term", params={"from": "2026-13-01"}).status_code == 422
    index = client.get("/reports")
    assert index.status_code == 200 and "/reports/week?day=" in index.text and "Autumn term" in index.text


def test_places_are_shared_and_a_shared_tenth_place_keeps_everyone_in_it():
    readers = [Student(f"S{n:02d}", f"Name {n:02d}", "3.1", loans) for n, loans in
               enumerate([9, 9, 8, 7, 7, 7, 6, 5, 4, 3, 3, 3, 2])]
    placed = _ranked(readers, lambda s: s.loans, lambda s: s.name)
    assert [(s.loans, s.rank) for s in placed] == [(9, 1), (9, 1), (8, 3), (7, 4), (7, 4), (7, 4), (6, 7), (5, 8),
                                                    (4, 9), (3, 10), (3, 10), (3, 10)]


def test_downloads_carry_the_same_numbers(school, librarian):
    from openpyxl import load_workbook

    client = librarian
    week = {"from": WEEK.isoformat(), "to": (WEEK + timedelta(days=6)).isoformat()}
    page = rows_of(client.get("/reports/week", params={"day": WEEK.isoformat()}).text, "patron")
    for name, key, count in (("students", "Student id", "Loans"), ("stars", "Student id", "Loans"),
                             ("classes", "Class", "Loans"), ("best-classes", "Class", "Loans")):
        answer = client.get(f"/reports/{name}.csv", params=week)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        from_csv = {r[key]: r for r in csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")))}
        book = client.get(f"/reports/{name}.xlsx", params=week)
        assert book.status_code == 200
        sheet = load_workbook(io.BytesIO(book.content)).active
        header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
        from_xlsx = {str(r[header.index(key)]): dict(zip(header, r)) for r in body}
        assert set(from_csv) == set(from_xlsx) and from_csv
        for ident, row in from_csv.items():
            assert int(row[count]) == from_xlsx[ident][count]
        if name == "students":
            assert {k: int(v["Loans"]) for k, v in from_csv.items()} == {k: int(v["loans"]) for k, v in page.items()}
            assert from_csv["S3"]["Student"] == HTML_NAME and from_csv["S5"]["Below target"] == "yes"
        if name == "classes":
            assert (from_csv["3.2"]["Loans"], from_csv["3.2"]["Borrowers"]) == ("2", "1")
    assert "report.csv" in client.get("/audit").text


def test_the_targets_form_needs_the_sessions_token_and_is_audited(school, librarian):
    server, _kiosk = school
    client = librarian
    for data in ({}, {"csrf": ""}, {"csrf": "guess"}):
        assert client.post("/reports/targets", {**data, "books_per_student": "1", "class_loans": "1"}).status_code == 403
    anonymous = requests.post(f"{server.url}/dashboard/reports/targets", timeout=10, allow_redirects=False,
                              data={"csrf": "x", "books_per_student": "1", "class_loans": "1"})
    assert anonymous.status_code == 403
    assert client.post("/reports/targets", {"csrf": client.csrf(), "books_per_student": "0",
                                            "class_loans": "50"}).status_code == 422
    assert client.post("/reports/targets", {"csrf": client.csrf(), "books_per_student": "12",
                                            "class_loans": "60"}).status_code == 303
    index = client.get("/reports").text
    assert 'name="books_per_student" min="1" max="500" value="12"' in index
    with server.store.reading() as conn:
        audit = conn.execute(select(db.audit_log.c.action, db.audit_log.c.detail)
                             .where(db.audit_log.c.action == "reports.targets")
                             .order_by(db.audit_log.c.audit_id.desc())).first()
    assert audit.detail == '{"books_per_student": 12, "class_loans": 60}'
    assert client.post("/reports/targets", {"csrf": client.csrf(), "books_per_student": "40",
                                            "class_loans": "100"}).status_code == 303


def test_an_upgraded_server_fills_its_loans_from_the_events(school):
    """Migration 0003 on a server with history: the loans replayed from the stored events
    are the ones ingest recorded (the anonymised one aside: no retention ran before)."""
    from alembic import command

    from bookcorner.central.migrations import config

    server, _kiosk = school
    recorded = {r.loan_id: r for rows in loans_of(server).values() for r in rows}
    with server.store.writing() as conn:
        command.downgrade(config(conn), "0002")
        command.upgrade(config(conn), "head")
    filled = {r.loan_id: r for rows in loans_of(server).values() for r in rows}
    assert set(filled) == set(recorded) and len(filled) == 13
    for loan_id, row in recorded.items():
        again = filled[loan_id]
        if row.item_id == "I8":
            assert again.patron_id == "S5"
            continue
        if row.item_id == "I9":  # the history does not say S6 was in 4.1 then: the roster's last word
            assert again.class_name == "5.1"
            continue
        assert tuple(again) == tuple(row), loan_id
    with server.store.writing() as conn:  # as the retention job left it, for the tests after this one
        conn.execute(update(db.loans).where(db.loans.c.item_id == "I8").values(patron_id=None, anonymised_at=db.now()))
