"""What the student librarian and the librarian see besides single scans: the rotation
slot's counters, the class's chase list (催还单), the student librarian's work record
(form G), the events the server has not acknowledged yet.

Pure functions over the reference, the state and events, with "now" passed in; only
``events_since`` reads the journal (in a worker, never on the screen's thread).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from bookcorner.circulation.events import Checkin, Checkout, Event, EventType, ItemRegistered, Refused
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.state import CirculationState
from bookcorner.circulation.timetable import RotationSlot
from bookcorner.i18n import N_, _
from bookcorner.journal.journal import JournalReader

# -- reading recent events ------------------------------------------------------------------


def events_since(journal_dir: Path, since: datetime) -> list[Event]:
    """The journal's events recorded at or after ``since`` (by the kiosk's clock), reading
    only the newest segments that can hold them, however long the journal is."""
    reader = JournalReader(journal_dir)
    start = 0
    for first, _path in reversed(reader.segments()):
        head = next(iter(reader.events_after(first - 1, limit=1)), None)
        if head is not None and _wall(head) < since:
            start = first - 1
            break
    return [event for event in reader.events_after(start) if _wall(event) >= since]


def _wall(event: Event) -> datetime:
    return datetime.fromisoformat(event.wall_time)


# -- the rotation slot ----------------------------------------------------------------------


@dataclass(frozen=True)
class SlotWindow:
    """One class's borrowing slot on one day."""

    class_name: str
    start: datetime
    end: datetime


def slot_window(slot: RotationSlot, now: datetime) -> SlotWindow:
    day = now.date()
    return SlotWindow(slot.class_name, datetime.combine(day, slot.start, now.tzinfo),
                      datetime.combine(day, slot.end, now.tzinfo))


@dataclass(frozen=True)
class SlotCounts:
    loans: int = 0
    returns: int = 0


def slot_counts(events: Iterable[Event], start: datetime, end: datetime,
                borrowers: Container[str] | None = None) -> SlotCounts:
    """Books lent and brought back between ``start`` and ``end`` (a book taken back because
    someone else borrowed it, or because it went to repair, is not a return); with
    ``borrowers``, only loans of those people (a class's: see ``class_members``)."""
    loans = returns = 0
    for event in events:
        p = event.payload
        if not isinstance(p, Checkout | Checkin) or not start <= _wall(event) < end:
            continue
        if borrowers is not None and p.patron_id not in borrowers:
            continue
        if isinstance(p, Checkout):
            loans += 1
        elif not p.implicit:
            returns += 1
    return SlotCounts(loans, returns)


def class_members(reference: Reference, class_name: str) -> frozenset[str]:
    """The patrons of a class (its pupils, its student librarians, its teacher)."""
    return frozenset(patron.patron_id for patron in reference.patrons.values() if patron.class_name == class_name)


# -- the chase list ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChaseLine:
    patron_id: str
    name: str
    class_name: str
    item_id: str
    title: str
    due: date
    #: school days past the due date (0: not overdue yet)
    days_late: int

    @property
    def overdue(self) -> bool:
        return self.days_late > 0


def chase_list(reference: Reference, state: CirculationState, class_name: str, today: date) -> list[ChaseLine]:
    """Every open loan of a class's pupils: overdue ones first, the longest overdue on top."""
    lines = []
    for loan in state.loans.values():
        patron = reference.patrons.get(loan.patron_id)
        if patron is None or patron.class_name != class_name:
            continue
        item = reference.items.get(loan.item_id)
        late = reference.calendar.open_days_between(loan.due, today) if loan.is_overdue(today) else 0
        lines.append(ChaseLine(patron.patron_id, patron.name, class_name, loan.item_id,
                               item.title if item else loan.item_id, loan.due, late))
    return sorted(lines, key=lambda line: (-line.days_late, line.due, line.name, line.title))


