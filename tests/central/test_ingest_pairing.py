"""The server pairs each new event of a push with the time the clock gave it: a pairing that
comes up short refuses the whole batch (the kiosk sends it again) instead of storing part of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bookcorner.central import db, ingest
from bookcorner.central.kiosks import add_kiosk
from tests.central.pushes import KioskClient, checkout


def _batch(kiosk: KioskClient) -> ingest.Batch:
    events = [kiosk.event(*checkout(f"B{n}", "S01")) for n in range(1, 4)]
    request = kiosk.request(events)
    return ingest.Batch(request.kiosk_id, request.batch_id, request.from_seq, request.to_seq, request.clock,
                        request.events)


def _stored(store: db.Store) -> tuple[int, int]:
    with store.reading() as conn:
        return (conn.execute(select(func.count()).select_from(db.events)).scalar_one(),
                conn.execute(select(func.count()).select_from(db.batches)).scalar_one())


def test_a_batch_the_clock_times_only_in_part_is_refused_whole(tmp_path, monkeypatch):
    store = db.Store(f"sqlite:///{tmp_path / 'central.db'}")
    store.migrate()
    kiosk = KioskClient("", "K1", add_kiosk(store, "K1"))
    batch = _batch(kiosk)
    retime = ingest.retime
    monkeypatch.setattr(ingest, "retime", lambda stamps, **kw: retime(stamps, **kw)[:-1])

    with pytest.raises(ValueError, match="zip"):
        ingest.ingest(store, batch, datetime.now(UTC))
    assert _stored(store) == (0, 0)

    monkeypatch.undo()
    reply = ingest.ingest(store, batch, datetime.now(UTC))
    assert reply.applied_seq == 3
    assert _stored(store) == (3, 1)
