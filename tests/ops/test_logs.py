"""No child's name in any log: the demo school's children use the kiosk's screen (cards
tapped, books lent and brought back), the sync daemon ships the events to a real central
server and pulls the roster back, and every log line the kiosk, the daemon and the server
wrote on the way (at their most talkative) is searched for the demo school's names and
the cards tapped. docs/operations.md says what may be logged."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bookcorner.circulation.model import ItemType, PatronStatus, Role
from bookcorner.demo.school import build_demo_school
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import JournalReader
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import DataPaths
from tests.central.harness import CentralServer
from tests.kiosk.ui.conftest import Ticker, make_app, scan, settings, started, tap
from tests.logs import Lines

ROOT = Path(__file__).resolve().parents[2]
#: a Monday in term, at the first lunch slot
MONDAY = datetime(2026, 11, 23, 12, 5, tzinfo=ZoneInfo("Asia/Shanghai"))


async def visits(data_dir: Path, school, children: list[tuple[str, str]]) -> None:
    """Each child taps their card and borrows a book."""
    books = [item for item in school.items if item.item_type is ItemType.CIRCULATING and item.barcode][:len(children)]
    app = make_app(data_dir, clock=FixedClock(MONDAY, synced=True), ticker=Ticker(), config_=settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        for (card, _name), book in zip(children, books):
            await tap(pilot, card)
            await scan(pilot, book.barcode)


def test_no_name_or_card_in_the_logs_of_a_day_at_the_corner(tmp_path):
    school = build_demo_school(MONDAY.date())
    active = [patron for patron in school.patrons if patron.role is Role.STUDENT
              and patron.status is PatronStatus.ACTIVE]
    card_of = {card.patron_id: card.card_id for card in school.cards}
    children = [(card_of[patron.patron_id], patron.name) for patron in active[:6] if patron.patron_id in card_of]
    data_dir = tmp_path / "kiosk"
    ReferenceStore(DataPaths(data_dir).reference).save(school.reference(), "demo-1", school.name)

    kiosk_log = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(kiosk_log)
    root.setLevel(logging.DEBUG)
    try:
        asyncio.run(visits(data_dir, school, children))
    finally:
        root.removeHandler(kiosk_log)
        root.setLevel(level)
    recorded = list(JournalReader(data_dir / "journal").events_after(0))
    assert len(recorded) == len(children), "the children's loans were not recorded"

    server = CentralServer(f"sqlite:///{tmp_path / 'central.db'}", tmp_path / "server.log",
                           "--log-level", "debug").start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
        loaded = subprocess.run([sys.executable, "-m", "bookcorner", "central", "load-reference", "--demo", "--db",
                                 server.db_url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        credential = tmp_path / "credential"
        credential.write_text(server.add_kiosk("demo-corner") + "\n")
        os.chmod(credential, 0o600)
        config = tmp_path / "kiosk.toml"
        config.write_text(f'[kiosk]\nid = "demo-corner"\ndata_dir = "{data_dir}"\n'
                          f'[sync]\nserver_url = "{server.url}"\ncredential_file = "{credential}"\n')
        synced = subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(config), "syncd", "--once",
                                 "--verbose"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert synced.returncode == 0, synced.stderr
    finally:
        server.stop()
    daemon_log = synced.stderr.splitlines()
    server_log = (tmp_path / "server.log").read_text().splitlines()
    assert any("acknowledged" in line for line in daemon_log), daemon_log  # it did log the batches, by number

    names = {patron.name for patron in school.patrons}
    cards = {card for card, _name in children}
    for where, lines in (("kiosk", kiosk_log.lines), ("sync daemon", daemon_log), ("server", server_log)):
        assert lines, f"the {where} logged nothing: this test would prove nothing"
        leaks = [line for line in lines if any(name in line for name in names) or any(card in line for card in cards)]
        assert not leaks, f"the {where} logged personal data: {leaks[:3]}"
