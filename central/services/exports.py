"""Circulation out to other systems: every event of a period as CSV, and the Koha
offline-circulation file (.koc, ../shared/DOMAIN.md) of its loans, renewals and returns.

Koha's .koc has no renewal command: Koha takes an ``issue`` of a book already on loan to
the same card as a renewal of that loan (a book on loan to another card is returned from
them and issued anew). A renewal therefore goes out as an ``issue`` with the card the loan
was made with, at the renewal's time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime, tzinfo

from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.payloads import stored, with_correction
from bookcorner.central.services.reviews import LOANS, RETURNS, period_bounds
from bookcorner.central.services.tables import safe_text
from bookcorner.central.validate import fits
from bookcorner.circulation.events import (
    EventType,
    Payload,
    card_id_of,
    code_of,
    item_id_of,
    loan_id_of,
    patron_id_of,
)

KOC_VERSION = "1.0"
GENERATOR = "bookcorner"
RENEWALS = str(EventType.RENEWED)
CSV_COLUMNS = ("time", "kiosk_id", "seq", "type", "outcome", "reason", "patron_id", "card_id", "item_id",
               "barcode", "actor", "wall_time", "time_quality", "event_id", "decision")


def _events(store: db.Store, start: datetime, end: datetime, types: tuple[str, ...] | None = None) -> list:
    """The period's events in time order, each as (row, payload, catalogue records,
    the librarian's resolution of it, {} when none); a corrected event's payload carries the
    correction (the book or student the librarian named; no student once the circulation
    log's period has anonymised it)."""
    e, r = db.events.c, db.reviews.c
    query = select(db.events).where(e.time >= start, e.time < end).order_by(e.time, e.kiosk_id, e.seq)
    if types:
        query = query.where(e.type.in_(types))
    with store.reading() as conn:
        rows = conn.execute(query).all()
        decided = {}
        in_review = sorted({row.event_id for row in rows if row.outcome == "needs_review"})
        for start_at in range(0, len(in_review), 900):
            for event_id, resolution, resolved_at in conn.execute(
                    select(r.event_id, r.resolution, r.resolved_at).where(r.event_id.in_(in_review[start_at:start_at + 900]),
                                                                          r.resolved_at.is_not(None))):
                decided[event_id] = {**json.loads(resolution or "{}"), "resolved_at": resolved_at}
        payloads = [_payload(row, decided.get(row.event_id, {})) for row in rows]
        items = {}
        ids = sorted({i for p in payloads if fits(i := item_id_of(p))})
        for start_at in range(0, len(ids), 900):
            for item_id, data in conn.execute(select(db.catalogue.c.item_id, db.catalogue.c.data)
                                              .where(db.catalogue.c.item_id.in_(ids[start_at:start_at + 900]))):
                items[item_id] = json.loads(data)
    return [(row, payload, items, decided.get(row.event_id, {})) for row, payload in zip(rows, payloads, strict=True)]


def _payload(row, decision: dict) -> Payload:
    """An event's payload, with the book and student of a librarian's correction (an
    anonymised event stays so: the correction's student is not put back)."""
    if decision.get("decision") == "correct":
        return with_correction(row.type, row.payload, decision.get("item_id"), decision.get("patron_id"))
    return stored(row.type, row.payload)


def _applied(row, resolution: dict) -> bool:
    """The event changed the loans: on arrival, after a correction, or when a librarian's
    Accept applied it to the book (an Accept that only acknowledged changed nothing)."""
    return (row.outcome in ("applied", "applied_with_warning") or resolution.get("decision") == "correct"
            or (resolution.get("decision") == "accept" and bool(resolution.get("effect"))))


def _barcode(payload: Payload, items: dict) -> str:
    item_id = item_id_of(payload)
    record = items.get(item_id) or {}
    return str(record.get("barcode") or item_id or code_of(payload) or "")


def events_csv(store: db.Store, start_day: date, end_day: date, zone: tzinfo) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row, payload, items, resolution in _events(store, *period_bounds(start_day, end_day, zone)):
        writer.writerow([safe_text(v) for v in (
            row.time.astimezone(zone).isoformat(timespec="milliseconds"), row.kiosk_id, row.seq, row.type,
            row.outcome, row.reason, patron_id_of(payload), card_id_of(payload), item_id_of(payload),
            _barcode(payload, items) if item_id_of(payload) else "", row.actor, row.wall_time, row.time_quality,
            row.event_id, resolution.get("decision"))])
    return buffer.getvalue()


def _field(value: object) -> str:
    """A .koc field: tabs and line breaks would split it."""
    return " ".join(str(value).split())


def koc_time(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.microsecond // 1000:03d}"


def _loan_cards(store: db.Store, loan_ids: set[str]) -> dict[str, str]:
    """The card each loan was made with (a loan's id is its checkout's event id)."""
    cards: dict[str, str] = {}
    wanted = sorted(loan_ids)
    e = db.events.c
    with store.reading() as conn:
        for start_at in range(0, len(wanted), 900):
            for event_id, payload in conn.execute(select(e.event_id, e.payload).where(
                    db.event_id_in(conn, wanted[start_at:start_at + 900]), e.type == LOANS)):
                card = card_id_of(stored(LOANS, payload))
                if card:
                    cards[event_id] = card
    return cards


def _patron_cards(store: db.Store, patron_ids: set[str]) -> dict[str, str]:
    """Each patron's active card (the lowest card number when several are active)."""
    cards: dict[str, str] = {}
    wanted = sorted(patron_ids)
    c = db.cards.c
    with store.reading() as conn:
        for start_at in range(0, len(wanted), 900):
            for card_id, patron_id, data in conn.execute(
                    select(c.card_id, c.patron_id, c.data).where(c.patron_id.in_(wanted[start_at:start_at + 900]),
                                                                 c.removed.is_(False)).order_by(c.card_id)):
                if json.loads(data).get("status", "active") == "active":
                    cards.setdefault(patron_id, card_id)
    return cards


def koc_lines(store: db.Store, start_day: date, end_day: date, zone: tzinfo, version: str) -> Iterator[str]:
    """The .koc file's lines: the header, then one line per loan, renewal and return that
    applied (or applied with a warning, or after a librarian's correction (as corrected) or
    Accept), in time order. A renewal is an ``issue`` to the card its loan was made with
    (Koha renews a book issued again to the card that has it); when that checkout cannot be
    found (or had no card), the student's active card. A loan or renewal without a card
    number cannot be replayed by Koha and is left out."""
    yield f"Version={KOC_VERSION}\tGenerator={GENERATOR}\tGeneratorVersion={version}"
    lines, renewals, loan_cards = _koc_moves(store, start_day, end_day, zone)
    if renewals:
        _renewal_cards(store, lines, renewals, loan_cards)
    lines.sort(key=lambda line: line[0])  # stable: events of one moment keep their order
    for at, command, card, barcode in lines:
        if command == "issue":
            yield f"{koc_time(at, zone)}\tissue\t{card}\t{barcode}"
        elif command == "return":
            yield f"{koc_time(at, zone)}\treturn\t{barcode}"


#: a .koc line before it is written: (at, command, card, barcode); no command: left out
KocLine = tuple[datetime, str | None, str, str]


def _koc_moves(store: db.Store, start_day: date, end_day: date, zone: tzinfo,
               ) -> tuple[list[KocLine], list[tuple[int, Payload]], dict[str, str]]:
    """The period's loans, renewals and returns that applied, as lines (a renewal's card
    still to find: its index and payload), and the card each loan was made with."""
    lines: list[KocLine] = []
    renewals: list[tuple[int, Payload]] = []  # (index in lines, payload): their cards are found below
    loan_cards: dict[str, str] = {}
    for row, payload, items, resolution in _events(store, *period_bounds(start_day, end_day, zone),
                                                   (LOANS, RETURNS, RENEWALS)):
        barcode = _field(_barcode(payload, items)) if _applied(row, resolution) else ""
        if not barcode:
            continue
        # an event Accept applied took effect when the librarian decided (stale news applied
        # "as the newest"): Koha, which replays in time order, must see it then too
        at = row.time if resolution.get("decision") != "accept" else max(row.time, resolution["resolved_at"])
        if row.type == LOANS:
            card = _field(card_id_of(payload) or "")
            if card:
                loan_cards[row.event_id] = card
                lines.append((at, "issue", card, barcode))
        elif row.type == RENEWALS:
            renewals.append((len(lines), payload))
            lines.append((at, "issue", "", barcode))
        else:
            lines.append((at, "return", "", barcode))
    return lines, renewals, loan_cards


def _renewal_cards(store: db.Store, lines: list[KocLine], renewals: list[tuple[int, Payload]],
                   loan_cards: dict[str, str]) -> None:
    """Each renewal's card: its loan's, else the student's active card (none: left out)."""
    loans = {loan for _i, p in renewals if fits(loan := loan_id_of(p))}
    loan_cards.update(_loan_cards(store, loans - loan_cards.keys()))
    patrons = {patron for _i, p in renewals if fits(patron := patron_id_of(p))}
    patron_cards = _patron_cards(store, patrons)
    for index, payload in renewals:
        found = loan_cards.get(loan_id_of(payload) or "") or patron_cards.get(patron_id_of(payload) or "")
        at, command, _none, barcode = lines[index]
        lines[index] = (at, command if found else None, _field(found or ""), barcode)


def koc(store: db.Store, start_day: date, end_day: date, zone: tzinfo, version: str) -> str:
    return "".join(line + "\n" for line in koc_lines(store, start_day, end_day, zone, version))
