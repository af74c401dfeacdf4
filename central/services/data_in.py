"""Data in: the librarian loads a roster or a catalogue from a file, sees what it would
change, then confirms all of it or cancels.

An upload is read at once (``central.reference_files``) and staged in ``staged_imports``;
nothing changes until its preview is confirmed. A file with any wrong row cannot be
confirmed (no half imports: fix the file and upload it again). Confirming writes every row
in one transaction under one new reference revision, the way kiosks pull changes, with an
audit record; it adds and updates, never removes. A roster's card column gives each
student an active card in that same transaction and revision. A staged import belongs to the librarian
who uploaded it (the one who checked its preview is the one who confirms it) and is
forgotten after a day.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.central.ingest import next_revision, upsert
from bookcorner.central.reference_files import (
    CATALOGUE,
    KINDS,
    ROSTER,
    Preview,
    Problem,
    compare,
    read,
)
from bookcorner.central.services.notices import write_class_teachers
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord

KEPT_FOR = timedelta(days=1)
_TABLES = {ROSTER: (db.patrons, "patron_id", PatronRecord), CATALOGUE: (db.catalogue, "item_id", ItemRecord)}


class Staged(msgspec.Struct):
    """What an upload was read into, as kept until it is confirmed or cancelled."""

    rows: list[tuple[int, dict[str, Any]]]
    problems: list[Problem]
    ignored: list[str]
    #: rows (MARC: records) in the file
    read: int


class Refused(Exception):
    """Confirming is refused (the reason is a code)."""


# --- the database side ----------------------------------------------------------------------------


def stage(store: db.Store, who: str, kind: str, filename: str, staged: Staged) -> str:
    """Keep a read upload for its preview (and forget those older than a day)."""
    token = secrets.token_urlsafe(24)
    at = db.now()
    with store.writing() as conn:
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.created_at < at - KEPT_FOR))
        conn.execute(db.staged_imports.insert().values(token=token, who=who, kind=kind, filename=filename[:255],
                                                       data=msgspec.json.encode(staged), created_at=at))
    return token


def _staged_row(conn, token: str):
    row = conn.execute(select(db.staged_imports).where(db.staged_imports.c.token == token[:64],
                                                       db.staged_imports.c.kind.in_(KINDS))).first()
    if row is None or row.created_at < db.now() - KEPT_FOR:
        return None
    return row


def _current(conn, kind: str) -> dict[str, dict[str, Any]]:
    """The live records (not removed) of the roster or the catalogue, by id."""
    table, key, _record = _TABLES[kind]
    return {row[0]: json.loads(row.data) for row in
            conn.execute(select(table.c[key], table.c.data).where(table.c.removed.is_(False)))}


def _cards(conn, kind: str) -> dict[str, dict[str, Any]]:
    """The live cards by id, for a roster (whose card column they are checked against)."""
    if kind != ROSTER:
        return {}
    c = db.cards.c
    return {row.card_id: json.loads(row.data) for row in
            conn.execute(select(c.card_id, c.data).where(c.removed.is_(False)))}


def _teachers(conn, kind: str) -> dict[str, tuple[str, str]]:
    """Each class's (teacher's name, address), for a roster (its teacher e-mail column)."""
    if kind != ROSTER:
        return {}
    t = db.class_teachers.c
    return {row.class_name: (row.teacher_name or "", row.email)
            for row in conn.execute(select(t.class_name, t.teacher_name, t.email))}


def _compare(conn, kind: str, staged: Staged) -> Preview:
    return compare(kind, staged.rows, _current(conn, kind), _cards(conn, kind), _teachers(conn, kind))


def preview(store: db.Store, token: str) -> tuple[Any, Staged, Preview] | None:
    """The staged upload, what it holds and what it would change now (None: not waiting)."""
    with store.reading() as conn:
        row = _staged_row(conn, token)
        if row is None:
            return None
        staged = msgspec.json.decode(row.data, type=Staged)
        return row, staged, _compare(conn, row.kind, staged)


def waiting(store: db.Store) -> Sequence[Any]:
    with store.reading() as conn:
        return conn.execute(select(db.staged_imports.c.token, db.staged_imports.c.who, db.staged_imports.c.kind,
                                   db.staged_imports.c.filename, db.staged_imports.c.created_at)
                            .where(db.staged_imports.c.created_at >= db.now() - KEPT_FOR,
                                   db.staged_imports.c.kind.in_(KINDS))  # not the reading lists' uploads
                            .order_by(db.staged_imports.c.created_at.desc())).all()


def recent(store: db.Store, limit: int = 20) -> list[Any]:
    """The imports confirmed lately, from the audit log."""
    a = db.audit_log.c
    with store.reading() as conn:
        rows = conn.execute(select(a.at, a.who, a.action, a.target, a.detail)
                            .where(a.action.in_([f"import.{kind}" for kind in KINDS]))
                            .order_by(a.audit_id.desc()).limit(limit)).all()
    return [(row, json.loads(row.detail)) for row in rows]


def _own_staged(conn: Connection, token: str, who: str) -> Any:
    """The staged upload ``token``, which only the librarian who uploaded it may confirm or cancel."""
    row = _staged_row(conn, token)
    if row is None:
        raise Refused("gone")
    if row.who != who:
        raise Refused("not_yours")
    return row


def confirm(store: db.Store, token: str, who: str, duplicates_checked: bool) -> dict[str, Any]:
    """Apply a staged upload, all of it in one transaction: every added or changed record
    and every card given under one new revision (what kiosks pull next), an audit record,
    the staged row gone."""
    with store.writing() as conn:
        row = _own_staged(conn, token, who)
        staged = msgspec.json.decode(row.data, type=Staged)
        found = _compare(conn, row.kind, staged)
        if staged.problems or found.problems:
            raise Refused("errors")
        if found.duplicates and not duplicates_checked:
            raise Refused("duplicates")
        table, key, record_type = _TABLES[row.kind]
        rev = next_revision(conn) if found.records or found.cards else None
        if found.records:
            upsert(conn, table, [key], [
                {key: record[key], "data": msgspec.json.encode(msgspec.convert(record, record_type)).decode("utf-8"),
                 "rev": rev, "removed": False} for record in found.records])
        if found.cards:
            upsert(conn, db.cards, ["card_id"], [
                {"card_id": card.card_id, "patron_id": card.patron_id,
                 "data": msgspec.json.encode(CardRecord(card.card_id, card.patron_id)).decode("utf-8"),
                 "rev": rev, "removed": False} for card in found.cards])
        detail = {"kind": row.kind, "rows": staged.read, "added": len(found.added),
                  "changed": len(found.changed), "unchanged": found.unchanged,
                  "possible_duplicates": len(found.duplicates)}
        if found.cards:
            detail["cards_given"] = {card.card_id: card.patron_id for card in found.cards}
        if found.teachers:  # the server's own (no revision: kiosks never get an address)
            write_class_teachers(conn, who, {t.class_name: (t.teacher_name, t.email) for t in found.teachers},
                                 db.now())
            detail["teacher_emails"] = {t.class_name: t.email for t in found.teachers}
        conn.execute(db.audit_log.insert().values(at=db.now(), who=who, action=f"import.{row.kind}",
                                                  target=row.filename[:120],
                                                  detail=json.dumps(detail, ensure_ascii=False)))
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.token == row.token))
    return detail


def cancel(store: db.Store, token: str, who: str) -> None:
    with store.writing() as conn:
        row = _own_staged(conn, token, who)
        conn.execute(delete(db.staged_imports).where(db.staged_imports.c.token == row.token))


def read_upload(kind: str, filename: str, data: bytes) -> Staged:
    reading = read(kind, filename, data)
    return Staged(reading.rows, reading.problems, reading.ignored, reading.read)
