"""Many schools on one central server (issue 15): each school's librarians, kiosks and
sessions reach their own school's data and no other's.

A real server (SQLite, and PostgreSQL where one answers) holds the implicit school and two
more. Each has a roster, a catalogue, a kiosk that lent a book and a review waiting. Then a
librarian of one school walks every dashboard page and posts every dashboard form, aimed
at the other school's things, and every API route is tried with each school's credentials
and with credentials moved to another school: nothing of the other school is shown,
nothing of it changes, and a credential or session moved to another school is unknown there.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
import requests
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.exc import ProgrammingError

from bookcorner.central import db, migrations, schools
from bookcorner.central.dashboard import FORMS, PAGES
from bookcorner.central.kiosks import add_district_user, add_kiosk, add_librarian
from bookcorner.central.reference import document_from_reference, load_document
from bookcorner.central.services import district as figures
from bookcorner.central.zone import school_zone
from bookcorner.journal.clock import FixedClock
from bookcorner.kiosk.desk import CirculationDesk
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import CalendarRecord, ItemRecord, PatronRecord, ReferenceDocument, TermRecord
from tests.central.dashboard_client import Librarian
from tests.central.harness import BACKENDS, CentralServer, counted_since, database
from tests.central.pushes import KioskClient, checkin, checkout
from tests.school import CARDS, MONDAY, XIAOMING, XIYOUJI, reference
from tests.sync.kiosk import TestKiosk

ZONE = ZoneInfo("Asia/Shanghai")


@dataclass
class SchoolSeen:
    """One school as the test set it up: its store, credentials, and words only it holds."""

    slug: str
    store: db.Store
    kiosk: KioskClient
    librarian: str
    librarian_token: str
    markers: tuple[str, ...]
    review_id: int


def _set_up(store: db.Store, url: str, slug: str) -> SchoolSeen:
    tag = (slug or "first") + uuid.uuid4().hex[:4]
    title, name, kiosk_id = f"Title-of-{tag}", f"Pupil-of-{tag}", f"kiosk-of-{tag}"
    load_document(store, ReferenceDocument(
        patrons=[PatronRecord(patron_id=f"P-{tag}", name=name, role="student", class_name=f"3.{tag}")],
        items=[ItemRecord(item_id=f"I-{tag}", title=title, barcode=f"3{tag}"),
               ItemRecord(item_id=f"J-{tag}", title=f"Other-{title}")]))
    kiosk = KioskClient(url, kiosk_id, add_kiosk(store, kiosk_id, f"Corner-of-{tag}"))
    assert kiosk.push([kiosk.event(*checkout(f"I-{tag}", f"P-{tag}"))]).status_code == 200
    # a return of a book nobody borrowed here: a review waiting for this school's librarian
    assert kiosk.push([kiosk.event(*checkin(f"J-{tag}", "no-such-loan"))]).status_code == 200
    with store.reading() as conn:
        review_id = conn.execute(select(db.reviews.c.review_id).where(db.reviews.c.kiosk_id == kiosk_id)).scalar()
    librarian = f"Librarian-of-{tag}"
    return SchoolSeen(slug, store, kiosk, librarian, add_librarian(store, librarian),
                      (title, name, kiosk_id, f"Corner-of-{tag}", librarian), review_id or 0)


@pytest.fixture(scope="module", params=BACKENDS)
def district(request, tmp_path_factory) -> Iterator[tuple[CentralServer, dict[str, SchoolSeen]]]:
    folder = tmp_path_factory.mktemp(f"district-{request.param}")
    with database(request.param, folder) as url:
        root = db.Store(url, pool_size=2)
        root.migrate()
        registry = schools.Schools(root)
        registry.add("north-hill", "North Hill Primary")
        registry.add("south", "South Bank Primary")
        # the district's figures counted every second (the page shows them as the job kept them)
        server = CentralServer(url, folder / "server.log", "--district-every", "1").start()
        try:
            seen = {slug: _set_up(registry.store(slug), server.url, slug) for slug in ("", "north-hill", "south")}
            yield server, seen
        finally:
            server.stop()
            registry.dispose()
            root.dispose()


def _contents(store: db.Store) -> dict[str, list]:
    """Every row of every table of a school (what must not change when another school acts)."""
    with store.reading() as conn:
        return {table.name: sorted(map(repr, conn.execute(select(table)).all())) for table in db.metadata.sorted_tables
                if conn.dialect.has_table(conn, table.name)}  # (some tables are PostgreSQL's only)


def _signed_in(server: CentralServer, school: SchoolSeen) -> Librarian:
    client = Librarian(server.url)
    assert client.sign_in(school.librarian, school.librarian_token).status_code == 303
    return client


def test_credentials_name_their_school_and_work_only_there(district):
    _server, seen = district
    assert not seen[""].kiosk.token.startswith(("north-hill.", "south."))  # the first school: as it always was
    assert seen["north-hill"].kiosk.token.startswith("north-hill.")
    assert seen["south"].librarian_token.startswith("south.")
    assert schools.school_of_secret(seen["south"].kiosk.token)[0] == "south"


@pytest.mark.parametrize("slug", ["", "north-hill", "south"])
def test_a_librarian_sees_only_their_school_on_every_page(district, slug):
    server, seen = district
    me = seen[slug]
    others = [school for other, school in seen.items() if other != slug]
    client = _signed_in(server, me)
    shown_mine = set()
    for path in PAGES:
        for asked in {path, path.replace("/1", f"/{others[0].review_id}")}:
            page = client.get(asked)
            assert page.status_code < 500, (asked, page.status_code)
            for other in others:
                for marker in other.markers:
                    assert marker not in page.text, (asked, marker)
            shown_mine.update(marker for marker in me.markers if marker in page.text)
    # the walk saw this school's own things (so the pages above were not simply empty)
    assert {me.markers[0], me.markers[2]} <= shown_mine


def test_every_form_aimed_at_another_school_changes_nothing_there(district):
    server, seen = district
    north, south, first = seen["north-hill"], seen["south"], seen[""]
    before = {slug: _contents(seen[slug].store) for slug in ("south", "")}
    client = _signed_in(server, north)
    csrf = client.csrf()
    for path in FORMS:
        for target in (south, first):
            asked = path.replace("/1", f"/{target.review_id}")
            answer = client.post(asked, {"csrf": csrf, "decision": "accept", "kiosk_id": target.kiosk.kiosk_id,
                                         "item_id": f"I-{target.markers[0][9:]}", "name": target.librarian})
            assert answer.status_code < 500, (asked, answer.status_code)
    after = {slug: _contents(seen[slug].store) for slug in ("south", "")}
    for slug in ("south", ""):
        changed = [name for name in before[slug] if before[slug][name] != after[slug][name]]
        assert changed == [], (slug or "first school", changed)
    with south.store.reading() as conn:
        assert conn.execute(select(db.reviews.c.resolved_at)
                            .where(db.reviews.c.review_id == south.review_id)).scalar() is None


def test_a_session_or_credential_moved_to_another_school_is_unknown_there(district):
    server, seen = district
    north, south = seen["north-hill"], seen["south"]
    client = _signed_in(server, north)
    secret = client.http.cookies.get("bc_session")
    assert secret.startswith("north-hill.")
    for forged in (secret.replace("north-hill.", "south.", 1), secret.split(".", 1)[1], "nowhere." + secret):
        stranger = requests.Session()
        stranger.cookies.set("bc_session", forged, path="/dashboard")
        answer = stranger.get(f"{server.url}/dashboard/end-of-day", allow_redirects=False, timeout=10)
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/sign-in", forged
    # a librarian's credential given the other school's name signs in nowhere
    moved = north.librarian_token.replace("north-hill.", "south.", 1)
    assert Librarian(server.url).sign_in(north.librarian, moved).status_code == 401
    assert Librarian(server.url).sign_in(north.librarian, north.librarian_token.split(".", 1)[1]).status_code == 401
    # a kiosk's: unknown to the API (and its events go nowhere)
    for token in (north.kiosk.token.replace("north-hill.", "south.", 1), north.kiosk.token.split(".", 1)[1],
                  "nowhere." + north.kiosk.token.split(".", 1)[1]):
        for method, path in _api_routes(server):
            answer = requests.request(method, server.url + path, headers=bearer(token), timeout=10)
            assert answer.status_code == 401, (method, path, token[:12])
    with south.store.reading() as conn:
        assert conn.execute(select(db.kiosks.c.kiosk_id).where(db.kiosks.c.kiosk_id == north.kiosk.kiosk_id)).first() \
            is None


def _api_routes(server: CentralServer) -> list[tuple[str, str]]:
    """Every secured route of the kiosks' API, from the server's own OpenAPI document."""
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    routes = [(method.upper(), path) for path, operations in document["paths"].items()
              for method, operation in operations.items() if operation.get("security")]
    assert {("POST", "/v1/push"), ("GET", "/v1/kiosks")} <= set(routes)
    return routes


def test_each_schools_api_answers_with_that_school_only(district):
    server, seen = district
    for slug, school in seen.items():
        others = [other for name, other in seen.items() if name != slug]
        listed = requests.get(f"{server.url}/v1/kiosks", headers=bearer(school.librarian_token), timeout=10)
        assert listed.status_code == 200
        ids = {k["kiosk_id"] for k in listed.json()["kiosks"]}
        assert school.kiosk.kiosk_id in ids and not ids & {other.kiosk.kiosk_id for other in others}
        reference = requests.get(f"{server.url}/v1/reference", headers=bearer(school.kiosk.token), timeout=10)
        assert reference.status_code == 200
        assert school.markers[0] in reference.text
        assert not any(marker in reference.text for other in others for marker in other.markers)
    # a kiosk of one school pushing an event about another school's book: kept in its own school
    north, south = seen["north-hill"], seen["south"]
    south_item = "I-" + south.markers[0].removeprefix("Title-of-")
    assert north.kiosk.push([north.kiosk.event(*checkout(south_item, "P-x"))]).status_code == 200
    with south.store.reading() as conn:
        assert conn.execute(select(db.loans.c.kiosk_id).where(db.loans.c.item_id == south_item)).scalars().all() == [
            south.kiosk.kiosk_id]


def test_the_schools_are_apart_in_the_database_itself(district):
    _server, seen = district
    if seen[""].store.sqlite:
        for slug in ("north-hill", "south"):
            assert seen[slug].store.url.endswith(f"/schools/{slug}.db")
        return
    with seen[""].store.reading() as conn:
        found = set(conn.execute(text("SELECT schema_name FROM information_schema.schemata")).scalars())
    assert {"school_north_hill", "school_south"} <= found
    # the same kiosk id in two schools is two kiosks: each school's lock keys are its own
    assert db.ingest_lock_keys("k", ["i"], school="school_south:") != db.ingest_lock_keys("k", ["i"])
    assert seen["south"].store._write_lock_key != seen[""].store._write_lock_key


def test_school_slugs_are_checked():
    for bad in ("", "North", "1st", "a_b", "district", "x" * 41, "ends-"):
        with pytest.raises(schools.BadSlug):
            schools.check_slug(bad)
    assert schools.check_slug("st-marys-2") == "st-marys-2"
    assert schools.schema_of("st-marys-2") == "school_st_marys_2"
    assert re.fullmatch(db.SCHEMA_NAME, schools.schema_of("a" * 40))


def _district_row(page: str, slug: str) -> dict[str, int]:
    row = re.search(rf'<tr data-school="{re.escape(slug)}"[^>]*>(.*?)</tr>', page, re.DOTALL).group(1)
    return {name: int(value) for name, value in re.findall(r'<td class="([a-z-]+)">(\d+)</td>', row)}


def _staff(server: CentralServer, root: db.Store) -> Librarian:
    staff = Librarian(server.url)
    name = f"District clerk {uuid.uuid4().hex[:4]}"
    answer = staff.sign_in(name, add_district_user(root, name))
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/district"
    return staff


def test_the_district_sees_every_schools_figures_and_their_total_and_changes_nothing(district):
    server, seen = district
    token = add_district_user(seen[""].store, "District office")
    assert "." not in token  # the district's staff belong to no one school
    staff = Librarian(server.url)
    answer = staff.sign_in("District office", token)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/district"
    counted = counted_since(seen[""].store, 3, db.now())  # (the job's figures, counted after every school's set-up)
    page = staff.get("/district")
    assert page.status_code == 200
    expected: dict[str, dict[str, int]] = {}
    for slug, school in seen.items():
        with school.store.reading() as conn:
            on_loan = conn.execute(select(func.count()).select_from(db.loans)
                                   .where(db.loans.c.returned_at.is_(None))).scalar_one()
            waiting = conn.execute(select(func.count()).select_from(db.reviews)
                                   .where(db.reviews.c.resolved_at.is_(None))).scalar_one()
            kiosks = conn.execute(select(func.count()).select_from(db.kiosks)).scalar_one()
            pupils = conn.execute(select(func.count()).select_from(db.patrons)).scalar_one()
            books = conn.execute(select(func.count()).select_from(db.catalogue)).scalar_one()
        expected[slug] = {"on-loan": on_loan, "waiting": waiting, "kiosks": kiosks, "pupils": pupils, "books": books}
        got = _district_row(page.text, slug)
        assert {name: got[name] for name in expected[slug]} == expected[slug], slug
        assert got["loans-this-term"] >= 1
    total = _district_row(page.text, "*")
    for name in ("on-loan", "waiting", "kiosks", "pupils", "books"):
        assert total[name] == sum(figures[name] for figures in expected.values()), name
    # when they were counted (the oldest of the figures shown): in the job's round above
    shown = re.search(r'class="hint as-of">Figures as of (\d\d:\d\d) ', page.text).group(1)
    zone = school_zone(seen[""].store)  # (the district's page's: the implicit school's)
    assert shown in {(at - timedelta(minutes=m)).astimezone(zone).strftime("%H:%M")
                     for at in counted.values() for m in (-1, 0, 1)}
    assert "数据截至" in staff.get("/district", params={"lang": "zh_CN"}).text
    assert "North Hill Primary" in page.text and "South Bank Primary" in page.text
    # figures only: no child's name, no book's title
    assert not any(marker in page.text for school in seen.values() for marker in school.markers[:2])
    assert "所有学校" in staff.get("/district", params={"lang": "zh_CN"}).text
    table = staff.get("/district/schools.csv")
    assert table.status_code == 200 and "south" in table.text and "north-hill" in table.text
    header, *rows = table.text.splitlines()
    assert header.endswith(",统计时间") and len(rows) == 4  # (in Chinese, as asked above; each dated, the totals too)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row.rsplit(",", 1)[1]) for row in rows), rows
    # a school's pages send the district's staff to theirs; a school's form is refused
    for path in ("/end-of-day", "/reviews", "/school"):
        moved = staff.get(path)
        assert moved.status_code == 303 and moved.headers["location"] == "/dashboard/district", path
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    for path in FORMS:
        if path != "/sign-out":
            assert staff.post(path.replace("/1", f"/{seen[''].review_id}"), {"csrf": csrf}).status_code == 403, path
    # and a school's librarian is refused the district's page
    assert _signed_in(server, seen["south"]).get("/district").status_code == 403
    assert staff.post("/sign-out", {"csrf": csrf}).status_code == 303
    assert staff.get("/district").status_code == 303


def test_a_new_loan_shows_on_the_district_page_after_the_jobs_next_count(district):
    """The page shows the figures the server's job keeps (counted every second here, and kept
    for the page up to 15 minutes): a book lent in one school shows there, and in the total,
    once the job has counted again."""
    server, seen = district
    staff = _staff(server, seen[""].store)
    counted_since(seen[""].store, 3, db.now())
    before = staff.get("/district").text
    south = seen["south"]
    tag = south.markers[0].removeprefix("Title-of-")
    assert south.kiosk.push([south.kiosk.event(*checkout(f"J-{tag}", f"P-{tag}"))]).status_code == 200
    lent = db.now()
    counted = counted_since(seen[""].store, 3, lent)
    after = staff.get("/district").text
    for slug in ("south", "*"):
        was, now = _district_row(before, slug), _district_row(after, slug)
        assert now["loans-this-term"] == was["loans-this-term"] + 1, slug
        assert now["on-loan"] == was["on-loan"] + 1, slug
    assert _district_row(after, "north-hill") == _district_row(before, "north-hill")
    with seen[""].store.reading() as conn:  # the page's figures are the job's, counted after the loan
        kept = conn.execute(select(schools.district_figures.c.on_loan)
                            .where(schools.district_figures.c.slug == "south")).scalar_one()
    assert kept == _district_row(after, "south")["on-loan"] and counted["south"] > lent


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_district_page_counts_live_a_school_whose_kept_figures_are_missing_old_or_of_another_day(
        backend, tmp_path):
    """The job's kept figures are what the page shows while they are fresh; a school added since
    the job's last round, figures kept longer ago than the page allows, or counted on another
    day, are counted live: no school is blank, nothing is silently stale."""
    with database(backend, tmp_path) as url:
        root = db.Store(url, pool_size=2)
        registry = schools.Schools(root)
        try:
            root.migrate()
            registry.add("west", "West Gate Primary")
            for slug in ("", "west"):
                load_document(registry.store(slug), ReferenceDocument(
                    patrons=[PatronRecord(patron_id="P-1", name="Pupil", role="student", class_name="3.1")]))
            now = db.now()
            today = now.astimezone(ZONE).date()
            fresh = timedelta(minutes=15)
            seen = figures.overview(registry, today, ZONE, now, fresh)  # nothing kept yet: all counted now
            assert [(f.slug, f.pupils, f.counted_at) for f in seen.schools] == [("", 1, now), ("west", 1, now)]
            for slug in ("", "west"):
                figures.FiguresKeeper(registry.store(slug), registry).once(now)
            load_document(registry.store("west"), ReferenceDocument(patrons=[  # (the whole roster, one more)
                PatronRecord(patron_id="P-1", name="Pupil", role="student", class_name="3.1"),
                PatronRecord(patron_id="P-2", name="Another", role="student", class_name="3.1")]))
            registry.add("east", "East Lake Primary")
            later = now + timedelta(minutes=5)
            seen = figures.overview(registry, today, ZONE, later, fresh)
            by_slug = {f.slug: f for f in seen.schools}
            assert by_slug["west"].pupils == 1 and by_slug["west"].counted_at == now  # as kept
            assert by_slug["west"].name == "West Gate Primary"
            assert by_slug["east"].counted_at == later and by_slug["east"].pupils == 0  # added since: counted now
            assert seen.as_of == now and seen.total.pupils == 2
            # kept longer ago than the page allows, or on another day: counted now
            for when, day in ((now + fresh + timedelta(seconds=1), today), (later, today + timedelta(days=1))):
                seen = figures.overview(registry, day, ZONE, when, fresh)
                assert {f.slug: (f.pupils, f.counted_at) for f in seen.schools} == {
                    "": (1, when), "west": (2, when), "east": (0, when)}
        finally:
            registry.dispose()
            root.dispose()


def test_the_district_figures_read_together_are_each_schools_own(district, monkeypatch):
    """The district page's live count (for a school the job has not counted yet) reads the
    schools together (PostgreSQL: one statement over several schools' schemas, here two at a
    time): the same figures as asking each school in turn, each school's term from its own
    calendar."""
    _server, seen = district
    monkeypatch.setattr(figures, "TOGETHER", 2)
    registry = schools.Schools(seen[""].store)
    south = seen["south"].store
    calendar = msgspec.json.encode(CalendarRecord(terms=[TermRecord("spring", date(2026, 2, 20), date(2026, 7, 10)),
                                                         TermRecord("autumn", date(2026, 9, 1), date(2027, 1, 20))]))
    with south.writing() as conn:
        conn.execute(db.settings.insert().values(name="calendar", data=calendar.decode(), rev=0))
    try:
        today, now = date(2026, 12, 4), db.now()
        listed = registry.listed()
        together = figures.totalled(figures.counted(listed, [registry.reports(school.slug) for school in listed],
                                                    today, ZONE, now))
        one_by_one = [figures.figures_of(school, registry.reports(school.slug), today, ZONE, now)
                      for school in listed]
        assert together.schools == one_by_one
        by_slug = {row.slug: row for row in together.schools}
        assert by_slug["south"].term_start == date(2026, 9, 1)
        assert by_slug["north-hill"].term_start != date(2026, 9, 1)  # (no calendar: the 20 weeks to Sunday)
        assert by_slug["south"].kiosks >= 1 and by_slug["south"].last_contact is not None
        assert together.total.kiosks == sum(row.kiosks for row in one_by_one)
    finally:
        with south.writing() as conn:
            conn.execute(db.settings.delete().where(db.settings.c.name == "calendar"))
        registry.dispose()


def test_every_school_is_brought_up_to_date_and_those_at_the_last_migration_are_left_alone(tmp_path, monkeypatch):
    """Every command and the server's start migrate every school: a school behind is migrated,
    and on PostgreSQL the schools already at the last migration are found in one statement and
    not migrated again (alembic in each of 300 schemas took 30–40 s with nothing to do)."""
    with database("postgresql", tmp_path) as url:
        root = db.Store(url, pool_size=2)
        registry = schools.Schools(root)
        try:
            root.migrate()
            for slug in ("east", "west", "north"):
                registry.add(slug, slug.title())
            behind = registry.store("west")
            with behind.writing() as conn:  # as if the program had been upgraded since
                command.downgrade(migrations.config(conn), "0010")
            migrated: list[str] = []
            upgrade = db.Store.migrate
            monkeypatch.setattr(db.Store, "migrate", lambda store: (migrated.append(store.school), upgrade(store)))
            registry.migrate_all()
            assert migrated == ["west"]
            with behind.reading() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == migrations.head()
                assert conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table "
                                         "WHERE partrelid = to_regclass('loans'))")).scalar()
            migrated.clear()
            registry.migrate_all()
            assert migrated == []
            # a school's schema that lost its version table: every school is migrated the slow way
            with registry.store("north").writing() as conn:
                conn.execute(text("DROP TABLE alembic_version"))
            with pytest.raises(ProgrammingError, match="already exists"):  # (alembic, on the tables that are there)
                registry.migrate_all()
            assert "east" in migrated
        finally:
            registry.dispose()
            root.dispose()


def test_kiosks_of_one_name_in_two_schools_sync_through_the_real_daemon_each_to_its_own(district, tmp_path):
    """The same corner name, pupil and book in two schools: ``bookcorner syncd --once`` with each
    school's credential takes each kiosk's loans to its own school, and brings back its own."""
    server, seen = district
    kiosks = {}
    for slug in ("north-hill", "south"):
        load_document(seen[slug].store, document_from_reference(reference(), f"School {slug}"))
        kiosks[slug] = TestKiosk(tmp_path / slug, "corner-1", server.url, add_kiosk(seen[slug].store, "corner-1"))
    with CirculationDesk(kiosks["north-hill"].root, "corner-1", FixedClock(MONDAY)) as desk:
        assert desk.checkout(desk.identify(CARDS[XIAOMING]), XIYOUJI.barcode).ok
    for kiosk in kiosks.values():
        done = kiosk.syncd_once()
        assert done.returncode == 0, done.stderr
    with seen["north-hill"].store.reading() as conn:
        assert conn.execute(select(db.loans.c.kiosk_id).where(db.loans.c.item_id == XIYOUJI.item_id,
                                                              db.loans.c.returned_at.is_(None))).scalars().all() == [
            "corner-1"]
    for slug in ("south", ""):
        with seen[slug].store.reading() as conn:
            assert conn.execute(select(db.loans.c.loan_id).where(db.loans.c.item_id == XIYOUJI.item_id)).first() is None
    with CirculationDesk(kiosks["south"].root, "corner-1", FixedClock(MONDAY)) as desk:
        assert desk.state.loan_of(XIYOUJI.item_id) is None  # south's corner learnt nothing of north's loan
