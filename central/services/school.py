"""The school's own settings, as the librarian keeps them: the loan rules, the calendar,
the rotation timetable, the students' cards, and who may connect (kiosks, librarians).

Each change is written in one transaction with its audit record (who, what, before and
after); what kiosks pull carries the reference revision of that transaction (``rev``),
so their next pull brings it, and nothing the librarian did not name is touched. A form
with any mistake saves nothing: it comes back with each mistake next to its field. The
rules, calendar and timetable forms carry the revision they were drawn from, so two librarians
editing at once cannot silently undo each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from itertools import pairwise
from typing import Any

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.central.ingest import next_revision, upsert
from bookcorner.central.kiosks import KIOSK, LIBRARIAN
from bookcorner.central.services.reviews import FIRST_DAY, LAST_DAY, card_holder
from bookcorner.circulation.model import ItemType, Role
from bookcorner.i18n import _
from bookcorner.protocol.messages import (
    CalendarRecord,
    CardRecord,
    HolidayLoanRecord,
    PatronRecord,
    PolicyRecord,
    RoleRules,
    RuleCell,
    SlotRecord,
    TermRecord,
    TimetableRecord,
)

#: the ranges a librarian may type (a teacher's class set is the largest loan count seen)
LIMITS = {"max_loans": (0, 200), "loan_days": (0, 365), "renewals": (0, 20)}
#: the longest run of days one line of closed dates may name (a summer holiday fits)
LONGEST_RUN = 120
#: empty rows offered under the filled ones (no JavaScript adds rows)
SPARE_ROWS = 3
MAX_ROWS = 400
CARD_STATUSES = ("active", "lost", "withdrawn")
#: how a librarian credential is named in addresses: the start of its hash, never the credential
CREDENTIAL_REF = re.compile(r"^[0-9a-f]{16}$")
SEARCH_LIMIT = 50


def fits_protocol(value: str, kind: Any) -> bool:
    """Whether ``value`` is what the protocol accepts as ``kind`` (a card id, a kiosk id)."""
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


def _text(record: Any) -> str:
    return msgspec.json.encode(record).decode("utf-8")


def _audit(conn: Connection, who: str, action: str, target: str, detail: dict[str, Any]) -> None:
    conn.execute(db.audit_log.insert().values(at=db.now(), who=who, action=action, target=target[:120],
                                              detail=json.dumps(detail, ensure_ascii=False, default=str)))


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Only what differs, as it was and as it is."""
    changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return {"before": {k: before.get(k) for k in changed}, "after": {k: after.get(k) for k in changed}}


# --- settings documents (policy, calendar, timetable) ------------------------------------------


@dataclass
class Setting:
    record: Any
    #: the revision it was last written at (0: never written, the defaults)
    rev: int


def read_setting(store: db.Store, name: str, kind: type, default: Any) -> Setting:
    with store.reading() as conn:
        row = conn.execute(select(db.settings.c.data, db.settings.c.rev).where(db.settings.c.name == name)).first()
    if row is None:
        return Setting(default, 0)
    return Setting(msgspec.json.decode(row.data, type=kind), row.rev)


class ChangedMeanwhile(Exception):
    """Someone saved this setting after the form was drawn."""


def save_setting(store: db.Store, who: str, name: str, record: Any, based_on: int | None, default: Any,
                 flat: Any = msgspec.to_builtins) -> bool:
    """Write one settings document for the kiosks to pull; False when nothing changed.
    ``default``: what held before it was ever written; ``flat`` turns a record into the
    fields the audit record compares."""
    text = _text(record)
    with store.writing() as conn:
        row = conn.execute(select(db.settings.c.data, db.settings.c.rev).where(db.settings.c.name == name)).first()
        if based_on is not None and (row.rev if row else 0) != based_on:
            raise ChangedMeanwhile(name)
        if row is not None and row.data == text:
            return False
        before = flat(msgspec.json.decode(row.data, type=type(record)) if row else default)
        upsert(conn, db.settings, ["name"], [{"name": name, "data": text, "rev": next_revision(conn)}])
        _audit(conn, who, f"{name}.edit", name, _changes(before, flat(record)))
    return True


def form_revision(fields: dict[str, str]) -> int | None:
    text = fields.get("based_on", "")
    return int(text) if text.isascii() and text.isdigit() else None


