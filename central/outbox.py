"""Filling the replay bridge's outbox (``db.sip2_outbox``), in ingest's own transaction.

A hook rather than a poller: ingest calls ``enqueue`` with the event rows it is about to
store, in the order replay applied them, inside the write transaction that applies them.
So an event is in the outbox if and only if it was applied (one commit for both), and for
each book the outbox's autoincrement id is the order replay applied its events in, across
kiosks and SIP2 accounts alike: a batch holds the lock of every book it changes from
before it reads the book's state to its commit (``db.Store.ingesting``), so a later batch
about the same book takes its ids only after the earlier one committed. Between books the
order does not matter to the other system; on PostgreSQL two kiosks' batches about other
books may commit in the other order than their ids (on SQLite, one batch at a time, ids
are the commit order), and the sender takes the lowest id it sees waiting. A poller by
high-water mark would need an order key the events table does not have (its rows carry
the corrected time, not the order of application) and could miss a batch committed under
a lower mark.

Only while the bridge is switched on (``central.services.bridge``): a school that never
uses it keeps no outbox, and switching it on starts from the next loan, not the past year.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.circulation.events import Checkin, Checkout, Renewal, decode_json_or_raw
from bookcorner.circulation.outcomes import Outcome

#: the bridge's settings in ``meta`` (server-side only: kiosks pull ``settings``, never ``meta``)
SETTINGS_KEY = "sip2.bridge"
APPLIED = (Outcome.APPLIED.value, Outcome.APPLIED_WITH_WARNING.value)
WAITING = "waiting"


class _Switch(msgspec.Struct):
    enabled: bool = False


def bridge_on(conn: Connection) -> bool:
    text = conn.execute(select(db.meta.c.value).where(db.meta.c.key == SETTINGS_KEY)).scalar()
    if not text:
        return False
    try:
        return msgspec.json.decode(text, type=_Switch).enabled
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


def _aware(value: datetime | str) -> datetime:
    """An event's time as ``db.time_param`` gave it to the driver (SQLite: naive UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def entry(event: dict[str, Any], created: datetime) -> dict[str, Any] | None:
    """The outbox row for one stored event (a dict of ``db.events``' columns), or None when it
    is not an applied checkout, return or renewal."""
    if event["outcome"] not in APPLIED:
        return None
    payload = decode_json_or_raw(event["type"], event["payload"])
    row = {"event_id": event["event_id"], "kiosk_id": event["kiosk_id"], "done_at": _aware(event["time"]),
           "status": WAITING, "attempts": 0, "created_at": created}
    if isinstance(payload, Checkout):
        return {**row, "kind": "checkout", "item_id": payload.item_id, "patron_id": payload.patron_id,
                "card_id": payload.card_id, "due": payload.due}
    if isinstance(payload, Checkin):
        return {**row, "kind": "checkin", "item_id": payload.item_id, "patron_id": payload.patron_id,
                "card_id": None, "due": None}
    if isinstance(payload, Renewal):
        return {**row, "kind": "renewal", "item_id": payload.item_id, "patron_id": payload.patron_id,
                "card_id": None, "due": payload.due}
    return None


def enqueue(conn: Connection, rows: Sequence[tuple], created: datetime) -> int:
    """Put the applied checkouts, returns and renewals among ``rows`` (tuples in the order of
    ``db.events``' columns, in replay order) in the outbox, when the bridge is on. How many."""
    if not rows or not bridge_on(conn):
        return 0
    names = list(db.events.c.keys())
    found = [e for e in (entry(dict(zip(names, row, strict=True)), created) for row in rows) if e is not None]
    if found:
        conn.execute(db.sip2_outbox.insert(), found)
    return len(found)
