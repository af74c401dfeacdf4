"""The school's time zone (an IANA zone, right across daylight-saving changes) and due dates
computed under a kiosk clock the server later corrected: on a real server, both backends,
with Europe/London as the school's zone (its clocks go back on 2026-10-25)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.dashboard.review_text import day_text
from bookcorner.central.reference import load_document
from bookcorner.central.services.registers import overdue
from bookcorner.central.services.reviews import day_bounds, period_bounds
from bookcorner.config.zones import UnknownZone, machine_zone_name, zone_named
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import (
    CalendarRecord,
    ClockReading,
    ItemRecord,
    PatronRecord,
    PolicyRecord,
    PushRequest,
    ReferenceDelta,
    ReferenceDocument,
    RoleRules,
    RuleCell,
    TermRecord,
    WireEvent,
    decode,
    encode,
)
from tests.central.dashboard_client import CSRF, Librarian
from tests.central.harness import BACKENDS, CentralServer, database

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc
LOAN_DAYS = 14  # the rules these tests load: every day open, two weeks


@pytest.fixture(scope="module", params=BACKENDS)
def school(request, tmp_path_factory) -> Iterator[CentralServer]:
    """A server whose school is in Europe/London (whatever this computer's zone)."""
    folder = tmp_path_factory.mktemp(f"london-{request.param}")
    with database(request.param, folder) as url:
        server = CentralServer(url, folder / "server.log", "--timezone", "Europe/London").start()
        server.backend = request.param
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def librarian(school) -> Librarian:
    name = "Mr Reed " + uuid.uuid4().hex[:4]
    client = Librarian(school.url)
    assert client.sign_in(name, school.add_librarian(name)).status_code == 303
    return client


def _load(server: CentralServer, tag: str, items: int, terms: list[TermRecord] | None = None) -> None:
    """A student, ``items`` books, and rules of the test's own: every day open, two weeks."""
    load_document(server.store, ReferenceDocument(
        school="Riverside",
        patrons=[PatronRecord(patron_id=f"S-{tag}", name=f"Ada {tag}", role="student", class_name="4B")],
        items=[ItemRecord(item_id=f"I{n}-{tag}", title=f"Book {n} {tag}", barcode=f"9{n}{tag}") for n in range(items)],
        policy=PolicyRecord(roles={"student": RoleRules(max_loans=20, block_when_overdue=False)},
                            rules=[RuleCell(role="student", item_type="circulating", loan_days=LOAN_DAYS)]),
        calendar=CalendarRecord(closed_weekdays=[], terms=terms or [])))


def _kiosk(server: CentralServer) -> tuple[str, str]:
    kiosk_id = "k-" + uuid.uuid4().hex[:10]
    return kiosk_id, server.add_kiosk(kiosk_id)


def _checkout(kiosk_id: str, seq: int, item: str, patron: str, due: date, *, wall: datetime, boot: str,
              monotonic_ns: int, synced: bool) -> WireEvent:
    return WireEvent(event_id=str(uuid.uuid4()), kiosk_id=kiosk_id, seq=seq, boot_id=boot, monotonic_ns=monotonic_ns,
                     wall_time=wall.isoformat(timespec="milliseconds"), clock_synced=synced, actor=patron,
                     type="loan.checked_out",
                     payload={"item_id": item, "patron_id": patron, "card_id": "c", "code": item,
                              "due": due.isoformat(), "warnings": []})


def _push(server: CentralServer, kiosk_id: str, token: str, events: list[WireEvent],
          clock: ClockReading | None = None) -> dict:
    now = datetime.now(UTC)
    body = PushRequest(kiosk_id=kiosk_id, batch_id=str(uuid.uuid4()), from_seq=events[0].seq, to_seq=events[-1].seq,
                       clock=clock or ClockReading("push-boot", 10**12, now.isoformat(timespec="milliseconds"), True),
                       events=events)
    answer = requests.post(f"{server.url}/v1/push", data=encode(body), timeout=30,
                           headers={**bearer(token), "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- A: the zone -------------------------------------------------------------------------------


def test_a_day_with_a_daylight_saving_change_is_25_hours_of_the_schools_zone():
    start, end = day_bounds(date(2026, 10, 25), LONDON)  # clocks back at 02:00 BST
    assert (start, end) == (datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 26, 0, tzinfo=UTC))
    start, end = day_bounds(date(2026, 3, 8), ZoneInfo("America/New_York"))  # forward at 02:00 EST
    assert (start, end) == (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC))
    assert period_bounds(date(2026, 3, 1), date(2026, 3, 31), LONDON) == (
        datetime(2026, 3, 1, 0, tzinfo=UTC), datetime(2026, 3, 31, 23, tzinfo=UTC))  # March ends in BST


def test_the_default_zone_is_the_computers_own_name_else_shanghai(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    assert machine_zone_name({}, etc) == "Asia/Shanghai"  # nothing names one
    os.symlink("/usr/share/zoneinfo/America/New_York", etc / "localtime")
    assert machine_zone_name({}, etc) == "America/New_York"
    (etc / "timezone").write_text("Europe/London\n")
    assert machine_zone_name({}, etc) == "Europe/London"
    assert machine_zone_name({"TZ": ":Asia/Tokyo"}, etc) == "Asia/Tokyo"
    assert machine_zone_name({"TZ": "Nowhere/Atall"}, etc) == "Europe/London"  # an unknown name is passed over


def test_an_unknown_zone_is_refused_with_a_message(tmp_path):
    for name in ("Europe/Londn", "+08:00", "../../etc/passwd", ""):
        with pytest.raises(UnknownZone, match="unknown time zone"):
            zone_named(name)
    assert zone_named("America/New_York").key == "America/New_York"
    run = subprocess.run([sys.executable, "-m", "bookcorner", "central", "--db", f"sqlite:///{tmp_path / 'c.db'}",
                          "--port", "0", "--timezone", "Asia/Shanghia"], check=False, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert "unknown time zone 'Asia/Shanghia'" in run.stderr and "Asia/Shanghai" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "c.db").exists()  # refused before anything was opened


def test_day_boundaries_and_export_times_across_the_clocks_going_back(school, librarian):
    """Loans at 23:30 BST, 00:30 BST, 01:30 BST, 01:30 GMT, 23:30 GMT and 00:30 GMT around
    2026-10-25: the school's day of 25 October holds the middle four, whatever this computer's
    zone, and the exports give each its own local time and offset."""
    tag = uuid.uuid4().hex[:6]
    _load(school, tag, 6)
    kiosk_id, token = _kiosk(school)
    utc_times = [datetime(2026, 10, 24, 22, 30, tzinfo=UTC), datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
                 datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
                 datetime(2026, 10, 25, 23, 30, tzinfo=UTC), datetime(2026, 10, 26, 0, 30, tzinfo=UTC)]
    events = [_checkout(kiosk_id, n + 1, f"I{n}-{tag}", f"S-{tag}", (t + timedelta(days=LOAN_DAYS)).date(),
                        wall=t.astimezone(LONDON), boot=f"boot-{n}", monotonic_ns=10**9, synced=True)
              for n, t in enumerate(utc_times)]
    results = _push(school, kiosk_id, token, events)["results"]
    assert [r["outcome"] for r in results] == ["applied"] * 6
    day = "2026-10-25"
    exported = librarian.get("/exports/events.csv", params={"from": day, "to": day})
    assert exported.status_code == 200
    rows = [r for r in csv.DictReader(io.StringIO(exported.text)) if r["kiosk_id"] == kiosk_id]
    assert [r["item_id"] for r in rows] == [f"I{n}-{tag}" for n in (1, 2, 3, 4)]
    assert [r["time"] for r in rows] == ["2026-10-25T00:30:00.000+01:00", "2026-10-25T01:30:00.000+01:00",
                                         "2026-10-25T01:30:00.000+00:00", "2026-10-25T23:30:00.000+00:00"]
    koc = librarian.get("/exports/circulation.koc", params={"from": day, "to": day}).text.splitlines()
    mine = [line.split("\t")[0] for line in koc if line.endswith(tag)]
    assert mine == ["2026-10-25 00:30:00 000", "2026-10-25 01:30:00 000", "2026-10-25 01:30:00 000",
                    "2026-10-25 23:30:00 000"]
    before = librarian.get("/exports/events.csv", params={"from": "2026-10-24", "to": "2026-10-24"}).text
    after = librarian.get("/exports/events.csv", params={"from": "2026-10-26", "to": "2026-10-26"}).text
    assert f"I0-{tag}" in before and f"I1-{tag}" not in before
    assert f"I5-{tag}" in after and f"I4-{tag}" not in after


def test_the_kiosks_get_the_schools_zone_with_the_reference_data(school, librarian):
    assert "Time zone: Europe/London." in librarian.get("/school").text
    tag = uuid.uuid4().hex[:6]
    _load(school, tag, 1)
    _kiosk_id, token = _kiosk(school)
    answer = requests.get(f"{school.url}/v1/reference", headers=bearer(token), timeout=30)
    assert answer.status_code == 200
    assert decode(answer.content, ReferenceDelta).timezone == "Europe/London"
    with school.store.reading() as conn:  # set by --timezone, and audited
        stored = conn.execute(select(db.settings.c.data).where(db.settings.c.name == "timezone")).scalar()
        edits = conn.execute(select(db.audit_log.c.detail).where(db.audit_log.c.action == "timezone.edit")).scalars()
        assert json.loads(stored) == "Europe/London"
        assert [json.loads(d)["after"] for d in edits] == ["Europe/London"]


# --- B: a due date from a wrong clock ---------------------------------------------------------------


def _behind(kiosk_id: str, seq: int, item: str, patron: str, behind: timedelta, push_at: datetime,
            terms_end: date | None = None) -> WireEvent:
    """A checkout a minute before the push, in the push's boot, on a wall clock ``behind`` the
    truth; its due date as the kiosk worked it out from that clock (the rules loaded here)."""
    wall = (push_at - timedelta(minutes=1) - behind).astimezone(LONDON)
    due = wall.date() + timedelta(days=LOAN_DAYS)
    if terms_end is not None:
        due = min(due, terms_end)
    return _checkout(kiosk_id, seq, item, patron, due, wall=wall, boot="push-boot",
                     monotonic_ns=10**12 - 60 * 10**9, synced=False)


def _clock(at: datetime) -> ClockReading:
    return ClockReading("push-boot", 10**12, at.isoformat(timespec="milliseconds"), False)


def _reviews(server: CentralServer, kiosk_id: str) -> list:
    with server.store.reading() as conn:
        return conn.execute(select(db.reviews).where(db.reviews.c.kiosk_id == kiosk_id)
                            .order_by(db.reviews.c.review_id)).all()


def _card(page: str, review: int) -> str:
    return page.split(f'id="review-{review}"', 1)[1].split("</section>", 1)[0]


def test_a_checkout_on_a_clock_days_behind_is_reviewed_and_accepting_moves_the_due_date(school, librarian):
    tag = uuid.uuid4().hex[:6]
    _load(school, tag, 2)
    kiosk_id, token = _kiosk(school)
    push_at = datetime.now(UTC)
    lent, kept, back = (_behind(kiosk_id, n + 1, f"I{n}-{tag}", f"S-{tag}", timedelta(days=20), push_at)
                        for n in range(3))
    returned = WireEvent(event_id=str(uuid.uuid4()), kiosk_id=kiosk_id, seq=4, boot_id="push-boot",
                         monotonic_ns=10**12 - 10**9, wall_time=push_at.isoformat(), clock_synced=True,
                         actor="librarian", type="loan.returned",
                         payload={"item_id": f"I2-{tag}", "due": back.payload["due"], "with_card": False,
                                  "implicit": False, "warnings": []})
    results = _push(school, kiosk_id, token, [lent, kept, back, returned], _clock(push_at))["results"]
    assert [r["outcome"] for r in results] == ["applied"] * 4  # the loans stand, as the children were told
    with school.store.reading() as conn:
        corrected = conn.execute(select(db.events.c.time).where(db.events.c.event_id == lent.event_id)).scalar_one()
    given = date.fromisoformat(lent.payload["due"])
    right = corrected.astimezone(LONDON).date() + timedelta(days=LOAN_DAYS)
    assert right - given == timedelta(days=20)
    reviews = _reviews(school, kiosk_id)
    assert [(r.event_id, r.reason) for r in reviews] == [(lent.event_id, "due_date_from_wrong_clock"),
                                                       (kept.event_id, "due_date_from_wrong_clock"),
                                                       (back.event_id, "due_date_from_wrong_clock")]
    detail = json.loads(reviews[0].detail)
    assert detail["due_given"] == given.isoformat() and detail["due_corrected"] == right.isoformat()
    assert datetime.fromisoformat(detail["kiosk_time"]) == datetime.fromisoformat(lent.wall_time)
    assert datetime.fromisoformat(detail["corrected_time"]) == corrected
    assert detail["timezone"] == "Europe/London"
    today = datetime.now(LONDON).date()
    slips = overdue(school.store, today).get("4B", [])
    assert {b.item_id for s in slips for b in s.books} >= {f"I0-{tag}", f"I1-{tag}"}  # the given dates passed

    page = librarian.get("/reviews").text
    card = _card(page, reviews[0].review_id)
    assert "The due date was worked out on a wrong kiosk clock" in card
    assert f"The child was told the book is due on {day_text(given)}; the rules give {day_text(right)}." in card
    assert f"The loan will be due on {right.isoformat()}." in card
    effect = card.split('name="effect" value="', 1)[1].split('"', 1)[0]
    gone = _card(page, reviews[2].review_id)  # brought back since: nothing left to move
    assert "Accept changes nothing (The loan had changed elsewhere)." in gone
    csrf = CSRF.search(page).group(1)
    assert librarian.post(f"/reviews/{reviews[0].review_id}",
                          {"csrf": csrf, "decision": "accept", "effect": effect}).status_code == 303
    assert librarian.post(f"/reviews/{reviews[1].review_id}",
                          {"csrf": csrf, "decision": "dismiss", "note": "told the child"}).status_code == 303
    gone_effect = gone.split('name="effect" value="', 1)[1].split('"', 1)[0]
    assert librarian.post(f"/reviews/{reviews[2].review_id}",
                          {"csrf": csrf, "decision": "accept", "effect": gone_effect}).status_code == 303
    with school.store.reading() as conn:
        states = {s.item_id: s.due for s in conn.execute(select(db.item_state.c.item_id, db.item_state.c.due)
                                                          .where(db.item_state.c.item_id.in_([f"I0-{tag}", f"I1-{tag}"])))}
        loans = {x.loan_id: x.due for x in conn.execute(select(db.loans.c.loan_id, db.loans.c.due)
                                                         .where(db.loans.c.kiosk_id == kiosk_id))}
        audit = [json.loads(d) for d in conn.execute(select(db.audit_log.c.detail).where(
            db.audit_log.c.target == f"review:{reviews[0].review_id}")).scalars()]
    assert states == {f"I0-{tag}": right, f"I1-{tag}": given}  # accepted; kept as told
    assert loans == {lent.event_id: right, kept.event_id: given, back.event_id: given}
    assert [a["effect"] for a in audit] == [[["due", right.isoformat()]]]
    books = {b.item_id for s in overdue(school.store, today).get("4B", []) for b in s.books}
    assert f"I0-{tag}" not in books and f"I1-{tag}" in books
    answer = requests.get(f"{school.url}/v1/reference", headers=bearer(token), timeout=30)  # the kiosks learn it
    assert {x.item_id: x.due for x in decode(answer.content, ReferenceDelta).loans if x.item_id.endswith(tag)} == {
        f"I0-{tag}": right, f"I1-{tag}": given}


def test_a_re_timed_checkout_whose_due_date_stays_the_same_is_not_reviewed(school):
    """The term ends in three days: lent today or two days ago, the book is due at its end."""
    tag = uuid.uuid4().hex[:6]
    today = datetime.now(LONDON).date()
    end = today + timedelta(days=3)
    _load(school, tag, 2, [TermRecord(name="Autumn", start=today - timedelta(days=60), end=end)])
    kiosk_id, token = _kiosk(school)
    push_at = datetime.now(UTC)
    behind = _behind(kiosk_id, 1, f"I0-{tag}", f"S-{tag}", timedelta(days=2), push_at, end)
    on_time = _behind(kiosk_id, 2, f"I1-{tag}", f"S-{tag}", timedelta(0), push_at, end)
    results = _push(school, kiosk_id, token, [behind, on_time], _clock(push_at))["results"]
    assert [r["outcome"] for r in results] == ["applied", "applied"]
    assert behind.payload["due"] == on_time.payload["due"] == end.isoformat()
    with school.store.reading() as conn:
        times = dict(conn.execute(select(db.events.c.event_id, db.events.c.time)
                                  .where(db.events.c.kiosk_id == kiosk_id)).all())
    assert times[behind.event_id].astimezone(LONDON).date() != datetime.fromisoformat(behind.wall_time).date()
    assert _reviews(school, kiosk_id) == []


def test_a_scripted_clock_advances_in_elapsed_time_across_the_change():
    from bookcorner.journal.clock import FixedClock

    clock = FixedClock(datetime(2026, 10, 25, 0, 30, tzinfo=LONDON))  # 00:30 BST
    before = clock.read()
    clock.advance(hours=2)
    after = clock.read()
    assert clock.now().isoformat() == "2026-10-25T01:30:00+00:00"  # two hours later: 01:30 GMT
    assert after.wall.astimezone(UTC) - before.wall.astimezone(UTC) == timedelta(hours=2)
    assert (after.monotonic_ns - before.monotonic_ns) // 10**9 == 2 * 3600