def _number(fields: dict[str, str], name: str, errors: dict[str, str], blank: bool = False) -> int | None:
    text = fields.get(name, "").strip()
    if blank and not text:
        return None
    low, high = LIMITS[name.rsplit(".", 1)[-1]]
    try:
        value = int(text)  # full-width digits from a Chinese input method count too
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        errors[name] = (_("A whole number from {low} to {high}, or empty for no limit") if blank
                        else _("A whole number from {low} to {high}")).format(low=low, high=high)
        return None
    return value


# --- the loan rules ------------------------------------------------------------------------------


def policy_fields(policy: PolicyRecord) -> dict[str, Any]:
    """The matrix as form fields (``role.field``, ``role.item_type.field``): every role and
    item type, a missing one as the kiosk reads it (the defaults of its record)."""
    cells = {(c.role, c.item_type): c for c in policy.rules}
    out: dict[str, Any] = {}
    for role in Role:
        rules = policy.roles.get(str(role), RoleRules())
        out.update({f"{role}.max_loans": rules.max_loans, f"{role}.block_when_overdue": rules.block_when_overdue,
                    f"{role}.holiday_loans": rules.holiday_loans})
        for kind in ItemType:
            cell = cells.get((str(role), str(kind)), RuleCell(str(role), str(kind)))
            out.update({f"{role}.{kind}.loanable": cell.loanable, f"{role}.{kind}.loan_days": cell.loan_days,
                        f"{role}.{kind}.renewals": cell.renewals, f"{role}.{kind}.max_loans": cell.max_loans})
    return out


def as_form(values: dict[str, Any]) -> dict[str, str]:
    """Field values as a form shows them: a ticked box is "on", an empty number ""."""
    return {k: ("on" if v else "") if isinstance(v, bool) else ("" if v is None else str(v))
            for k, v in values.items()}


def parse_policy(fields: dict[str, str]) -> tuple[PolicyRecord | None, dict[str, str]]:
    errors: dict[str, str] = {}
    roles, rules = {}, []
    for role in Role:
        roles[str(role)] = RoleRules(max_loans=_number(fields, f"{role}.max_loans", errors) or 0,
                                     block_when_overdue=bool(fields.get(f"{role}.block_when_overdue")),
                                     holiday_loans=bool(fields.get(f"{role}.holiday_loans")))
        for kind in ItemType:
            name = f"{role}.{kind}"
            loanable = bool(fields.get(f"{name}.loanable"))
            days = _number(fields, f"{name}.loan_days", errors)
            if loanable and days == 0:
                errors[f"{name}.loan_days"] = _("A book that may leave the room needs at least one loan day")
            rules.append(RuleCell(role=str(role), item_type=str(kind), loanable=loanable, loan_days=days or 0,
                                  renewals=_number(fields, f"{name}.renewals", errors) or 0,
                                  max_loans=_number(fields, f"{name}.max_loans", errors, blank=True)))
    if errors:
        return None, errors
    return PolicyRecord(roles=roles, rules=rules), {}


# --- the calendar ------------------------------------------------------------------------------


TERM_FIELDS = ("name", "start", "end")
HOLIDAY_FIELDS = ("name", "checkout_from", "checkout_until", "due")
SLOT_FIELDS = ("weekday", "start", "end", "class")


def _runs(days: list[date]) -> str:
    """Dates as the librarian types them: one per line, consecutive ones as ``first..last``."""
    lines: list[tuple[date, date]] = []
    for day in sorted(days):
        if lines and lines[-1][1] + timedelta(days=1) == day:
            lines[-1] = (lines[-1][0], day)
        else:
            lines.append((day, day))
    return "\n".join(a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in lines)


def _day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY and len(text.strip()) == 10 else None


