"""Bringing the kiosk's reference snapshot up to date from a server delta.

The snapshot's version names the server database and cursor it came from
(``<epoch>:<cursor>``), so the next pull asks for what changed since exactly that; a
snapshot from elsewhere (the demo loader, another server) is replaced by a full pull.
The merge goes through the snapshot's own table form and loader, so a delta that would
make an invalid reference is refused before anything is written, and the new version
replaces the old one whole (the kiosk picks it up with ``refresh_reference()``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from bookcorner.circulation.reference import Reference, build_reference
from bookcorner.journal.snapshot import reference_from_tables, reference_to_tables
from bookcorner.protocol.messages import ReferenceDelta


def version_of(epoch: str, cursor: int) -> str:
    return f"{epoch}:{cursor}"


def parse_version(version: str | None) -> tuple[str, int] | None:
    if not version or version.count(":") != 1:
        return None
    epoch, cursor = version.split(":")
    return (epoch, int(cursor)) if cursor.isdigit() and epoch.isalnum() else None


def _apply(table: dict[str, Any], upserts: list[Any], key: str, removed: list[str]) -> None:
    for record in upserts:
        data = msgspec.to_builtins(record)
        table[data[key]] = data
    for ident in removed:
        table.pop(ident, None)


def merge(current: Reference | None, delta: ReferenceDelta) -> Reference:
    """The reference after the delta (``current`` is ignored when the delta is full)."""
    base = current if current is not None and not delta.full else build_reference((), (), ())
    tables = reference_to_tables(base, version_of(delta.epoch, delta.cursor), delta.school)
    # fill in the defaults a protocol record leaves out, as the snapshot loader expects them
    defaults: dict[str, dict[str, str | None]] = {
        "patrons": {"class_name": None, "given_name": None, "status": "active"},
        "cards": {"status": "active"},
        "items": {"barcode": None, "isbn13": None, "isbn10": None, "author": None, "call_number": None,
                  "item_type": "circulating", "home_corner": None, "status": "available"},
    }
    _apply(tables["patrons"], delta.patrons, "patron_id", delta.patrons_removed)
    _apply(tables["cards"], delta.cards, "card_id", delta.cards_removed)
    _apply(tables["items"], delta.items, "item_id", delta.items_removed)
    for name, fields in defaults.items():
        for record in tables[name].values():
            for field, value in fields.items():
                record.setdefault(field, value)
    loans = tables["loans"]
    for loan in delta.loans:
        data = msgspec.to_builtins(loan)
        data.setdefault("renewals", 0)
        loans[loan.item_id] = data
    for item_id in delta.loans_closed:
        loans.pop(item_id, None)
    settings = tables["settings"]["1"]
    settings["applied_seq"] = delta.applied_seq
    settings["incarnation"] = delta.incarnation
    if delta.policy is not None:
        settings["policy"] = msgspec.to_builtins(delta.policy)
    if delta.calendar is not None:
        settings["calendar"] = msgspec.to_builtins(delta.calendar)
    if delta.timetable is not None:
        settings["timetable"] = msgspec.to_builtins(delta.timetable)
    if delta.reading is not None:
        settings["reading"] = msgspec.to_builtins(delta.reading)
    reference, _settings = reference_from_tables(tables)
    return reference


def changes_anything(delta: ReferenceDelta, current: Reference | None) -> bool:
    if delta.full or current is None:
        return True
    lists = (delta.patrons, delta.patrons_removed, delta.cards, delta.cards_removed, delta.items, delta.items_removed,
             delta.loans, delta.loans_closed)
    return (any(lists) or delta.policy is not None or delta.calendar is not None or delta.timetable is not None
            or delta.reading is not None
            or delta.applied_seq != current.applied_seq or delta.incarnation != current.incarnation)
