"""The school's reference data on the server, and the deltas kiosks pull.

Every row carries the ``revision`` of the transaction that last changed it, so "what
changed since cursor N" is one indexed query per table; removed rows stay as tombstones
to be told. Loans and item statuses come from replay (``item_state``), the roster,
cards and catalogue from what the librarian loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from bookcorner.central import db, zone
from bookcorner.central.ingest import next_revision, upsert
from bookcorner.protocol.messages import (
    CalendarRecord,
    CardRecord,
    HolidayLoanRecord,
    ItemRecord,
    LoanRecord,
    PatronRecord,
    PolicyRecord,
    ReadingRecord,
    ReferenceDelta,
    ReferenceDocument,
    RoleRules,
    RuleCell,
    TimetableRecord,
)

_SETTINGS = {"policy": PolicyRecord, "calendar": CalendarRecord, "timetable": TimetableRecord,
             "reading": ReadingRecord}


def _text(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


def load_document(store: db.Store, document: ReferenceDocument) -> dict[str, int]:
    """Make the server's reference data what ``document`` says (records it lacks are removed)."""
    counts: dict[str, int] = {}
    with store.writing() as conn:
        rev = next_revision(conn)
        for name, table, key, records in (
            ("patrons", db.patrons, "patron_id", document.patrons),
            ("cards", db.cards, "card_id", document.cards),
            ("items", db.catalogue, "item_id", document.items),
        ):
            changed, removed, status_changed = _replace(conn, table, key, records, rev)
            counts[name], counts[f"{name}_removed"] = changed, removed
            if status_changed:  # the librarian's word on an item's status overrides replay's
                for start in range(0, len(status_changed), 900):
                    conn.execute(update(db.item_state).where(db.item_state.c.item_id.in_(status_changed[start:start + 900]))
                                 .values(status=None, rev=rev))
        wanted = {"school": document.school, "policy": document.policy, "calendar": document.calendar,
                  "timetable": document.timetable}
        current = {row.name: row.data for row in conn.execute(select(db.settings.c.name, db.settings.c.data))}
        rows = [{"name": name, "data": _text(value), "rev": rev} for name, value in wanted.items()
                if value is not None and current.get(name) != _text(value)]
        if rows:
            upsert(conn, db.settings, ["name"], rows)
        counts["settings"] = len(rows)
    return counts


def _replace(conn: Connection, table, key: str, records: Sequence[msgspec.Struct], rev: int):
    column = table.c[key]
    current = {row[0]: (row.data, row.removed) for row in conn.execute(select(column, table.c.data, table.c.removed))}
    rows, status_changed = [], []
    seen = set()
    for record in records:
        ident = getattr(record, key)
        seen.add(ident)
        text = _text(record)
        before = current.get(ident)
        if before is not None and before == (text, False):
            continue
        row = {key: ident, "data": text, "rev": rev, "removed": False}
        if table is db.cards:
            row["patron_id"] = record.patron_id  # type: ignore[attr-defined]
        if table is db.catalogue and before is not None:
            old = msgspec.json.decode(before[0])
            if old.get("status", "available") != record.status:  # type: ignore[attr-defined]
                status_changed.append(ident)
        rows.append(row)
    if rows:
        upsert(conn, table, [key], rows)
    gone = [ident for ident, (_data, removed) in current.items() if ident not in seen and not removed]
    for start in range(0, len(gone), 900):
        conn.execute(update(table).where(column.in_(gone[start:start + 900])).values(removed=True, rev=rev))
    return len(rows), len(gone), status_changed


def delta(store: db.Store, kiosk_id: str, since: int = 0, epoch: str | None = None,
          incarnation: str | None = None) -> ReferenceDelta:
    """Everything a kiosk needs to bring its snapshot from ``since`` to now (all of it
    when ``since`` is 0 or from another database). ``applied_seq`` counts in the journal
    incarnation the kiosk names when the server knows it, else in the one the server
    followed last (the delta says which: the kiosk counts a snapshot of another
    incarnation as reflecting none of its own journal's events)."""
    with store.reading() as conn:
        out, base = _delta_head(conn, kiosk_id, since, epoch, incarnation)
        school = conn.execute(select(db.settings.c.data).where(db.settings.c.name == "school")).scalar()
        roster = school is not None or conn.execute(select(db.patrons.c.patron_id).limit(1)).first() is not None
        if not roster and not any(conn.execute(select(table.c[0]).limit(1)).first()
                                  for table in (db.cards, db.catalogue)):
            return out  # no reference data at all: the kiosk keeps what it has, nothing to compute
        out.school, out.has_reference = msgspec.json.decode(school) if school else "", roster
        _delta_people(conn, out, base)
        _delta_settings(conn, out, base)
        state_rows = {row.item_id: row for row in conn.execute(select(db.item_state).where(db.item_state.c.rev > base))}
        _delta_items(conn, out, base, state_rows)
        _delta_loans(conn, out, state_rows)
    return out


