"""The reference snapshot: roster, cards, catalogue, policy, calendar, timetable and the
loans the server knows, as the kiosk decides with them.

One process writes it (the sync daemon, or the demo loader); the kiosk reads it. Each
version replaces the last whole (write a temporary file, fsync, rename, fsync the
folder), and the previous version is kept beside it: a reader sees one whole version or
the other, and a damaged file falls back to the previous version with the damage
reported, never to an empty catalogue.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
from tinydb import TinyDB
from tinydb.storages import Storage

from bookcorner.circulation.calendar import HolidayLoan, SchoolCalendar, Term
from bookcorner.circulation.challenges import Challenge
from bookcorner.circulation.model import Card, Item, ItemType, Patron, Role
from bookcorner.circulation.policy import LoanRule, Policy, RolePolicy
from bookcorner.circulation.reference import Reference, build_reference
from bookcorner.circulation.state import Loan
from bookcorner.circulation.suggestions import NO_GUIDE, ReadingGuide, ReadingList
from bookcorner.circulation.timetable import RotationSlot, Timetable
from bookcorner.i18n import _
from bookcorner.journal.storage import StoreError, Tables, parse, write_new_file

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "bookcorner.reference"
SNAPSHOT_SCHEMA = 1


class NoReferenceData(StoreError):
    """The kiosk has no roster or catalogue yet."""


class SnapshotStorage(Storage):
    """TinyDB storage that writes the whole database as one checksummed record into a
    new file renamed over the old one, keeping the previous version as ``<name>.prev``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.previous = self.path.with_name(self.path.name + ".prev")
        self.damage: list[str] = []
        self._tables: Tables | None = None

    def read(self) -> Tables | None:
        if self._tables is None:
            self._tables = self._load()
        return self._tables

    def _load(self) -> Tables | None:
        for candidate in (self.path, self.previous):
            try:
                blob = candidate.read_bytes()
            except FileNotFoundError:
                continue
            parsed = parse(blob)
            if parsed.records == 1 and not parsed.corrupt and not parsed.torn_tail:
                if candidate is self.previous and self.path.exists():
                    log.error("reference snapshot %s damaged; using the previous version", self.path)
                return parsed.tables
            self.damage.append(
                _("{path} is damaged ({size} bytes, no complete version in it)").format(path=candidate, size=len(blob))
            )
        if self.damage:
            raise StoreError(
                _("the reference data is damaged and no earlier version is usable: {details}. Sync again or "
                  "reload the school's data.").format(details="; ".join(self.damage))
            )
        return None

    def write(self, data: Tables) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            keep = self.previous.with_name(self.previous.name + ".tmp")
            try:
                keep.unlink()
            except FileNotFoundError:
                pass
            os.link(self.path, keep)
            os.replace(keep, self.previous)
        write_new_file(self.path, [{"u": data}])
        self._tables = data

    def close(self) -> None:
        pass


def _builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


#: the code's names of a loan rule's and a holiday loan's fields, and the names a snapshot stores them
#: under: the wire's (protocol.messages), which the sync writes into it and every release reads
_STORED_AS = {"loanable": "lendable", "checkout_from": "lend_from", "checkout_until": "lend_until"}
_CODE_NAME = {stored: code for code, stored in _STORED_AS.items()}


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    return {_STORED_AS.get(key, key): value for key, value in fields.items()}


def _code_names(fields: dict[str, Any]) -> dict[str, Any]:
    """A stored rule or holiday loan under the code's names (either spelling accepted)."""
    return {_CODE_NAME.get(key, key): value for key, value in fields.items()}


def _calendar_builtins(reference: Reference) -> dict[str, Any]:
    calendar = _builtins(reference.calendar)
    calendar["holiday_loans"] = [_stored(window) for window in calendar["holiday_loans"]]
    return calendar


def reference_to_tables(reference: Reference, version: str, school: str = "") -> Tables:
    policy_rules = [
        {"role": str(role), "item_type": str(item_type), **_stored(_builtins(rule))}
        for (role, item_type), rule in reference.policy.rules.items()
    ]
    settings = {
        "format": SNAPSHOT_FORMAT,
        "schema": SNAPSHOT_SCHEMA,
        "version": version,
        "school": school,
        "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "applied_seq": reference.applied_seq,
        "incarnation": reference.incarnation,
        "policy": {
            "roles": {str(role): _builtins(rp) for role, rp in reference.policy.roles.items()},
            "rules": policy_rules,
        },
        "calendar": _calendar_builtins(reference),
        "timetable": _builtins(reference.timetable),
    }
    if reference.reading is not NO_GUIDE:
        settings["reading"] = guide_to_builtins(reference.reading)
    return {
        "settings": {"1": settings},
        "patrons": {p.patron_id: _builtins(p) for p in reference.patrons.values()},
        "cards": {c.card_id: _builtins(c) for c in reference.cards.values()},
        "items": {i.item_id: _builtins(i) for i in reference.items.values()},
        "loans": {loan.item_id: _builtins(loan) for loan in reference.loans},
    }


def _convert(value: Any, kind: type) -> Any:
    return msgspec.convert(value, kind, strict=False)


