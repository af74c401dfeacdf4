"""A kiosk tells the server how many events it still holds, and the librarian's end of
day believes it: the real daemon against the real server (SQLite, and PostgreSQL when it
runs), read back through the dashboard as a librarian sees it."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.sync.position import save_position
from tests.central.dashboard_client import Librarian
from tests.sync.kiosk import TestKiosk

CORNER = re.compile(r'<tr class="corner (\w+)" data-kiosk="([^"]+)">(.*?)</tr>', re.S)


def reported(central, kiosk_id: str) -> tuple:
    with central.store.reading() as conn:
        return conn.execute(select(db.kiosks.c.waiting_events, db.kiosks.c.waiting_reported_at)
                            .where(db.kiosks.c.kiosk_id == kiosk_id)).one()


def corner_row(client: Librarian, kiosk_id: str) -> tuple[str, str]:
    page = client.get("/end-of-day").text
    rows = {k: (state, cells) for state, k, cells in CORNER.findall(page)}
    return rows[kiosk_id]


def test_the_end_of_day_shows_what_a_kiosk_still_holds_until_it_is_all_in(central, kiosk_id, tmp_path, monkeypatch):
    kiosk = TestKiosk(tmp_path, kiosk_id, central.url, central.add_kiosk(kiosk_id))
    name = "Ms Qian " + uuid.uuid4().hex[:4]
    librarian = Librarian(central.url)
    assert librarian.sign_in(name, central.add_librarian(name)).status_code == 303
    kiosk.record(kiosk.loans_and_returns(0, 125))  # 250 events: batches of 100
    import sync.daemon

    def cut_after_first_batch(sync_dir, position):
        if position.acked_seq == 100:  # the first batch is in: the kiosk goes off the network
            raise KeyboardInterrupt
        save_position(sync_dir, position)

    monkeypatch.setattr(sync.daemon, "save_position", cut_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        kiosk.daemon().run_round()
    monkeypatch.undo()
    waiting, at = reported(central, kiosk_id)
    assert waiting == 150 and at is not None  # reported with the first batch: 250 held, 100 of them sent
    state, cells = corner_row(librarian, kiosk_id)
    assert state == "missing" and "events still waiting on the kiosk" in cells
    assert '<td class="waiting">150 <small>' in cells

    kiosk.record(kiosk.loans_and_returns(125, 5))  # and the kiosk lends on meanwhile
    assert kiosk.syncd_once().returncode == 0  # the daemon as the kiosk runs it
    waiting, later = reported(central, kiosk_id)
    assert waiting == 0 and later > at
    state, cells = corner_row(librarian, kiosk_id)
    assert state == "ok" and '<td class="waiting">0 <small>' in cells
