"""A kiosk whose journal goes back in time loses nothing: the SD card dies and last week's
backup is restored, the card is re-imaged and paired again, the files are copied back by
hand. Each scenario runs the real commands (``backup``, ``restore``, ``circ``, ``syncd``,
``doctor``, ``journal seen``) against a real central server over HTTP, on SQLite and
PostgreSQL, and checks both sides: every loan a child was told is done reaches the server
exactly once, the kiosk shows each child's real loans, and the librarian is told what
happened until they have seen it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.central.reference import document_from_reference, load_document
from bookcorner.journal import incarnation
from bookcorner.journal.journal import JournalReader
from bookcorner.kiosk.desk import CirculationDesk
from tests.central.harness import BACKENDS, CentralServer, running_server
from tests.school import CARDS, XIAOHONG, XIAOMING, TEACHER, reference
from tests.sync.kiosk import TestKiosk

XIYOUJI, HONGLOUMENG, SHUIHU = "30001000000010", "30001000000028", "30001000000036"
OLD_BOOK_ISBN, MAGAZINE, ANDERSEN_ISBN = "9787107000508", "30001000000051", "9787020024759"
MING, HONG, TEACHER_CARD = CARDS[XIAOMING], CARDS[XIAOHONG], CARDS[TEACHER]


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path_factory) -> Iterator[CentralServer]:
    """A school's own server, with its catalogue and roster: each test lends the same real books."""
    with running_server(request.param, tmp_path_factory.mktemp(f"goes-back-{request.param}")) as running:
        load_document(running.store, document_from_reference(reference(), "Test school"))
        yield running


@pytest.fixture
def corner(server, tmp_path) -> TestKiosk:
    kiosk_id = "corner-" + tmp_path.name[-12:].replace("_", "-").strip("-")
    return TestKiosk(tmp_path / "sd-card", kiosk_id, server.url, server.add_kiosk(kiosk_id))


def checkout(kiosk: TestKiosk, card: str, book: str) -> None:
    done = kiosk.bookcorner("circ", "checkout", card, book)
    assert done.returncode == 0, done.stdout + done.stderr