def _dates(fields: dict[str, str], name: str, errors: dict[str, str]) -> list[date]:
    days: set[date] = set()
    for number, line in enumerate(fields.get(name, "").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        first, _sep, last = line.partition("..")
        start, end = _day(first), _day(last or first)
        if start is None or end is None:
            errors[name] = _("Line {number}: “{text}” is not a date (YYYY-MM-DD) or a run of dates "
                             "(YYYY-MM-DD..YYYY-MM-DD)").format(number=number, text=line[:40])
            return []
        if end < start or (end - start).days >= LONGEST_RUN:
            errors[name] = _("Line {number}: a run of dates goes forward, at most {days} days").format(
                number=number, days=LONGEST_RUN)
            return []
        days.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return sorted(days)


def row_numbers(fields: dict[str, str], prefix: str) -> list[int]:
    """The row numbers of a repeated group (``prefix.N.field``) a form sent."""
    found = {int(m.group(1)) for k in fields if (m := re.fullmatch(rf"{prefix}\.(\d{{1,4}})\.\w+", k))}
    return sorted(n for n in found if n < MAX_ROWS)


def _filled(fields: dict[str, str], prefix: str, row: int, names: tuple[str, ...]) -> bool:
    """A row to keep: something typed in it and not marked for removal."""
    if fields.get(f"{prefix}.{row}.remove"):
        return False
    return any(fields.get(f"{prefix}.{row}.{n}", "").strip() for n in names if n != "weekday")


def _dated_row(fields: dict[str, str], prefix: str, row: int, names: tuple[str, ...],
               errors: dict[str, str]) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for name in names:
        key, text = f"{prefix}.{row}.{name}", fields.get(f"{prefix}.{row}.{name}", "").strip()
        if name == "name":
            if not text or len(text) > 80 or not text.isprintable():
                errors[key] = _("A name (at most 80 characters)")
            values[name] = text
        else:
            values[name] = _day(text)
            if values[name] is None:
                errors[key] = _("A date (YYYY-MM-DD)")
    return None if any(f"{prefix}.{row}." in k for k in errors) else values


def calendar_fields(calendar: CalendarRecord) -> dict[str, str]:
    out = {f"closed.{d}": "on" for d in calendar.closed_weekdays}
    out["closed_dates"], out["open_dates"] = _runs(calendar.closed_dates), _runs(calendar.open_dates)
    for n, term in enumerate(calendar.terms):
        out.update({f"term.{n}.name": term.name, f"term.{n}.start": term.start.isoformat(),
                    f"term.{n}.end": term.end.isoformat()})
    for n, window in enumerate(calendar.holiday_loans):
        out.update({f"holiday.{n}.name": window.name, f"holiday.{n}.checkout_from": window.checkout_from.isoformat(),
                    f"holiday.{n}.checkout_until": window.checkout_until.isoformat(),
                    f"holiday.{n}.due": window.due.isoformat()})
    return out


def parse_calendar(fields: dict[str, str]) -> tuple[CalendarRecord | None, dict[str, str]]:
    errors: dict[str, str] = {}
    closed_weekdays = [d for d in range(7) if fields.get(f"closed.{d}")]
    if len(closed_weekdays) == 7:
        errors["closed"] = _("At least one weekday must be open")
    closed, open_days = _dates(fields, "closed_dates", errors), _dates(fields, "open_dates", errors)
    both = sorted(set(closed) & set(open_days))
    if both:
        errors["open_dates"] = _("{day} is both closed and a make-up working day").format(day=both[0].isoformat())
    terms = _terms(fields, errors)
    windows = _holidays(fields, errors)
    if errors:
        return None, errors
    return CalendarRecord(closed_weekdays=closed_weekdays, closed_dates=closed, terms=[t for _r, t in terms],
                          holiday_loans=[w for _r, w in windows], open_dates=open_days), {}


def _terms(fields: dict[str, str], errors: dict[str, str]) -> list[tuple[int, TermRecord]]:
    """The terms the form names (with their row), in order; their mistakes into ``errors``."""
    terms: list[tuple[int, TermRecord]] = []
    for row in row_numbers(fields, "term"):
        if not _filled(fields, "term", row, TERM_FIELDS):
            continue
        values = _dated_row(fields, "term", row, TERM_FIELDS, errors)
        if values is None:
            continue
        if values["end"] <= values["start"]:
            errors[f"term.{row}.end"] = _("The term ends after it starts")
            continue
        terms.append((row, TermRecord(**values)))
    terms.sort(key=lambda t: t[1].start)
    for (_row, earlier), (row, later) in pairwise(terms):
        if later.start <= earlier.end:
            errors[f"term.{row}.start"] = _("Overlaps the term “{name}” (until {end})").format(
                name=earlier.name, end=earlier.end.isoformat())
    return terms


def _holidays(fields: dict[str, str], errors: dict[str, str]) -> list[tuple[int, HolidayLoanRecord]]:
    """The holiday loans the form names (with their row), in order; their mistakes into ``errors``."""
    windows: list[tuple[int, HolidayLoanRecord]] = []
    for row in row_numbers(fields, "holiday"):
        if not _filled(fields, "holiday", row, HOLIDAY_FIELDS):
            continue
        values = _dated_row(fields, "holiday", row, HOLIDAY_FIELDS, errors)
        if values is None:
            continue
        if values["checkout_until"] < values["checkout_from"]:
            errors[f"holiday.{row}.checkout_until"] = _("Lending ends on or after the day it starts")
        elif values["due"] <= values["checkout_until"]:
            errors[f"holiday.{row}.due"] = _("The books are due after the lending ends")
        else:
            windows.append((row, HolidayLoanRecord(**values)))
    windows.sort(key=lambda w: w[1].checkout_from)
    for (_row, prior), (row, window) in pairwise(windows):
        if window.checkout_from <= prior.checkout_until:
            errors[f"holiday.{row}.checkout_from"] = _("Overlaps the holiday loan “{name}” (lending until {end})").format(
                name=prior.name, end=prior.checkout_until.isoformat())
    return windows


# --- the rotation timetable --------------------------------------------------------------------


def timetable_fields(timetable: TimetableRecord) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, slot in enumerate(timetable.slots):
        out.update({f"slot.{n}.weekday": str(slot.weekday), f"slot.{n}.start": slot.start.strftime("%H:%M"),
                    f"slot.{n}.end": slot.end.strftime("%H:%M"), f"slot.{n}.class": slot.class_name})
    return out


def _clock(text: str) -> time | None:
    text = text.strip()
    if not re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", text):
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        return None


def parse_timetable(fields: dict[str, str]) -> tuple[TimetableRecord | None, dict[str, str]]:
    """Each class's weekly slot. Slots may not overlap: the kiosk takes the first slot
    covering a moment as the class whose turn it is (``circulation.timetable``)."""
    errors: dict[str, str] = {}
    slots: list[tuple[int, SlotRecord]] = []
    for row in row_numbers(fields, "slot"):
        if not _filled(fields, "slot", row, SLOT_FIELDS):
            continue
        key = f"slot.{row}."
        weekday = fields.get(key + "weekday", "")
        start, end = _clock(fields.get(key + "start", "")), _clock(fields.get(key + "end", ""))
        class_name = fields.get(key + "class", "").strip()
        if weekday not in {str(d) for d in range(7)}:
            errors[key + "weekday"] = _("Choose a weekday")
        if start is None:
            errors[key + "start"] = _("A time (HH:MM)")
        if end is None:
            errors[key + "end"] = _("A time (HH:MM)")
        elif start is not None and end <= start:
            errors[key + "end"] = _("The slot ends after it starts")
        if not class_name or len(class_name) > 80 or not class_name.isprintable():
            errors[key + "class"] = _("A class (at most 80 characters)")
        if not any(k.startswith(key) for k in errors):
            slots.append((row, SlotRecord(int(weekday), start, end, class_name)))  # type: ignore[arg-type]
    slots.sort(key=lambda s: (s[1].weekday, s[1].start))
    for (_row, earlier), (row, later) in pairwise(slots):
        if later.weekday == earlier.weekday and later.start < earlier.end:
            errors[f"slot.{row}.start"] = _("Overlaps {name}'s slot ({start}–{end})").format(
                name=earlier.class_name, start=earlier.start.strftime("%H:%M"), end=earlier.end.strftime("%H:%M"))
    if errors:
        return None, errors
    return TimetableRecord(slots=[s for _r, s in slots]), {}


# --- students' cards -----------------------------------------------------------------------------


@dataclass
class Student:
    record: PatronRecord
    cards: list[CardRecord]


def find_students(store: db.Store, query: str) -> list[PatronRecord]:
    """Students (and staff) whose id is ``query``, or whose name or class holds it."""
    query = query.strip()[:80]
    if not query:
        return []
    wanted = query.casefold()
    p = db.patrons.c
    with store.reading() as conn:
        rows = conn.execute(select(p.data).where(p.removed.is_(False), (p.patron_id == query)
                                                 | p.data.icontains(query, autoescape=True))
                            .order_by(p.patron_id).limit(SEARCH_LIMIT * 4)).scalars().all()
    found = [msgspec.json.decode(row, type=PatronRecord) for row in rows]
    return [r for r in found if r.patron_id == query or any(
        wanted in (text or "").casefold() for text in (r.name, r.given_name, r.class_name))][:SEARCH_LIMIT]


def student(store: db.Store, patron_id: str) -> Student | None:
    with store.reading() as conn:
        data = conn.execute(select(db.patrons.c.data).where(db.patrons.c.patron_id == patron_id,
                                                            db.patrons.c.removed.is_(False))).scalar()
        if data is None:
            return None
        cards = conn.execute(select(db.cards.c.data).where(db.cards.c.patron_id == patron_id,
                                                           db.cards.c.removed.is_(False))
                             .order_by(db.cards.c.card_id)).scalars().all()
    return Student(msgspec.json.decode(data, type=PatronRecord),
                   [msgspec.json.decode(c, type=CardRecord) for c in cards])


class Refused(Exception):
    """What the librarian asked cannot be done: the message says why."""


def _card(conn: Connection, card_id: str) -> CardRecord | None:
    data = conn.execute(select(db.cards.c.data).where(db.cards.c.card_id == card_id,
                                                      db.cards.c.removed.is_(False))).scalar()
    return msgspec.json.decode(data, type=CardRecord) if data else None


def _write_cards(conn: Connection, records: list[CardRecord]) -> None:
    rev = next_revision(conn)
    upsert(conn, db.cards, ["card_id"], [{"card_id": c.card_id, "patron_id": c.patron_id, "data": _text(c),
                                          "rev": rev, "removed": False} for c in records])


def give_card(store: db.Store, who: str, patron_id: str, card_id: str, replace: bool) -> list[str]:
    """A card for a student, as a kiosk's enrolment decides it (``central.additions.enrol_card``):
    a card another student holds (active) is refused; ``replace``: their other active cards
    are recorded as lost. The card ids recorded lost."""
    with store.writing() as conn:
        patron = conn.execute(select(db.patrons.c.data).where(db.patrons.c.patron_id == patron_id,
                                                              db.patrons.c.removed.is_(False))).scalar()
        if patron is None:
            raise Refused(_("No student with the id {id}").format(id=patron_id))
        current = _card(conn, card_id)
        if current is not None and current.status == "active":
            if current.patron_id != patron_id:
                holder = conn.execute(select(db.patrons.c.data)
                                      .where(db.patrons.c.patron_id == current.patron_id)).scalar()
                name = msgspec.json.decode(holder, type=PatronRecord).name if holder else ""
                raise Refused(_("Card {card} is already held by {name} ({id}): mark it lost or withdrawn there "
                                "first").format(card=card_id, name=name, id=current.patron_id))
            if not replace:
                raise Refused(_("Card {card} is already this student's").format(card=card_id))
        changed = [CardRecord(card_id, patron_id, "active")]
        if replace:
            others = conn.execute(select(db.cards.c.data).where(db.cards.c.patron_id == patron_id,
                                                                db.cards.c.card_id != card_id,
                                                                db.cards.c.removed.is_(False))).scalars()
            changed += [CardRecord(c.card_id, patron_id, "lost") for c in
                        (msgspec.json.decode(d, type=CardRecord) for d in others) if c.status == "active"]
        _write_cards(conn, changed)
        _audit(conn, who, "card.give", card_id, {
            "patron_id": patron_id, "before": msgspec.to_builtins(current) if current else None,
            "after": msgspec.to_builtins(changed[0]), "recorded_lost": [c.card_id for c in changed[1:]]})
    return [c.card_id for c in changed[1:]]


def set_card_status(store: db.Store, who: str, card_id: str, status: str) -> CardRecord:
    with store.writing() as conn:
        current = _card(conn, card_id)
        if current is None:
            raise Refused(_("No card with the id {id}").format(id=card_id))
        if current.status == status:
            return current
        after = CardRecord(card_id, current.patron_id, status)
        _write_cards(conn, [after])
        _audit(conn, who, f"card.{status}", card_id, {"patron_id": current.patron_id, "before": current.status,
                                                      "after": status})
    return after


# --- who may connect ---------------------------------------------------------------------------


@dataclass
class KioskRow:
    kiosk_id: str
    name: str
    provisioned: Any
    last_contact: Any
    active_credentials: int


def kiosk_rows(store: db.Store) -> list[KioskRow]:
    k, c = db.kiosks.c, db.credentials.c
    active = (select(func.count()).where(c.kiosk_id == k.kiosk_id, c.role == KIOSK, c.revoked_at.is_(None))
              .scalar_subquery())
    with store.reading() as conn:
        return [KioskRow(*row) for row in conn.execute(
            select(k.kiosk_id, k.name, k.provisioned, k.last_contact, active).order_by(k.kiosk_id))]


def revoke_kiosk(store: db.Store, who: str, kiosk_id: str) -> int:
    """Its credentials stop working (within the server's two-second memory of them); its
    history stays, and ``add-kiosk --reissue`` (or the form) gives it a new one."""
    c = db.credentials.c
    with store.writing() as conn:
        if conn.execute(select(db.kiosks.c.kiosk_id).where(db.kiosks.c.kiosk_id == kiosk_id)).first() is None:
            raise Refused(_("No kiosk with the id {id}").format(id=kiosk_id))
        revoked = conn.execute(update(db.credentials).where(c.kiosk_id == kiosk_id, c.role == KIOSK,
                                                            c.revoked_at.is_(None))
                               .values(revoked_at=db.now())).rowcount
        if revoked:
            _audit(conn, who, "kiosk.revoke", kiosk_id, {"credentials_revoked": revoked})
    return revoked


@dataclass
class LibrarianRow:
    ref: str
    name: str
    created_at: Any
    revoked_at: Any
    #: the credential the viewing librarian signed in with
    yours: bool


def librarian_rows(store: db.Store, session_hash: str) -> list[LibrarianRow]:
    c = db.credentials.c
    with store.reading() as conn:
        mine = conn.execute(select(db.dashboard_sessions.c.token_hash)
                            .where(db.dashboard_sessions.c.session_hash == session_hash)).scalar()
        rows = conn.execute(select(c.token_hash, c.name, c.created_at, c.revoked_at).where(c.role == LIBRARIAN)
                            .order_by(c.revoked_at.is_not(None), c.name, c.created_at)).all()
    return [LibrarianRow(r.token_hash[:16], r.name, r.created_at, r.revoked_at, r.token_hash == mine) for r in rows]


def revoke_librarian(store: db.Store, who: str, ref: str) -> str:
    """Revoke a librarian's credential (their sessions end with it). A librarian cannot
    revoke their own last credential: they would be locked out, with only the server's
    command line to let them in again. The name of the credential's holder."""
    c = db.credentials.c
    with store.writing() as conn:
        rows = conn.execute(select(c.token_hash, c.name).where(c.role == LIBRARIAN, c.revoked_at.is_(None),
                                                               c.token_hash.startswith(ref))).all()
        if len(rows) != 1:
            raise Refused(_("No such credential, or it is revoked already"))
        target = rows[0]
        if target.name == who:
            others = conn.execute(select(func.count()).where(c.role == LIBRARIAN, c.revoked_at.is_(None),
                                                             c.name == who, c.token_hash != target.token_hash)).scalar()
            if not others:
                raise Refused(_("This is your last credential: revoking it would lock you out. Add yourself "
                                "a new credential first, or ask another librarian."))
        conn.execute(update(db.credentials).where(c.token_hash == target.token_hash).values(revoked_at=db.now()))
        _audit(conn, who, "librarian.revoke", target.name, {"credential": ref})
    return target.name


def printable(text: str, longest: int) -> bool:
    return bool(text) and len(text) <= longest and text.isprintable()


def find_people(store: db.Store, text: str) -> list[Any]:
    """Students whose name, class or id holds ``text``, the holder of the card ``text`` first."""
    found = find_students(store, text)
    holder = card_holder(store, text)
    if holder and all(p.patron_id != holder for p in found):
        owner = student(store, holder)
        if owner is not None:
            found.insert(0, owner.record)
    return found