def reference_from_tables(tables: Tables) -> tuple[Reference, dict[str, Any]]:
    settings = tables.get("settings", {}).get("1")
    if not settings or settings.get("format") != SNAPSHOT_FORMAT:
        raise StoreError(_("the reference data is not a bookcorner snapshot"))
    if settings.get("schema", 0) > SNAPSHOT_SCHEMA:
        raise StoreError(_("the reference data was written by a newer bookcorner; upgrade bookcorner"))
    try:
        roles = {Role(k): _convert(v, RolePolicy) for k, v in settings["policy"]["roles"].items()}
        rules = {}
        for cell in settings["policy"]["rules"]:
            cell = dict(cell)
            key = (Role(cell.pop("role")), ItemType(cell.pop("item_type")))
            rules[key] = _convert(_code_names(cell), LoanRule)
        calendar = settings["calendar"]
        reference = build_reference(
            patrons=(_convert(p, Patron) for p in tables.get("patrons", {}).values()),
            cards=(_convert(c, Card) for c in tables.get("cards", {}).values()),
            items=(_convert(i, Item) for i in tables.get("items", {}).values()),
            policy=Policy(roles=roles, rules=rules),
            calendar=SchoolCalendar(
                closed_weekdays=frozenset(calendar["closed_weekdays"]),
                closed_dates=frozenset(_convert(calendar["closed_dates"], list[date])),
                terms=tuple(_convert(t, Term) for t in calendar["terms"]),
                holiday_loans=tuple(_convert(_code_names(h), HolidayLoan) for h in calendar["holiday_loans"]),
                open_dates=frozenset(_convert(calendar.get("open_dates", []), list[date])),
            ),
            timetable=Timetable(tuple(_convert(s, RotationSlot) for s in settings["timetable"]["slots"])),
            loans=(_convert(loan, Loan) for loan in tables.get("loans", {}).values()),
            applied_seq=int(settings.get("applied_seq", 0)),
            incarnation=settings.get("incarnation"),
            reading=guide_from_builtins(settings.get("reading")),
        )
    except (KeyError, ValueError, TypeError, msgspec.ValidationError) as error:
        raise StoreError(_("the reference data is incomplete or invalid: {error}").format(error=error)) from None
    return reference, settings


def guide_to_builtins(guide: ReadingGuide) -> dict[str, Any]:
    """The reading guide as stored (the wire's ``ReadingRecord`` form, which the sync writes)."""
    return {
        "lists": [{"list_id": r.list_id, "name": r.name, "books": list(r.books), "grades": sorted(r.grades),
                   "class_names": sorted(r.class_names)} for r in guide.lists],
        "next_books": [[grade, book, [n for n, _c in pairs], [c for _n, c in pairs]]
                       for grade, by_book in sorted(guide.next_books.items())
                       for book, pairs in sorted(by_book.items())],
        "challenges": [{"challenge_id": c.challenge_id, "name": c.name, "start": c.start.isoformat(),
                        "end": c.end.isoformat(), "goal": c.goal, "by_category": c.by_category,
                        "class_names": sorted(c.class_names)} for c in guide.challenges],
    }


def guide_from_builtins(stored: dict[str, Any] | None) -> ReadingGuide:
    """The reading guide a snapshot stores (none in a snapshot from before reading lists)."""
    if not stored:
        return NO_GUIDE
    lists = tuple(ReadingList(str(r["list_id"]), str(r["name"]), tuple(map(str, r.get("books", ()))),
                              frozenset(int(g) for g in r.get("grades", ())),
                              frozenset(map(str, r.get("class_names", ()))))
                  for r in stored.get("lists", ()))
    next_books: dict[int, dict[str, tuple[tuple[str, int], ...]]] = {}
    for grade, book, following, counts in stored.get("next_books", ()):
        next_books.setdefault(int(grade), {})[str(book)] = tuple(
            (str(n), int(c)) for n, c in zip(following, counts, strict=True))
    challenges = tuple(Challenge(str(c["name"]), date.fromisoformat(c["start"]), date.fromisoformat(c["end"]),
                                 int(c["goal"]), bool(c.get("by_category", False)), str(c["challenge_id"]),
                                 frozenset(map(str, c.get("class_names", ()))))
                       for c in stored.get("challenges", ()))
    return ReadingGuide(lists, MappingProxyType({g: MappingProxyType(b) for g, b in next_books.items()}),
                        challenges)


@dataclass
class LoadedReference:
    reference: Reference
    version: str
    school: str
    damage: list[str]


class ReferenceStore:
    """Where the kiosk's reference snapshot lives (``reference/reference.db``)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "reference.db"

    def exists(self) -> bool:
        return self.path.exists() or self.path.with_name(self.path.name + ".prev").exists()

    def stamp(self) -> tuple[int, int] | None:
        """Changes whenever a new version is renamed into place."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns)

    def load(self) -> LoadedReference:
        storage = SnapshotStorage(self.path)
        tables = storage.read()
        if tables is None:
            raise NoReferenceData(
                _("no roster or catalogue in {path} yet: sync with the server, or load the demo school "
                  "with `bookcorner demo --load-only`").format(path=self.directory)
            )
        reference, settings = reference_from_tables(tables)
        return LoadedReference(reference, settings.get("version", ""), settings.get("school", ""), storage.damage)

    def save(self, reference: Reference, version: str, school: str = "") -> None:
        SnapshotStorage(self.path).write(reference_to_tables(reference, version, school))

    def open_tinydb(self) -> TinyDB:
        """The snapshot as a TinyDB, for ad-hoc queries (``db.table("items").search(...)``)."""
        return TinyDB(storage=lambda: SnapshotStorage(self.path))
