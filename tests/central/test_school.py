"""The dashboard's school pages over a real socket (SQLite, and PostgreSQL when it runs):
each edit is saved, audited, and pulled by a kiosk; a form with a mistake saves nothing
and says why next to the field; kiosks and librarians are provisioned and revoked."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import date, datetime
from html.parser import HTMLParser

import msgspec
import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bookcorner.central import db
from bookcorner.central.dashboard.school import FORMS
from bookcorner.central.kiosks import Audit, add_kiosk, add_librarian
from bookcorner.central.reference import load_document
from bookcorner.circulation.calendar import due_date
from bookcorner.circulation.model import ItemType, Role
from bookcorner.circulation.reference import Reference
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import PatronRecord, ReferenceDelta, ReferenceDocument
from bookcorner.sync.reference import merge
from tests.central.dashboard_client import Librarian
from tests.central.pushes import KioskClient, checkout

HTML_NAME = '<img src=x onerror=alert(1)>Wang'


class _Form(HTMLParser):
    """The fields one form of a page would send, as a browser would fill them in."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.fields = action, False, {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("action", "").endswith(self.action) and a.get("method") == "post"
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields[name] = "on"
            else:
                self.fields[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""
        elif tag == "select" and name:
            self._select = name
            self.fields[name] = ""
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data


def form_of(client: Librarian, path: str) -> dict[str, str]:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    parser = _Form(path.split("?")[0])
    parser.feed(page.text)
    assert parser.fields.get("csrf"), path
    return parser.fields


@pytest.fixture(scope="module")
def school(board):
    """The module's roster (the kiosks pull nothing until a school has one)."""
    load_document(board.store, ReferenceDocument(patrons=[
        PatronRecord(patron_id="S-wang", name="王小明", role="student", class_name="3.2", given_name="小明"),
        PatronRecord(patron_id="S-li", name="李华", role="student", class_name="3.2"),
        PatronRecord(patron_id="S-html", name=HTML_NAME, role="student", class_name="4.1"),
    ]))
    return board


def new_kiosk(board) -> KioskClient:
    kiosk_id = "k-" + uuid.uuid4().hex[:10]
    return KioskClient(board.url, kiosk_id, board.add_kiosk(kiosk_id))


def pull(board, kiosk: KioskClient, since: int = 0, epoch: str | None = None) -> dict:
    params = {"since": since, **({"epoch": epoch} if epoch else {})}
    answer = requests.get(f"{board.url}/v1/reference", params=params, headers=bearer(kiosk.token), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def as_kiosk_reads(*deltas: dict) -> Reference:
    """The kiosk's reference after merging these pulls, as its sync daemon merges them."""
    reference = None
    for delta in deltas:
        reference = merge(reference, msgspec.json.decode(json.dumps(delta), type=ReferenceDelta))
    return reference


def audit_rows(board, action: str) -> list:
    with board.store.reading() as conn:
        return conn.execute(select(db.audit_log).where(db.audit_log.c.action == action)
                            .order_by(db.audit_log.c.audit_id)).all()


def setting_rev(board, name: str) -> int | None:
    with board.store.reading() as conn:
        return conn.execute(select(db.settings.c.rev).where(db.settings.c.name == name)).scalar()


def test_the_school_page_links_each_part(school, librarian):
    client, _name, _token = librarian
    page = client.get("/school")
    assert page.status_code == 200
    for part in ("policy", "calendar", "timetable", "cards", "kiosks", "librarians"):
        assert f'href="/dashboard/school/{part}"' in page.text


def test_a_loan_rule_change_is_saved_audited_and_pulled_by_a_kiosk(school, librarian):
    client, name, _token = librarian
    kiosk = new_kiosk(school)
    first = pull(school, kiosk)
    fields = form_of(client, "/school/policy")
    assert fields["student.circulating.loan_days"] == "7" and "student.reference.loanable" not in fields
    fields["student.circulating.loan_days"] = "14"
    fields["teacher.max_loans"] = "30"
    fields["student.periodical.max_loans"] = "1"
    del fields["student.holiday_loans"]  # a box left unticked
    answer = client.post("/school/policy", fields)
    assert answer.status_code == 303 and answer.headers["location"].endswith("/school/policy?saved=yes")
    assert 'id="saved"' in client.get("/school/policy?saved=yes").text

    delta = pull(school, kiosk, first["cursor"], first["epoch"])
    cells = {(c["role"], c["item_type"]): c for c in delta["policy"]["rules"]}
    assert cells[("student", "circulating")]["loan_days"] == 14
    assert cells[("student", "periodical")]["max_loans"] == 1
    assert cells[("student", "reference")]["lendable"] is False  # untouched cells stay as they were
    assert delta["policy"]["roles"]["teacher"]["max_loans"] == 30
    assert delta["patrons"] == [] and delta["patrons_removed"] == []  # nothing else was touched
    kiosk_reads = as_kiosk_reads(first, delta)
    assert kiosk_reads.policy.rule(Role.STUDENT, ItemType.CIRCULATING).loan_days == 14
    assert not kiosk_reads.policy.role(Role.STUDENT).holiday_loans and len(kiosk_reads.patrons) == 3

    record = audit_rows(school, "policy.edit")[-1]
    detail = json.loads(record.detail)
    assert record.who == name
    assert detail["before"]["student.circulating.loan_days"] == 7
    assert detail["after"]["student.circulating.loan_days"] == 14
    assert detail["before"]["student.holiday_loans"] is True and detail["after"]["student.holiday_loans"] is False
    assert "student.reference.loan_days" not in detail["after"]  # only what changed

    audited = len(audit_rows(school, "policy.edit"))
    again = client.post("/school/policy", form_of(client, "/school/policy"))  # the same again: nothing to save
    assert again.headers["location"].endswith("saved=same")
    assert len(audit_rows(school, "policy.edit")) == audited
    later = pull(school, kiosk, delta["cursor"], delta["epoch"])
    assert later["policy"] is None


def test_loan_rules_with_mistakes_save_nothing_and_say_why_next_to_each_field(school, librarian):
    client, _name, _token = librarian
    before_rev, before_audit = setting_rev(school, "policy"), len(audit_rows(school, "policy.edit"))
    fields = form_of(client, "/school/policy")
    fields.update({"student.max_loans": "lots", "student.circulating.renewals": "99",
                   "teacher.periodical.max_loans": "-1", "student.periodical.loan_days": "0",
                   "librarian.circulating.loan_days": "12"})
    answer = client.post("/school/policy", fields)
    assert answer.status_code == 422
    for field in ("student.max_loans", "student.circulating.renewals", "teacher.periodical.max_loans",
                  "student.periodical.loan_days"):
        assert f'id="error-{field}"' in answer.text, field
        assert re.search(rf'name="{re.escape(field)}"[^>]*aria-invalid="true"', answer.text), field
    assert "A whole number from 0 to 20" in answer.text
    assert "at least one loan day" in answer.text
    assert 'value="lots"' in answer.text and 'value="12"' in answer.text  # what was typed stays
    assert 'id="error-librarian.circulating.loan_days"' not in answer.text
    assert setting_rev(school, "policy") == before_rev and len(audit_rows(school, "policy.edit")) == before_audit

    chinese = client.post("/school/policy?lang=zh_CN", fields)
    assert chinese.status_code == 422 and 'lang="zh-CN"' in chinese.text


def test_a_form_drawn_before_someone_elses_save_does_not_undo_it(school, librarian):
    client, _name, _token = librarian
    stale = form_of(client, "/school/timetable")
    fresh = form_of(client, "/school/timetable")
    fresh.update({"slot.0.weekday": "4", "slot.0.start": "16:30", "slot.0.end": "17:00", "slot.0.class": "6.1"})
    assert client.post("/school/timetable", fresh).status_code == 303
    stale.update({"slot.0.weekday": "0", "slot.0.start": "12:00", "slot.0.end": "12:50", "slot.0.class": "1.1"})
    answer = client.post("/school/timetable", stale)
    assert answer.status_code == 409 and "nothing was saved" in answer.text
    assert 'value="1.1"' in answer.text  # the librarian's changes are kept in the form
    assert '"6.1"' in json.dumps([json.loads(r.detail) for r in audit_rows(school, "timetable.edit")])
    assert form_of(client, "/school/timetable")["slot.0.class"] == "6.1"


def test_the_calendar_is_saved_audited_and_pulled(school, librarian):
    client, name, _token = librarian
    kiosk = new_kiosk(school)
    first = pull(school, kiosk)
    fields = form_of(client, "/school/calendar")
    fields.pop("closed.6", None)  # open on Sundays now
    fields.update({
        "closed_dates": "2027-01-25..2027-01-28\n\n2026-10-01",
        "open_dates": "2026-10-10",  # a Saturday worked (调休)
        "term.0.name": "Autumn 2026", "term.0.start": "2026-09-01", "term.0.end": "2027-01-22",
        "term.1.name": "Spring 2027", "term.1.start": "2027-02-20", "term.1.end": "2027-07-02",
        "holiday.0.name": "Winter", "holiday.0.checkout_from": "2027-01-15", "holiday.0.checkout_until": "2027-01-22",
        "holiday.0.due": "2027-02-22",
    })
    answer = client.post("/school/calendar", fields)
    assert answer.status_code == 303, answer.text
    delta = pull(school, kiosk, first["cursor"], first["epoch"])
    calendar = delta["calendar"]
    assert calendar["closed_weekdays"] == [5]
    assert calendar["closed_dates"] == ["2026-10-01", "2027-01-25", "2027-01-26", "2027-01-27", "2027-01-28"]
    assert calendar["open_dates"] == ["2026-10-10"]
    assert [t["end"] for t in calendar["terms"]] == ["2027-01-22", "2027-07-02"]
    assert calendar["holiday_loans"] == [{"name": "Winter", "lend_from": "2027-01-15", "lend_until": "2027-01-22",
                                          "due": "2027-02-22"}]
    assert delta["policy"] is None and delta["timetable"] is None
    calendar = as_kiosk_reads(first, delta).calendar
    assert calendar.is_open(date(2026, 10, 10)) and calendar.is_open(date(2026, 10, 11))  # make-up day, Sunday
    assert not calendar.is_open(date(2027, 1, 26))
    assert due_date(calendar, date(2027, 1, 18), 7) == date(2027, 2, 22)  # a holiday loan
    assert due_date(calendar, date(2027, 1, 8), 7, holiday_loans=False) == date(2027, 1, 15)
    drawn = form_of(client, "/school/calendar")
    assert drawn["closed_dates"].strip() == "2026-10-01\n2027-01-25..2027-01-28"  # runs drawn back as typed
    record = audit_rows(school, "calendar.edit")[-1]
    assert record.who == name and json.loads(record.detail)["after"]["closed_weekdays"] == [5]

    drawn["term.0.remove"] = "on"  # removing a row is an edit like any other
    assert client.post("/school/calendar", drawn).status_code == 303
    terms = pull(school, kiosk, delta["cursor"], delta["epoch"])["calendar"]["terms"]
    assert [t["name"] for t in terms] == ["Spring 2027"]


def test_a_calendar_with_mistakes_saves_nothing(school, librarian):
    client, _name, _token = librarian
    rev, audited = setting_rev(school, "calendar"), len(audit_rows(school, "calendar.edit"))
    fields = form_of(client, "/school/calendar")
    fields.update({
        "closed_dates": "2027-02-30",
        "open_dates": "",
        "term.5.name": "Backwards", "term.5.start": "2027-09-01", "term.5.end": "2027-08-01",
        "term.6.name": "A", "term.6.start": "2028-02-01", "term.6.end": "2028-07-01",
        "term.7.name": "B", "term.7.start": "2028-06-01", "term.7.end": "2028-08-01",
        "holiday.5.name": "Summer", "holiday.5.checkout_from": "2028-06-20", "holiday.5.checkout_until": "2028-06-30",
        "holiday.5.due": "2028-06-25",
        "holiday.6.name": "Winter", "holiday.6.checkout_from": "2028-01-10", "holiday.6.checkout_until": "2028-01-20",
        "holiday.6.due": "2028-02-20",
        "holiday.7.name": "Spring Festival", "holiday.7.checkout_from": "2028-01-15", "holiday.7.checkout_until": "2028-01-25",
        "holiday.7.due": "2028-02-21",
    })
    answer = client.post("/school/calendar", fields)
    assert answer.status_code == 422
    for field, words in (("closed_dates", "is not a date"), ("term.5.end", "ends after it starts"),
                         ("term.7.start", "Overlaps the term"), ("holiday.5.due", "due after the lending ends"),
                         ("holiday.7.checkout_from", "Overlaps the holiday loan “Winter”")):
        match = re.search(rf'id="error-{re.escape(field)}"[^>]*>([^<]*)<', answer.text)
        assert match and words in match.group(1), (field, match and match.group(1))
    both = client.post("/school/calendar", {**form_of(client, "/school/calendar"),
                                            "closed_dates": "2026-11-07", "open_dates": "2026-11-07"})
    assert both.status_code == 422 and "both closed and a make-up" in both.text
    every_day = client.post("/school/calendar", {**form_of(client, "/school/calendar"),
                                                 **{f"closed.{d}": "on" for d in range(7)}})
    assert every_day.status_code == 422 and 'id="error-closed"' in every_day.text
    assert setting_rev(school, "calendar") == rev and len(audit_rows(school, "calendar.edit")) == audited


def test_the_timetable_is_saved_pulled_and_refuses_overlapping_slots(school, librarian):
    client, _name, _token = librarian
    kiosk = new_kiosk(school)
    first = pull(school, kiosk)
    fields = form_of(client, "/school/timetable")
    rows = sum(1 for k in fields if k.endswith(".class") and fields[k])
    fields.update({f"slot.{rows}.weekday": "0", f"slot.{rows}.start": "12:00", f"slot.{rows}.end": "12:50",
                   f"slot.{rows}.class": "3.2",
                   f"slot.{rows + 1}.weekday": "0", f"slot.{rows + 1}.start": "12:30",
                   f"slot.{rows + 1}.end": "13:00", f"slot.{rows + 1}.class": "<b>4.1</b>"})
    refused = client.post("/school/timetable", fields)
    assert refused.status_code == 422
    assert re.search(rf'id="error-slot\.{rows + 1}\.start"[^>]*>Overlaps 3\.2', refused.text)
    assert "&lt;b&gt;4.1&lt;/b&gt;" in refused.text and "<b>4.1</b>" not in refused.text
    assert pull(school, kiosk, first["cursor"], first["epoch"])["timetable"] is None
    fields[f"slot.{rows + 1}.start"] = "12:50"  # back to back is fine
    assert client.post("/school/timetable", fields).status_code == 303
    slots = pull(school, kiosk, first["cursor"], first["epoch"])["timetable"]["slots"]
    assert {"weekday": 0, "start": "12:00:00", "end": "12:50:00", "class_name": "3.2"} in slots
    assert {"weekday": 0, "start": "12:50:00", "end": "13:00:00", "class_name": "<b>4.1</b>"} in slots
    timetable = as_kiosk_reads(first, pull(school, kiosk, first["cursor"], first["epoch"])).timetable
    assert timetable.slot_at(datetime(2026, 11, 23, 12, 49)).class_name == "3.2"  # a Monday
    assert timetable.slot_at(datetime(2026, 11, 23, 12, 50)).class_name == "<b>4.1</b>"
    page = client.get("/school/timetable")
    assert "<b>4.1</b>" not in page.text and "&lt;b&gt;4.1&lt;/b&gt;" in page.text
    bad = client.post("/school/timetable", {**form_of(client, "/school/timetable"), "slot.9.weekday": "2",
                                            "slot.9.start": "25:00", "slot.9.end": "", "slot.9.class": ""})
    assert bad.status_code == 422
    for field in ("slot.9.start", "slot.9.end", "slot.9.class"):
        assert f'id="error-{field}"' in bad.text


def test_finding_a_student_and_giving_cards(school, librarian):
    client, name, _token = librarian
    kiosk = new_kiosk(school)
    first = pull(school, kiosk)
    found = client.get("/school/cards", params={"q": "小明"})
    assert found.status_code == 200 and 'data-patron="S-wang"' in found.text and 'data-patron="S-li"' not in found.text
    by_class = client.get("/school/cards", params={"q": "3.2"}).text
    assert 'data-patron="S-wang"' in by_class and 'data-patron="S-li"' in by_class
    assert 'data-patron="S-li"' in client.get("/school/cards", params={"q": "S-li"}).text
    assert 'id="none-found"' in client.get("/school/cards", params={"q": "nobody%"}).text

    tag = uuid.uuid4().hex[:6]
    fields = form_of(client, "/school/cards?student=S-wang")
    # typed in lower case: stored as the kiosk reads it (the final k keeps it from looking like
    # a Codabar-wrapped number, "C-58970C", whose start and stop letters the kiosk strips)
    card = f"C-{tag}k".upper()
    answer = client.post("/school/cards", {**fields, "card": f"c-{tag}k"})
    assert answer.status_code == 303 and f"card={card}" in answer.headers["location"]
    digits = str(uuid.uuid4().int)[:10]
    scanned = client.post("/school/cards", {**fields, "card": f"A{digits}B\r"})  # a Codabar scanner's keystrokes
    assert scanned.status_code == 303 and f"card={digits}" in scanned.headers["location"]
    delta = pull(school, kiosk, first["cursor"], first["epoch"])
    cards = {c["card_id"]: c for c in delta["cards"]}
    assert cards[card] == {"card_id": card, "patron_id": "S-wang"} and cards[digits]["patron_id"] == "S-wang"
    assert 'id="done"' in client.get(answer.headers["location"].removeprefix("/dashboard")).text
    page = client.get("/school/cards", params={"student": "S-wang"})
    assert f'data-card="{card}"' in page.text

    taken = client.post("/school/cards", {**form_of(client, "/school/cards?student=S-li"), "card": card.lower()})
    assert taken.status_code == 422
    assert f"Card {card} is already held by 王小明 (S-wang)" in taken.text and 'id="card-error"' in taken.text
    assert f'data-card="{card}"' not in client.get("/school/cards", params={"student": "S-li"}).text
    given = [r for r in audit_rows(school, "card.give") if r.target == card]
    assert len(given) == 1 and given[0].who == name
    assert json.loads(given[0].detail) == {"patron_id": "S-wang", "before": None, "after": {
        "card_id": card, "patron_id": "S-wang"}, "recorded_lost": []}

    lost = client.post(f"/school/cards/{card}/status", {"csrf": fields["csrf"], "status": "lost", "student": "S-wang"})
    assert lost.status_code == 303
    after = pull(school, kiosk, delta["cursor"], delta["epoch"])
    assert after["cards"] == [{"card_id": card, "patron_id": "S-wang", "status": "lost"}]
    assert json.loads(audit_rows(school, "card.lost")[-1].detail) == {"patron_id": "S-wang", "before": "active",
                                                                      "after": "lost"}
    # a lost card may go to someone else now; and a new card may replace the others
    assert client.post("/school/cards", {**fields, "student": "S-li", "card": card}).status_code == 303
    replacing = f"R-{tag}".upper()
    assert client.post("/school/cards", {**fields, "card": replacing, "replace": "on"}).status_code == 303
    final = {c["card_id"]: c for c in pull(school, kiosk, after["cursor"], after["epoch"])["cards"]}
    assert final[card] == {"card_id": card, "patron_id": "S-li"}
    assert final[replacing] == {"card_id": replacing, "patron_id": "S-wang"}
    assert final[digits]["status"] == "lost"  # replaced


def test_a_card_id_that_is_not_one_or_an_unknown_student_is_refused(school, librarian):
    client, _name, _token = librarian
    fields = form_of(client, "/school/cards?student=S-li")
    with school.store.reading() as conn:
        before = conn.execute(select(func.count()).select_from(db.cards)).scalar()
    for card, student, words in (("", "S-li", "A card id"), ("card/1", "S-li", "A card id"),
                                 ("<script>", "S-li", "A card id"), ("C-ok", "S-nobody", "No student with the id")):
        answer = client.post("/school/cards", {**fields, "student": student, "card": card})
        assert answer.status_code == 422 and words in answer.text, (card, student)
        assert "<script>" not in answer.text
    with school.store.reading() as conn:
        assert conn.execute(select(func.count()).select_from(db.cards)).scalar() == before


def test_html_in_a_students_name_is_shown_as_text(school, librarian):
    client, _name, _token = librarian
    for page in (client.get("/school/cards", params={"q": "Wang"}), client.get("/school/cards?student=S-html")):
        assert page.status_code == 200
        assert HTML_NAME not in page.text and "&lt;img src=x onerror=alert(1)&gt;Wang" in page.text


def test_every_school_form_needs_the_sessions_token(school, librarian):
    client, _name, _token = librarian
    kiosk_id = "k-" + uuid.uuid4().hex[:8]
    good = {"kiosk_id": kiosk_id, "name": "x", "student": "S-li", "card": "CSRF1", "status": "lost",
            "confirm": "k1", "based_on": "0", "student.max_loans": "3"}
    for path in FORMS:
        for csrf in (None, "", "guess"):
            data = good if csrf is None else {**good, "csrf": csrf}
            assert client.post(path, data).status_code == 403, (path, csrf)
    with school.store.reading() as conn:
        assert conn.execute(select(db.kiosks).where(db.kiosks.c.kiosk_id == kiosk_id)).first() is None
        assert conn.execute(select(db.cards).where(db.cards.c.card_id == "CSRF1")).first() is None


def test_a_provisioned_kiosk_pushes_and_a_revoked_one_is_refused(school, librarian):
    client, name, _token = librarian
    kiosk_id = "class-" + uuid.uuid4().hex[:8]
    fields = form_of(client, "/school/kiosks")
    answer = client.post("/school/kiosks", {**fields, "kiosk_id": kiosk_id, "name": "<i>Class</i> 3.2"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    token = re.search(r'<code id="credential">(bck1_[^<]+)</code>', answer.text).group(1)
    assert f"id = {kiosk_id}" in answer.text and f"server_url = {school.url}" in answer.text
    assert "chmod 600" in answer.text and "&lt;data_dir&gt;" in answer.text
    listing = client.get("/school/kiosks")
    assert token not in listing.text and f'data-kiosk="{kiosk_id}"' in listing.text
    assert "&lt;i&gt;Class&lt;/i&gt; 3.2" in listing.text and "<i>Class</i>" not in listing.text
    assert json.loads(audit_rows(school, "kiosk.add")[-1].detail) == {"name": "<i>Class</i> 3.2"}

    kiosk = KioskClient(school.url, kiosk_id, token)
    assert kiosk.push([kiosk.event(*checkout("I-school", "S-li"))]).status_code == 200
    again = client.post("/school/kiosks", {**fields, "kiosk_id": kiosk_id})
    assert again.status_code == 422 and "exists already" in again.text

    unconfirmed = client.post(f"/school/kiosks/{kiosk_id}/revoke", {"csrf": fields["csrf"], "confirm": "yes"})
    assert unconfirmed.status_code == 422 and f"Type the kiosk&#39;s id ({kiosk_id})" in unconfirmed.text
    assert kiosk.push([kiosk.event(*checkout("I-school2", "S-li"))]).status_code == 200
    revoked = client.post(f"/school/kiosks/{kiosk_id}/revoke", {"csrf": fields["csrf"], "confirm": kiosk_id})
    assert revoked.status_code == 303
    assert audit_rows(school, "kiosk.revoke")[-1].who == name
    deadline = time.monotonic() + 5  # the server remembers a credential's answer for two seconds
    while (status := kiosk.push([kiosk.event(*checkout("I-school3", "S-li"))]).status_code) != 401:
        assert status == 200 and time.monotonic() < deadline
        time.sleep(0.3)
    assert requests.get(f"{school.url}/v1/reference", headers=bearer(token), timeout=10).status_code == 401
    assert 'class="credential">revoked' in client.get("/school/kiosks").text

    reissued = client.post("/school/kiosks", {**fields, "kiosk_id": kiosk_id, "reissue": "on"})
    fresh = re.search(r'<code id="credential">(bck1_[^<]+)</code>', reissued.text).group(1)
    assert KioskClient(school.url, kiosk_id, fresh).push([]).status_code in (200, 422)
    assert requests.get(f"{school.url}/v1/reference", headers=bearer(fresh), timeout=10).status_code == 200
    assert audit_rows(school, "kiosk.reissue")[-1].target == kiosk_id


def test_librarians_are_added_and_revoked_but_not_ones_own_last_credential(school, librarian):
    client, name, _token = librarian
    fields = form_of(client, "/school/librarians")
    other_name = "Mr <b>Zhou</b> " + uuid.uuid4().hex[:4]
    added = client.post("/school/librarians", {**fields, "name": other_name})
    assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
    token = re.search(r'<code id="credential">(bck1_[^<]+)</code>', added.text).group(1)
    assert "Mr &lt;b&gt;Zhou&lt;/b&gt;" in added.text and "<b>Zhou</b>" not in added.text
    other = Librarian(school.url)
    assert other.sign_in(other_name, token).status_code == 303
    assert audit_rows(school, "librarian.add")[-1].target == other_name
    listing = client.get("/school/librarians").text
    assert token not in listing

    with school.store.reading() as conn:
        refs = {r.name: r.token_hash[:16] for r in conn.execute(select(db.credentials).where(
            db.credentials.c.role == "librarian", db.credentials.c.revoked_at.is_(None)))}
    mine = refs[name]
    own = client.post(f"/school/librarians/{mine}/revoke", {"csrf": fields["csrf"], "confirm": name})
    assert own.status_code == 422 and "your last credential" in own.text
    assert client.get("/school").status_code == 200  # still signed in

    wrong = client.post(f"/school/librarians/{refs[other_name]}/revoke", {"csrf": fields["csrf"], "confirm": "x"})
    assert wrong.status_code == 422 and other.get("/school").status_code == 200
    gone = client.post(f"/school/librarians/{refs[other_name]}/revoke", {"csrf": fields["csrf"], "confirm": other_name})
    assert gone.status_code == 303
    assert other.get("/school").status_code == 303  # their session ended with the credential
    assert other.sign_in(other_name, token).status_code == 401
    assert json.loads(audit_rows(school, "librarian.revoke")[-1].detail) == {"credential": refs[other_name]}

    # with a second credential of one's own, the one signed in with may go (and the session with it)
    second = school.add_librarian(name)
    mine_gone = client.post(f"/school/librarians/{mine}/revoke", {"csrf": fields["csrf"], "confirm": name})
    assert mine_gone.status_code == 303
    assert client.get("/school").status_code == 303
    assert Librarian(school.url).sign_in(name, second).status_code == 303


def test_a_credential_and_its_audit_record_are_written_together_or_not_at_all(school, librarian):
    client, name, _token = librarian
    kiosk_id, other = "class-" + uuid.uuid4().hex[:8], "Ms Qian " + uuid.uuid4().hex[:4]
    fields = form_of(client, "/school/kiosks")
    assert client.post("/school/kiosks", {**fields, "kiosk_id": kiosk_id, "name": "3.2"}).status_code == 200
    assert client.post("/school/librarians", {**fields, "name": other}).status_code == 200
    c = db.credentials.c
    with school.store.reading() as conn:
        provisioned = conn.execute(select(db.kiosks.c.provisioned).where(db.kiosks.c.kiosk_id == kiosk_id)).scalar()
        issued = conn.execute(select(c.created_at).where(c.kiosk_id == kiosk_id)).scalar()
        added = conn.execute(select(c.created_at).where(c.name == other)).scalar()
    kiosk_audit = [r for r in audit_rows(school, "kiosk.add") if r.target == kiosk_id]
    librarian_audit = [r for r in audit_rows(school, "librarian.add") if r.target == other]
    assert [(r.who, r.at) for r in kiosk_audit] == [(name, provisioned)] and issued == provisioned
    assert [(r.who, r.at) for r in librarian_audit] == [(name, added)]

    # an audit record the database refuses (it names no one): no kiosk, no credential either
    failed_kiosk, failed_librarian = "class-" + uuid.uuid4().hex[:8], "Mr Sun " + uuid.uuid4().hex[:4]
    with pytest.raises(IntegrityError):
        add_kiosk(school.store, failed_kiosk, audit=Audit(None, "kiosk.add", failed_kiosk, {}))
    with pytest.raises(IntegrityError):
        add_librarian(school.store, failed_librarian, audit=Audit(None, "librarian.add", failed_librarian, {}))
    with school.store.reading() as conn:
        assert conn.execute(select(db.kiosks).where(db.kiosks.c.kiosk_id == failed_kiosk)).first() is None
        assert conn.execute(select(db.credentials).where(c.kiosk_id == failed_kiosk)).first() is None
        assert conn.execute(select(db.credentials).where(c.name == failed_librarian)).first() is None
        assert conn.execute(select(db.audit_log).where(db.audit_log.c.target.in_([failed_kiosk, failed_librarian]))
                            ).first() is None