def chase_list_csv(lines: Sequence[ChaseLine]) -> str:
    """For a spreadsheet (with a byte-order mark, so that Excel reads the Chinese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("class"), _("name"), _("title"), _("due"), _("school days late")])
    for line in lines:
        writer.writerow([line.class_name, line.name, line.title, line.due.isoformat(), line.days_late])
    return "\ufeff" + buffer.getvalue()


def chase_list_text(lines: Sequence[ChaseLine], class_name: str, today: date) -> str:
    """A printable overdue notice for the class teacher."""
    out = [_("Books to bring back: class {klass}, {day}").format(klass=class_name, day=today.isoformat()), ""]
    for line in lines:
        mark = _("OVERDUE, {days} school day(s)").format(days=line.days_late) if line.overdue else ""
        out.append(f"{line.name}\t《{line.title}》\t{_('due')} {line.due.isoformat()}\t{mark}".rstrip())
    if not lines:
        out.append(_("No books out."))
    return "\n".join(out) + "\n"


def export_chase_list(folder: Path, lines: Sequence[ChaseLine], class_name: str, today: date) -> list[Path]:
    """Write the chase list as CSV and as printable text; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"chase-{class_name}-{today.isoformat()}"
    written = []
    for suffix, text in ((".csv", chase_list_csv(lines)), (".txt", chase_list_text(lines, class_name, today))):
        path = folder / f"{stem}{suffix}"
        temporary = path.with_suffix(suffix + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
        written.append(path)
    return written


# -- a student librarian's work record (form G) -----------------------------------------


@dataclass(frozen=True)
class WorkDay:
    day: date
    returns: int = 0
    damaged: int = 0
    found: int = 0

    @property
    def total(self) -> int:
        return self.returns + self.damaged + self.found


def work_record(events: Iterable[Event], patron_id: str) -> list[WorkDay]:
    """Per day, what one student librarian did at the kiosk: books taken back, sent to
    repair, put back in circulation. Newest day first."""
    days: dict[date, dict[str, int]] = {}
    for event in events:
        if event.actor != patron_id:
            continue
        key = {EventType.CHECKED_IN: "returns", EventType.ITEM_DAMAGED: "damaged",
               EventType.ITEM_FOUND: "found", EventType.ITEM_REPAIRED: "found"}.get(event.type)
        if key is None or (isinstance(event.payload, Checkin) and event.payload.implicit):
            continue
        counts = days.setdefault(_wall(event).date(), {})
        counts[key] = counts.get(key, 0) + 1
    return [WorkDay(day, **counts) for day, counts in sorted(days.items(), reverse=True)]


WORK_RECORD_DAYS = 31


def work_record_since(now: datetime) -> datetime:
    """The work record covers the last month (student librarians meet monthly)."""
    return datetime.combine(now.date() - timedelta(days=WORK_RECORD_DAYS - 1), datetime.min.time(), now.tzinfo)


# -- what the server has not acknowledged -----------------------------------------------

_WHAT = {
    EventType.CHECKED_OUT: N_("borrowed"),
    EventType.CHECKED_IN: N_("returned"),
    EventType.RENEWED: N_("renewed"),
    EventType.ITEM_DAMAGED: N_("sent to repair"),
    EventType.ITEM_LOST: N_("marked lost"),
    EventType.ITEM_FOUND: N_("found"),
    EventType.ITEM_REPAIRED: N_("back from repair"),
    EventType.CARD_ENROLLED: N_("card enrolled"),
    EventType.ITEM_REGISTERED: N_("book registered"),
    EventType.REFUSED: N_("refused"),
    EventType.UNKNOWN_CARD: N_("unknown card"),
    EventType.UNKNOWN_ITEM: N_("unknown book"),
    EventType.UNREADABLE: N_("unreadable scan"),
    EventType.JOURNAL_DAMAGE: N_("journal damage"),
    EventType.STOCKTAKE_STARTED: N_("stock-take started"),
    EventType.STOCKTAKE_SCANNED: N_("scanned in a stock-take"),
    EventType.STOCKTAKE_FINISHED: N_("stock-take finished"),
}


@dataclass(frozen=True)
class EventLine:
    seq: int
    time: str
    what: str
    who: str
    detail: str


def event_lines(events: Iterable[Event], reference: Reference) -> list[EventLine]:
    """Events in the librarian's words (in the active language), newest first."""
    lines = []
    for event in events:
        payload = event.payload
        who = reference.patrons[event.actor].name if event.actor in reference.patrons else event.actor
        item = reference.items.get(getattr(payload, "item_id", None) or "")
        if item is not None:
            detail = f"《{item.title}》"
        elif isinstance(payload, ItemRegistered):
            detail = f"《{payload.item.title}》"
        else:
            detail = str(getattr(payload, "code", None) or getattr(payload, "card_id", None) or "")
        if isinstance(payload, Refused):
            detail = f"{detail} [{payload.reason}]".strip()
        lines.append(EventLine(event.seq, _wall(event).strftime("%m-%d %H:%M"), _(_WHAT.get(event.type, str(event.type))),
                               who, detail))
    return sorted(lines, key=lambda line: -line.seq)
