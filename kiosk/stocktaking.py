"""A stock-take (清点) at the kiosk as the librarian sees it: the running count, a word for
each scan, and the result in lines to read (the sorting itself is the pure
circulation.stocktake; the session controller records the events and keeps the codes)."""

from __future__ import annotations

from dataclasses import dataclass

from bookcorner.circulation.reference import Reference
from bookcorner.circulation.state import CirculationState
from bookcorner.circulation.stocktake import StocktakeResult
from bookcorner.i18n import _
from bookcorner.kiosk.wording import Message, Tone, book_title


@dataclass
class StocktakePending:
    """An unfinished stock-take the librarian may go on with (started before a restart, or
    before the librarian's mode closed)."""

    scans: int
    #: when it started (the event's wall time, ISO 8601)
    started: str


@dataclass
class StocktakeLine:
    title: str
    #: the call number, the home corner, the borrower: whatever finds the book
    detail: str = ""


@dataclass
class StocktakeReport:
    present: int
    expected: int
    scans: int
    repeated: int
    missing: tuple[StocktakeLine, ...]
    misplaced: tuple[StocktakeLine, ...]
    on_loan: tuple[StocktakeLine, ...]
    gone: tuple[StocktakeLine, ...]
    unknown: tuple[str, ...]
    #: books on loan but on the shelf that were checked in after the stock-take
    checked_in: int = 0


@dataclass
class StocktakeView:
    stocktake_id: str
    shelf: tuple[str, ...] | None
    scans: int
    #: copies of this shelf found, of those expected on it
    found: int
    expected: int
    #: scans to look at: misplaced, on loan, lost or withdrawn, unknown
    flagged: int
    last_title: str = ""
    #: the result, once finished
    report: StocktakeReport | None = None


def flagged(result: StocktakeResult) -> int:
    return len(result.misplaced) + len(result.on_loan_on_shelf) + len(result.gone_but_found) + len(result.unknown)


def last_scan(before: StocktakeResult, after: StocktakeResult) -> tuple[str, str | None]:
    """What the newest scan was, from the results before and after it: a class ("present",
    "misplaced", "on_loan", "gone", "repeated", "unknown") and the copy's item id."""
    if len(after.unknown) > len(before.unknown):
        return "unknown", None
    if after.repeated > before.repeated:
        return "repeated", None
    for kind, old, new in (("on_loan", before.on_loan_on_shelf, after.on_loan_on_shelf),
                           ("gone", before.gone_but_found, after.gone_but_found),
                           ("misplaced", before.misplaced, after.misplaced),
                           ("present", before.present, after.present)):
        added = set(new) - set(old)
        if added:
            return kind, min(added)
    return "repeated", None


def scan_message(kind: str, item_id: str | None, code: str, reference: Reference) -> Message:
    """The answer to one stock-take scan, in the active language."""
    item = reference.items.get(item_id or "")
    title = book_title(item.title) if item is not None else _("this book")
    if kind == "present":
        return Message(Tone.SUCCESS, _("Counted"), title)
    if kind == "misplaced":
        corner = item.home_corner if item is not None else None
        return Message(Tone.WARNING, _("From another corner"),
                       _("{title} belongs to class {corner}: put it aside.").format(title=title, corner=corner or "?"))
    if kind == "on_loan":
        return Message(Tone.WARNING, _("On loan, but on the shelf"),
                       _("{title} came back without a scan: it can be checked in at the end.").format(title=title))
    if kind == "gone":
        return Message(Tone.WARNING, _("Recorded as lost or withdrawn"),
                       _("{title} is on the shelf after all: put it aside.").format(title=title))
    if kind == "unknown":
        return Message(Tone.REFUSAL, _("Not a book of the catalogue"),
                       _("Code {code}: put it aside.").format(code=code))
    return Message(Tone.WARNING, _("Already counted"), _("This copy was scanned before."))


def report(result: StocktakeResult, reference: Reference, state: CirculationState) -> StocktakeReport:
    items = reference.items

    def line(item_id: str, detail: str = "") -> StocktakeLine:
        item = items.get(item_id)
        if item is None:
            return StocktakeLine(item_id, detail)
        return StocktakeLine(item.title, detail or item.call_number or item.barcode or item.isbn13 or item_id)

    def borrower(item_id: str) -> str:
        loan = state.loan_of(item_id)
        patron = reference.patrons.get(loan.patron_id) if loan is not None else None
        if patron is None:
            return ""
        return f"{patron.name} ({patron.class_name})" if patron.class_name else patron.name

    return StocktakeReport(
        present=len(result.present), expected=result.expected, scans=result.scans, repeated=result.repeated,
        missing=tuple(line(i) for i in result.missing),
        misplaced=tuple(line(i, _("class {corner}").format(corner=items[i].home_corner)
                             if i in items and items[i].home_corner else "") for i in result.misplaced),
        on_loan=tuple(line(i, borrower(i)) for i in result.on_loan_on_shelf),
        gone=tuple(line(i) for i in result.gone_but_found),
        unknown=result.unknown)


def checked_in(count: int) -> Message:
    return Message(Tone.SUCCESS, _("Checked in"),
                   _("{count} book(s) found on the shelf are back in the catalogue.").format(count=count))
