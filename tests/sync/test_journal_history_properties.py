"""The daemon and the server together, over random histories of a kiosk whose journal goes
back in time at random points (restored from any earlier backup, files copied back by hand,
a re-imaged card, a lost sync position): no event is ever acknowledged without being stored,
no event is stored twice, and once the kiosk has synced its loans are the server's.

Real journals on disk, the real daemon over HTTP to a real server (SQLite), real backups."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.central.reference import document_from_reference, load_document
from bookcorner.kiosk.desk import CirculationDesk
from bookcorner.journal.journal import JournalReader
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.ops.backup import make_backup, restore_backup
from tests.central.harness import running_server
from tests.school import reference
from tests.sync.kiosk import TestKiosk, checkout, checkin

BOOKS = 4

step = st.one_of(
    st.tuples(st.just("record"), st.lists(st.tuples(st.booleans(), st.integers(0, BOOKS - 1)), min_size=1,
                                         max_size=4)),
    st.just(("sync",)),
    st.just(("backup",)),
    st.tuples(st.just("restore"), st.integers(0, 5)),
    st.just(("copy",)),
    st.tuples(st.just("copy_back"), st.integers(0, 5)),
    st.just(("re_image",)),
    st.just(("lose_position",)),
)


@pytest.fixture(scope="module")
def school_server(tmp_path_factory):
    """A server with the school's roster and catalogue (a kiosk pulls its loans only from one)."""
    with running_server("sqlite", tmp_path_factory.mktemp("history-server")) as server:
        load_document(server.store, document_from_reference(reference(), "Test school"))
        yield server


class History:
    def __init__(self, server, root: Path) -> None:
        self.server = server
        self.kiosk_id = "prop-" + uuid.uuid4().hex[:10]
        self.kiosk = TestKiosk(root / "card", self.kiosk_id, server.url, server.add_kiosk(self.kiosk_id))
        self.shelf = self.kiosk_id + "/"
        self.root = self.kiosk.root
        self.spare = root
        self.backups: list[Path] = []
        self.copies: list[Path] = []
        #: every event id a successful round acknowledged, through every journal the kiosk had
        self.acknowledged: set[str] = set()

    def journal_ids(self) -> list[str]:
        return [e.event_id for e in JournalReader(self.root / "journal").events_after(0)]

    def server_ids(self) -> list[str]:
        with self.server.store.reading() as conn:
            return list(conn.execute(select(db.events.c.event_id).where(db.events.c.kiosk_id == self.kiosk_id))
                        .scalars())

    def do(self, action: tuple) -> None:
        getattr(self, action[0])(*action[1:])

    def record(self, moves: list[tuple[bool, int]]) -> None:
        self.kiosk.record([(checkout if lend else checkin)(book, shelf=self.shelf) for lend, book in moves])

    def sync(self) -> None:
        result = self.kiosk.daemon().run_round()
        assert result.ok, result.error
        # as the kiosk's refresh tick does: take up what the daemon found about the journal
        with CirculationDesk(self.root, self.kiosk_id, self.kiosk.clock) as desk:
            desk.follow_sync()
        stored = self.server_ids()
        assert len(stored) == len(set(stored)), "an event stored twice"
        assert self.acknowledged <= set(stored), "an acknowledged event is not on the server"
        mine = set(self.journal_ids())
        assert mine <= set(stored), "a round ended with events of the journal not on the server"
        self.acknowledged |= mine

    def backup(self) -> None:
        archive = self.spare / f"backup-{len(self.backups)}.tar.gz"
        make_backup(self.root, archive)
        self.backups.append(archive)

    def _wipe(self) -> None:
        for folder in ("journal", "state", "sync", "reference"):
            shutil.rmtree(self.root / folder, ignore_errors=True)

    def restore(self, which: int) -> None:
        if self.backups:
            self._wipe()
            restore_backup(self.backups[which % len(self.backups)], self.root)

    def copy(self) -> None:
        target = self.spare / f"copy-{len(self.copies)}"
        shutil.copytree(self.root, target)
        self.copies.append(target)

    def copy_back(self, which: int) -> None:
        if self.copies:
            shutil.rmtree(self.root)
            shutil.copytree(self.copies[which % len(self.copies)], self.root)

    def re_image(self) -> None:
        self._wipe()
        ReferenceStore(self.root / "reference").save(reference(), "test-1", "Test school")

    def lose_position(self) -> None:
        for name in ("position.db", "position.db.prev"):
            (self.root / "sync" / name).unlink(missing_ok=True)

    def server_loans(self) -> dict[str, str]:
        with self.server.store.reading() as conn:
            return dict(conn.execute(select(db.item_state.c.item_id, db.item_state.c.patron_id).where(
                db.item_state.c.loan_id.is_not(None), db.item_state.c.item_id.startswith(self.shelf))).all())

    def kiosk_loans(self) -> dict[str, str]:
        with CirculationDesk(self.root, self.kiosk_id, self.kiosk.clock) as desk:
            return {item: loan.patron_id for item, loan in desk.state.loans.items() if item.startswith(self.shelf)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=3, max_size=12))
def test_no_event_is_acknowledged_unstored_or_stored_twice_whatever_the_journal_goes_through(
        school_server, tmp_path_factory, steps):
    history = History(school_server, tmp_path_factory.mktemp("history"))
    for action in steps:
        history.do(action)
    # at the end of the day the kiosk reaches the server (twice: a journal found behind the
    # server goes on as a new incarnation, which the second round pushes)
    history.sync()
    history.sync()
    assert history.kiosk_loans() == history.server_loans(), steps
    with school_server.store.reading() as conn:
        distinct = conn.execute(select(func.count(func.distinct(db.events.c.event_id)))
                                .where(db.events.c.kiosk_id == history.kiosk_id)).scalar_one()
    assert distinct == len(history.server_ids())