def _delta_head(conn: Connection, kiosk_id: str, since: int, epoch: str | None,
                incarnation: str | None) -> tuple[ReferenceDelta, int]:
    """The delta's frame (epoch, cursor, whether it is full, the kiosk's high-water mark in
    the incarnation it counts in) and the revision it starts after (0: everything)."""
    this_epoch = conn.execute(select(db.meta.c.value).where(db.meta.c.key == "epoch")).scalar_one()
    cursor = conn.execute(select(db.revision.c.rev).where(db.revision.c.id == 1)).scalar_one()
    full = since <= 0 or epoch != this_epoch or since > cursor
    applied, current = conn.execute(select(db.kiosks.c.applied_seq, db.kiosks.c.incarnation)
                                    .where(db.kiosks.c.kiosk_id == kiosk_id)).one()
    if incarnation is not None and incarnation != current:
        j = db.journals.c
        other = conn.execute(select(j.applied_seq).where(j.kiosk_id == kiosk_id, j.incarnation == incarnation)
                             ).scalar()
        if other is not None:
            applied, current = other, incarnation
    out = ReferenceDelta(epoch=this_epoch, cursor=cursor, full=full, kiosk_id=kiosk_id, applied_seq=applied,
                         has_reference=False, incarnation=current, timezone=zone.school_zone_name(conn))
    return out, 0 if full else since


def _delta_people(conn: Connection, out: ReferenceDelta, base: int) -> None:
    """Patrons and cards changed after ``base`` (and, in a partial delta, those removed)."""
    kind: Any  # each table's own record type
    for table, key, kind, kept, gone in (
        (db.patrons, "patron_id", PatronRecord, out.patrons, out.patrons_removed),
        (db.cards, "card_id", CardRecord, out.cards, out.cards_removed),
    ):
        for row in conn.execute(select(table.c[key], table.c.data, table.c.removed).where(table.c.rev > base)):
            if row.removed:
                if not out.full:
                    gone.append(row[0])
            else:
                kept.append(msgspec.json.decode(row.data, type=kind))


def _delta_settings(conn: Connection, out: ReferenceDelta, base: int) -> None:
    for row in conn.execute(select(db.settings).where(db.settings.c.rev > base)):
        if row.name not in _SETTINGS:  # the school's name, its time zone
            continue
        setattr(out, row.name, msgspec.json.decode(row.data, type=_SETTINGS[row.name]))


def _delta_items(conn: Connection, out: ReferenceDelta, base: int, state_rows: dict[str, Any]) -> None:
    """Books whose record or state changed after ``base``, each with its current status."""
    item_ids = set(state_rows)
    catalogue = {row.item_id: row for row in conn.execute(
        select(db.catalogue.c.item_id, db.catalogue.c.data, db.catalogue.c.removed).where(db.catalogue.c.rev > base))}
    missing = sorted(item_ids - set(catalogue))
    for start in range(0, len(missing), 900):
        for row in conn.execute(select(db.catalogue.c.item_id, db.catalogue.c.data, db.catalogue.c.removed)
                                .where(db.catalogue.c.item_id.in_(missing[start:start + 900]))):
            catalogue[row.item_id] = row
    statuses = {row.item_id: row.status for row in state_rows.values()}
    unchanged_state = sorted(set(catalogue) - item_ids)
    for start in range(0, len(unchanged_state), 900):
        for state in conn.execute(select(db.item_state.c.item_id, db.item_state.c.status)
                                  .where(db.item_state.c.item_id.in_(unchanged_state[start:start + 900]))):
            statuses[state.item_id] = state.status
    for item_id, row in catalogue.items():
        if row.removed:
            if not out.full:
                out.items_removed.append(item_id)
            continue
        item = msgspec.json.decode(row.data, type=ItemRecord)
        if statuses.get(item_id):
            item.status = statuses[item_id]
        out.items.append(item)


def _delta_loans(conn: Connection, out: ReferenceDelta, state_rows: dict[str, Any]) -> None:
    """The loans: every open one in a full delta; else those changed, and the books returned."""
    loans = state_rows.values() if not out.full else conn.execute(
        select(db.item_state).where(db.item_state.c.loan_id.is_not(None)))
    for row in loans:
        if row.loan_id is not None:
            out.loans.append(LoanRecord(row.loan_id, row.item_id, row.patron_id, row.due,
                                        row.since.isoformat(timespec="milliseconds"), row.renewals))
        elif not out.full:
            out.loans_closed.append(row.item_id)


def document_from_reference(reference: Any, school: str = "") -> ReferenceDocument:
    """A circulation ``Reference`` (the demo school's, a test's) as a document to load."""
    b = msgspec.to_builtins

    def convert(value: Any, kind: type) -> Any:
        return msgspec.convert(b(value), kind, strict=False)

    calendar = b(reference.calendar)
    calendar["holiday_loans"] = [b(HolidayLoanRecord(h.name, h.checkout_from, h.checkout_until, h.due))
                                 for h in reference.calendar.holiday_loans]  # the wire's names
    for name in ("closed_weekdays", "closed_dates", "open_dates"):
        calendar[name] = sorted(calendar[name])
    return ReferenceDocument(
        school=school,
        patrons=[convert(p, PatronRecord) for p in reference.patrons.values()],
        cards=[convert(c, CardRecord) for c in reference.cards.values()],
        items=[convert(i, ItemRecord) for i in reference.items.values()],
        policy=policy_record(reference.policy),
        calendar=msgspec.convert(calendar, CalendarRecord, strict=False),
        timetable=convert(reference.timetable, TimetableRecord),
    )


def policy_record(policy: Any) -> PolicyRecord:
    """A circulation ``Policy`` (the defaults, a school's) as the record kiosks pull."""
    return PolicyRecord(
        roles={str(role): msgspec.convert(msgspec.to_builtins(rule), RoleRules, strict=False)
               for role, rule in policy.roles.items()},
        rules=[RuleCell(role=str(role), item_type=str(kind), **msgspec.to_builtins(rule))
               for (role, kind), rule in policy.rules.items()],
    )
