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

An event replay kept for review is not applied, so not in the outbox; when the librarian's
Accept or Correct applies it later (``central.services.reviews``), ``enqueue_decided`` puts it
in, from the same row builder, in the transaction of the decision: its place in line is then
the order it was applied in.

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


#: built once: every batch asks (building it cost about as much as running it)
_SWITCH = select(db.meta.c.value).where(db.meta.c.key == SETTINGS_KEY)


def bridge_on(conn: Connection) -> bool:
    text = conn.execute(_SWITCH).scalar()
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


def loan_entry(event_id: str, kiosk_id: str, done_at: datetime | str, payload: Any,
               created: datetime) -> dict[str, Any] | None:
    """The outbox row for one applied event (its decoded payload), or None when it is not a
    checkout, return or renewal."""
    row = {"event_id": event_id, "kiosk_id": kiosk_id, "done_at": _aware(done_at), "status": WAITING,
           "attempts": 0, "created_at": created}
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


def entry(event: dict[str, Any], created: datetime) -> dict[str, Any] | None:
    """The outbox row for one stored event (a dict of ``db.events``' columns), or None when it
    is not an applied checkout, return or renewal."""
    if event["outcome"] not in APPLIED:
        return None
    return loan_entry(event["event_id"], event["kiosk_id"], event["time"],
                      decode_json_or_raw(event["type"], event["payload"]), created)


def _put(conn: Connection, found: Sequence[dict[str, Any]]) -> int:
    if found:
        conn.execute(db.sip2_outbox.insert(), list(found))
    return len(found)


def enqueue(conn: Connection, rows: Sequence[tuple], created: datetime) -> int:
    """Put the applied checkouts, returns and renewals among ``rows`` (tuples in the order of
    ``db.events``' columns, in replay order) in the outbox, when the bridge is on. How many."""
    if not rows or not bridge_on(conn):
        return 0
    names = list(db.events.c.keys())
    return _put(conn, [e for e in (entry(dict(zip(names, row, strict=True)), created) for row in rows)
                       if e is not None])


def enqueue_decided(conn: Connection, event: Any, payload: Any, created: datetime) -> int:
    """A loan the review queue made real: an event replay kept for review (so never in the
    outbox) that the librarian's Accept or Correct has now applied, with ``payload`` as it
    applied (a correction's book or student). Put in the outbox as ingest puts a clean
    event, in the transaction that applies it, when the bridge is on; its place in line is
    the order it was applied in (after the loans applied before the decision). An event
    ingest applied already (a due date from a wrong clock, a refusal of the other system)
    is not put in again. ``event``: its row in ``db.events``. How many (0 or 1)."""
    if event.outcome in APPLIED or not bridge_on(conn):
        return 0
    o = db.sip2_outbox.c
    if conn.execute(select(o.outbox_id).where(o.event_id == event.event_id)).first() is not None:
        return 0
    found = loan_entry(event.event_id, event.kiosk_id, event.time, payload, created)
    if found is not None and found["card_id"] is not None:
        holder = conn.execute(select(db.cards.c.patron_id).where(db.cards.c.card_id == found["card_id"])).scalar()
        if holder != found["patron_id"]:
            found["card_id"] = None  # corrected to another student: that student's own card goes, not the one read
    return _put(conn, [found] if found is not None else [])