def loans_at_kiosk(kiosk: TestKiosk, card: str) -> set[str]:
    shown = kiosk.bookcorner("circ", "status", card, "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return {loan["item_id"] for loan in json.loads(shown.stdout)["loans"]}


def sync(kiosk: TestKiosk) -> str:
    done = kiosk.syncd_once()
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def server_loans(server: CentralServer) -> dict[str, str]:
    with server.store.reading() as conn:
        return dict(conn.execute(select(db.item_state.c.item_id, db.item_state.c.patron_id)
                                 .where(db.item_state.c.loan_id.is_not(None))).all())


def server_event_ids(server: CentralServer, kiosk_id: str) -> list[str]:
    with server.store.reading() as conn:
        return list(conn.execute(select(db.events.c.event_id).where(db.events.c.kiosk_id == kiosk_id)).scalars())


def open_reviews(server: CentralServer, kiosk_id: str) -> list[tuple[str, dict]]:
    with server.store.reading() as conn:
        rows = conn.execute(select(db.reviews.c.reason, db.reviews.c.detail)
                            .where(db.reviews.c.kiosk_id == kiosk_id, db.reviews.c.resolved_at.is_(None))).all()
    return [(reason, json.loads(detail)) for reason, detail in rows]


def journal_ids(root: Path) -> list[str]:
    return [event.event_id for event in JournalReader(root / "journal").events_after(0)]


def restored_onto(kiosk: TestKiosk, archive: Path, root: Path, token: str) -> TestKiosk:
    """A new SD card: the kiosk's configuration and credential, and the backup restored."""
    fresh = TestKiosk(root, kiosk.kiosk_id, kiosk.server_url, token)
    shutil.rmtree(root / "reference")
    done = fresh.bookcorner("restore", str(archive), "--data-dir", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored" in done.stdout
    return fresh


def test_a_restored_kiosk_loses_no_loan_made_before_or_after_the_restore(server, corner, tmp_path):
    checkout(corner, MING, XIYOUJI)
    sync(corner)
    archive = tmp_path / "backup.tar.gz"
    made = corner.bookcorner("backup", "--to", str(archive))
    assert made.returncode == 0, made.stdout + made.stderr
    # after the backup: two more loans, synced; then the SD card dies
    checkout(corner, HONG, HONGLOUMENG)
    checkout(corner, MING, SHUIHU)
    sync(corner)
    before = journal_ids(corner.root)
    token = corner.credential.read_text().strip()

    kiosk = restored_onto(corner, archive, tmp_path / "new-sd-card", token)
    assert incarnation.load(kiosk.root / "journal").reason is incarnation.Reason.RESTORED
    doctor = kiosk.bookcorner("doctor", "--json")
    assert "restored from a backup" in doctor.stdout
    # two children borrow on the restored kiosk before it reaches the server
    checkout(kiosk, TEACHER_CARD, OLD_BOOK_ISBN)
    checkout(kiosk, HONG, MAGAZINE)
    out = sync(kiosk)
    assert "acknowledged" in out

    # the server: every event of both journals exactly once, and every loan
    ids = server_event_ids(server, kiosk.kiosk_id)
    assert len(ids) == len(set(ids)) == len(set(before) | set(journal_ids(kiosk.root)))
    assert server_loans(server) == {"I001": "S01", "I002": "S02", "I003": "S01", "I020": "T01", "I040": "S02"}
    reviews = [detail for reason, detail in open_reviews(server, kiosk.kiosk_id) if reason == "journal_restored"]
    assert len(reviews) == 1 and reviews[0]["loans_not_here"] == 2 and reviews[0]["events_not_here"] == 2
    assert not [reason for reason, _detail in open_reviews(server, kiosk.kiosk_id) if reason == "seq_conflict"]

    # the kiosk: each child's real loans, those made after the backup included
    assert loans_at_kiosk(kiosk, MING) == {"I001", "I003"}
    assert loans_at_kiosk(kiosk, HONG) == {"I002", "I040"}
    assert loans_at_kiosk(kiosk, TEACHER_CARD) == {"I020"}

    # the librarian is told, with the numbers, until they have seen it
    doctor = kiosk.bookcorner("doctor", "--json")
    assert "2 loan(s) (2 event(s)) were made after the backup" in doctor.stdout
    seen = kiosk.bookcorner("journal", "seen")
    assert seen.returncode == 0 and "marked as seen" in seen.stdout
    assert "restored from a backup" not in kiosk.bookcorner("doctor", "--json").stdout

    # and it goes on: a later loan is pushed and acknowledged as usual
    checkout(kiosk, TEACHER_CARD, ANDERSEN_ISBN)
    sync(kiosk)
    assert len(server_loans(server)) == 6 and len(loans_at_kiosk(kiosk, TEACHER_CARD)) == 2


def test_a_restored_kiosk_with_nothing_new_tells_the_server_at_its_first_sync(server, corner, tmp_path):
    """Restored, then synced before anyone borrows: the server hears of the restore at once
    (an empty push names the new journal), so the librarian's notice counts the loan made
    after the backup instead of saying the server had nothing newer."""
    checkout(corner, MING, XIYOUJI)
    sync(corner)
    archive = tmp_path / "backup.tar.gz"
    made = corner.bookcorner("backup", "--to", str(archive))
    assert made.returncode == 0, made.stdout + made.stderr
    checkout(corner, HONG, HONGLOUMENG)  # after the backup, synced: then the card dies
    sync(corner)
    token = corner.credential.read_text().strip()

    kiosk = restored_onto(corner, archive, tmp_path / "new-sd-card", token)
    before = kiosk.bookcorner("doctor", "--json").stdout
    assert "come back from the server at the next sync" in before
    sync(kiosk)
    reviews = [detail for reason, detail in open_reviews(server, kiosk.kiosk_id) if reason == "journal_restored"]
    assert len(reviews) == 1 and reviews[0]["loans_not_here"] == 1 and reviews[0]["events_not_here"] == 1
    doctor = kiosk.bookcorner("doctor", "--json").stdout
    assert "1 loan(s) (1 event(s)) were made after the backup" in doctor and "nothing newer" not in doctor
    assert loans_at_kiosk(kiosk, HONG) == {"I002"}
    # a second sync announces nothing again
    sync(kiosk)
    assert len([r for r, _d in open_reviews(server, kiosk.kiosk_id) if r == "journal_restored"]) == 1


def test_a_kiosk_re_imaged_and_paired_again_starts_a_journal_the_server_keeps_apart(server, corner, tmp_path):
    checkout(corner, MING, XIYOUJI)
    checkout(corner, HONG, HONGLOUMENG)
    sync(corner)
    first = set(journal_ids(corner.root))
    # a new SD card with the same configuration and credential: an empty journal numbered from 1 again
    for folder in ("journal", "state", "sync"):
        shutil.rmtree(corner.root / folder)
    checkout(corner, TEACHER_CARD, OLD_BOOK_ISBN)
    assert JournalReader(corner.root / "journal").last_seq() <= 2  # numbers the server has for other events
    sync(corner)
    ids = server_event_ids(server, corner.kiosk_id)
    assert set(ids) == first | set(journal_ids(corner.root)) and len(ids) == len(set(ids))
    assert {"I001", "I002", "I020"} <= set(server_loans(server))
    assert not open_reviews(server, corner.kiosk_id)  # nothing went back: a new journal is not a loss
    # the kiosk takes back the loans its old card made
    assert loans_at_kiosk(corner, MING) == {"I001"} and loans_at_kiosk(corner, TEACHER_CARD) == {"I020"}


def test_a_journal_copied_back_by_hand_loses_nothing_and_goes_on_as_a_new_incarnation(server, corner, tmp_path):
    checkout(corner, MING, XIYOUJI)
    sync(corner)
    copy = tmp_path / "copy"
    shutil.copytree(corner.root, copy)  # not a backup: the same incarnation, copied as files
    checkout(corner, HONG, HONGLOUMENG)
    checkout(corner, MING, SHUIHU)
    sync(corner)
    before = set(journal_ids(corner.root))
    shutil.rmtree(corner.root)
    shutil.copytree(copy, corner.root)
    checkout(corner, TEACHER_CARD, OLD_BOOK_ISBN)  # under a number the server has for Xiaohong's loan
    out = sync(corner)
    assert "acknowledged" in out
    ids = server_event_ids(server, corner.kiosk_id)
    assert set(ids) == before | set(journal_ids(corner.root)) and len(ids) == len(set(ids))
    assert server_loans(server)["I020"] == "T01"
    assert [reason for reason, _detail in open_reviews(server, corner.kiosk_id)] == ["journal_went_back"]
    # the kiosk (its refresh tick) takes up what the daemon found: a new incarnation, told to the librarian
    with CirculationDesk(corner.root, corner.kiosk_id, corner.clock) as desk:
        assert desk.follow_sync()
        assert desk.journal.incarnation.reason is incarnation.Reason.WENT_BACK
    checkout(corner, HONG, MAGAZINE)
    sync(corner)
    assert server_loans(server)["I040"] == "S02"
    assert loans_at_kiosk(corner, MING) == {"I001", "I003"} and loans_at_kiosk(corner, HONG) == {"I002", "I040"}
    doctor = corner.bookcorner("doctor", "--json").stdout
    assert "new journal identity" in doctor


def test_demo_reset_begins_a_new_incarnation(tmp_path):
    root = tmp_path / "demo"
    kiosk = TestKiosk.__new__(TestKiosk)  # only its command runner
    kiosk.config = tmp_path / "none.toml"
    kiosk.config.write_text("")
    assert kiosk.bookcorner("demo", "--data-dir", str(root), "--tour").returncode == 0
    first = incarnation.load(root / "journal")
    assert kiosk.bookcorner("demo", "--data-dir", str(root), "--reset", "--tour").returncode == 0
    second = incarnation.load(root / "journal")
    assert first is not None and second is not None and first.incarnation_id != second.incarnation_id
