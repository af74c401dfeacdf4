"""Circulation out to other systems: every event of a period as CSV, and the Koha
offline-circulation file (.koc, ../shared/DOMAIN.md) of its loans and returns."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime, tzinfo

from sqlalchemy import select

from central import db
from central.dashboard.queries import LOANS, RETURNS, day_bounds

KOC_VERSION = "1.0"
GENERATOR = "bookcorner"
CSV_COLUMNS = ("time", "kiosk_id", "seq", "type", "outcome", "reason", "patron_id", "card_id", "item_id",
               "barcode", "actor", "wall_time", "time_quality", "event_id")


def _period(start_day: date, end_day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    return day_bounds(start_day, zone)[0], day_bounds(end_day, zone)[1]


def _events(store: db.Store, start: datetime, end: datetime, types: tuple[str, ...] | None = None) -> list:
    e = db.events.c
    query = select(db.events).where(e.time >= start, e.time < end).order_by(e.time, e.kiosk_id, e.seq)
    if types:
        query = query.where(e.type.in_(types))
    with store.reading() as conn:
        rows = conn.execute(query).all()
        items = {}
        ids = {json.loads(r.payload).get("item_id") for r in rows}
        ids = sorted(i for i in ids if isinstance(i, str))
        if ids:
            for item_id, data in conn.execute(select(db.catalogue.c.item_id, db.catalogue.c.data)
                                              .where(db.catalogue.c.item_id.in_(ids))):
                items[item_id] = json.loads(data)
    return [(r, json.loads(r.payload), items) for r in rows]


def _barcode(payload: dict, items: dict) -> str:
    item_id = payload.get("item_id")
    record = items.get(item_id) or {}
    return str(record.get("barcode") or item_id or payload.get("code") or "")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def events_csv(store: db.Store, start_day: date, end_day: date, zone: tzinfo) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row, payload, items in _events(store, *_period(start_day, end_day, zone)):
        writer.writerow([_cell(v) for v in (
            row.time.astimezone(zone).isoformat(timespec="milliseconds"), row.kiosk_id, row.seq, row.type,
            row.outcome, row.reason, payload.get("patron_id"), payload.get("card_id"), payload.get("item_id"),
            _barcode(payload, items) if payload.get("item_id") else "", row.actor, row.wall_time, row.time_quality,
            row.event_id)])
    return buffer.getvalue()


def _field(value: object) -> str:
    """A .koc field: tabs and line breaks would split it."""
    return " ".join(str(value).split())


def koc_time(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.microsecond // 1000:03d}"


def koc_lines(store: db.Store, start_day: date, end_day: date, zone: tzinfo, version: str) -> Iterator[str]:
    """The .koc file's lines: the header, then one line per loan and return that applied
    (or applied with a warning), in time order. A loan without a card number (the kiosk
    did not record one) cannot be replayed by Koha and is left out."""
    yield f"Version={KOC_VERSION}\tGenerator={GENERATOR}\tGeneratorVersion={version}"
    for row, payload, items in _events(store, *_period(start_day, end_day, zone), (LOANS, RETURNS)):
        if row.outcome not in ("applied", "applied_with_warning"):
            continue
        barcode = _field(_barcode(payload, items))
        if not barcode:
            continue
        if row.type == LOANS:
            card = _field(payload.get("card_id") or "")
            if not card:
                continue
            yield f"{koc_time(row.time, zone)}\tissue\t{card}\t{barcode}"
        else:
            yield f"{koc_time(row.time, zone)}\treturn\t{barcode}"


def koc(store: db.Store, start_day: date, end_day: date, zone: tzinfo, version: str) -> str:
    return "".join(line + "\n" for line in koc_lines(store, start_day, end_day, zone, version))
