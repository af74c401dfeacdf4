"""The messages, as they travel (JSON). Field names and meanings: docs/protocol.md.

Every constraint here is checked by the server when it decodes a request and appears
in the OpenAPI document, so a request that breaks one is refused with 422 before
anything is stored. Content that is well-formed but cannot be applied (an event type the
server does not know, a return of a book not on loan) is not an error: it is stored and
kept for a librarian's review, and the push succeeds.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from datetime import date, time
from typing import Annotated, Any

import msgspec
import msgspec.inspect
from msgspec import Meta, Struct

# what the server did with one event: the circulation model's vocabulary, on the wire as it is
from bookcorner.circulation.outcomes import Outcome

PROTOCOL_VERSION = 1
API_PREFIX = "/v1"
#: the most events one push (or one imported chunk) may carry
MAX_BATCH = 5000
#: the largest request body the server reads (a full batch of large events fits easily)
MAX_BODY_BYTES = 32 * 1024 * 1024

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

KioskId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="the kiosk's id (its [kiosk] id)")]
Identifier = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")]
Text = Annotated[str, Meta(max_length=400, pattern=_PRINTABLE)]
Seq = Annotated[int, Meta(ge=1, le=2**53, description="the kiosk's gap-free event sequence number")]
SeqOrZero = Annotated[int, Meta(ge=0, le=2**53)]
Nanoseconds = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Timestamp = Annotated[
    str,
    Meta(min_length=10, max_length=40, pattern=_PRINTABLE, extra_json_schema={"format": "date-time"},
         description="ISO 8601 with its UTC offset, as the kiosk's clock read it"),
]
EventTypeName = Annotated[
    str,
    Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$",
         description="e.g. loan.checked_out; a type the server does not know is kept for review"),
]


class ClockReading(Struct, forbid_unknown_fields=False):
    """The kiosk's clocks at one moment: how the server re-times events of this boot."""

    boot_id: Identifier
    monotonic_ns: Nanoseconds
    wall_time: Timestamp
    clock_synced: bool


class WireEvent(Struct, kw_only=True):
    """One journal event, exactly as the kiosk recorded it."""

    event_id: Identifier
    kiosk_id: KioskId
    seq: Seq
    boot_id: Identifier
    monotonic_ns: Nanoseconds
    wall_time: Timestamp
    clock_synced: bool
    actor: Annotated[str, Meta(min_length=1, max_length=128, pattern=_PRINTABLE)]
    type: EventTypeName
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class JournalIdentity(Struct, omit_defaults=True):
    """Which incarnation of the kiosk's journal a batch comes from. A journal restored from
    a backup, repaired or re-created is a new incarnation: the server tracks each one's
    sequence numbers apart and never acknowledges for one what it stored for another."""

    incarnation: Identifier
    #: the first sequence number this incarnation recorded itself (events before it were
    #: recorded by the journal it continues, ``previous``)
    since_seq: Seq
    #: why it began: new | upgraded | restored | repaired | went_back
    reason: Annotated[str, Meta(pattern=r"^[a-z_]{1,24}$")]
    previous: Identifier | None = None
    #: when the backup it was restored from was made
    restored_from: Timestamp | None = None


class PushRequest(Struct, kw_only=True):
    """Events ``from_seq``..``to_seq`` of one kiosk, in order. A sequence number in that
    range with no event here is one the kiosk's journal lost (recorded for review)."""

    kiosk_id: KioskId
    #: the batch's idempotency key: a retry carries the same one
    batch_id: Identifier
    from_seq: Seq
    to_seq: SeqOrZero
    clock: ClockReading
    events: Annotated[list[WireEvent], Meta(max_length=MAX_BATCH)]
    #: the events the kiosk holds that the server has not acknowledged, counted before
    #: this batch (this batch's own included): what the librarian's end of day shows as
    #: still waiting on the kiosk. Absent from older kiosks (the server then keeps what it had).
    waiting: Annotated[int, Meta(ge=0, le=2**53)] | None = None
    #: the journal incarnation the events come from; absent from older kiosks (the server
    #: then goes on with the incarnation it knows)
    journal: JournalIdentity | None = None


class EventResult(Struct, omit_defaults=True):
    event_id: str
    seq: int
    outcome: Outcome
    #: why it needs review (a reason code, e.g. not_on_loan, unknown_event_type)
    reason: str | None = None
    #: how it applied (codes, e.g. returned_from_other, time_in_the_future)
    warnings: list[str] = msgspec.field(default_factory=list)


class JournalNotice(Struct, omit_defaults=True):
    """The server's word on a journal that went back in time (docs/protocol.md)."""

    #: restored | repaired | went_back (same incarnation, numbers the server had)
    kind: str
    #: events the server holds from the kiosk's earlier journal with numbers from this
    #: incarnation's start on: made after the backup, not in this journal any more (kept
    #: on the server; their loans come back to the kiosk with the next reference pull)
    events_not_here: int = 0
    loans_not_here: int = 0
    #: events of this batch whose numbers the server had for other events (stored and applied)
    reused_numbers: int = 0


class PushReply(Struct):
    kiosk_id: str
    batch_id: str
    #: the kiosk's high-water mark: every event up to this number is stored (or was lost
    #: on the kiosk and is recorded as such); the kiosk may forget about them
    applied_seq: int
    results: list[EventResult]
    #: this kiosk's events waiting for a librarian's review, in all
    needs_review: int
    server_time: str
    #: the batch id was seen before: this is the reply stored then (nothing was replayed now)
    replayed: bool = False
    #: what the server found about the kiosk's journal with this batch, for the librarian
    journal_notice: JournalNotice | None = None
    #: when ``applied_seq`` is past this batch's end: the id of the event the server holds
    #: under ``applied_seq``. A kiosk whose journal holds that very event there may take the
    #: whole mark as acknowledged (its position was lost); otherwise only up to ``to_seq``
    applied_event_id: str | None = None


# --- reference data -------------------------------------------------------------------------


class PatronRecord(Struct, omit_defaults=True):
    patron_id: Identifier
    name: Text
    role: Annotated[str, Meta(pattern=r"^(student|student_librarian|teacher|librarian)$")]
    class_name: Text | None = None
    given_name: Text | None = None
    status: Annotated[str, Meta(pattern=r"^(active|suspended|left)$")] = "active"


class CardRecord(Struct, omit_defaults=True):
    card_id: Identifier
    patron_id: Identifier
    status: Annotated[str, Meta(pattern=r"^(active|lost|withdrawn)$")] = "active"


class ItemRecord(Struct, omit_defaults=True):
    item_id: Identifier
    title: Text
    barcode: Text | None = None
    isbn13: Text | None = None
    isbn10: Text | None = None
    author: Text | None = None
    call_number: Text | None = None
    item_type: Annotated[str, Meta(pattern=r"^(circulating|reference|periodical)$")] = "circulating"
    home_corner: Text | None = None
    status: Annotated[str, Meta(pattern=r"^(available|in_repair|lost|withdrawn)$")] = "available"


class LoanRecord(Struct, omit_defaults=True):
    loan_id: str
    item_id: str
    patron_id: str
    due: date
    #: when it was lent (the server's corrected time)
    since: str
    renewals: int = 0


Count = Annotated[int, Meta(ge=0, le=1000)]


class RoleRules(Struct):
    max_loans: Count = 2
    block_when_overdue: bool = True
    holiday_loans: bool = True


class RuleCell(Struct):
    role: str
    item_type: str
    #: may leave the room; "lendable" on the wire and in stored revisions, as every kiosk and server reads it
    loanable: bool = msgspec.field(default=True, name="lendable")
    loan_days: Count = 7
    renewals: Count = 1
    max_loans: Count | None = None


class PolicyRecord(Struct):
    roles: dict[str, RoleRules]
    rules: list[RuleCell]


class TermRecord(Struct):
    name: Text
    start: date
    end: date


class HolidayLoanRecord(Struct):
    name: Text
    #: loans made from this day to ``checkout_until`` are due on ``due``; on the wire (and in stored
    #: revisions) the names stay "lend_from"/"lend_until", as every kiosk and server reads them
    checkout_from: date = msgspec.field(name="lend_from")
    checkout_until: date = msgspec.field(name="lend_until")
    due: date


Weekday = Annotated[int, Meta(ge=0, le=6)]


class CalendarRecord(Struct):
    closed_weekdays: list[Weekday] = msgspec.field(default_factory=lambda: [5, 6])
    closed_dates: list[date] = msgspec.field(default_factory=list)
    terms: list[TermRecord] = msgspec.field(default_factory=list)
    holiday_loans: list[HolidayLoanRecord] = msgspec.field(default_factory=list)
    open_dates: list[date] = msgspec.field(default_factory=list)


class SlotRecord(Struct):
    weekday: Weekday
    start: time
    end: time
    class_name: Text


class TimetableRecord(Struct):
    slots: list[SlotRecord] = msgspec.field(default_factory=list)


class ReadingListRecord(Struct, omit_defaults=True):
    """One of the librarian's reading lists, its books as book keys (an ISBN-13, or
    ``item:<item id>`` for a book without one)."""

    list_id: Identifier
    name: Text
    books: list[Text] = msgspec.field(default_factory=list)
    #: the grades it is for (empty: every grade)
    grades: list[int] = msgspec.field(default_factory=list)
    #: the classes it is for (empty: every class of its grades)
    class_names: list[Text] = msgspec.field(default_factory=list)


class NextBooksRecord(Struct, array_like=True):
    """For one grade and one book: the books children of that grade borrowed next and how
    many children did (counts only, never who)."""

    grade: int
    book: Text
    next: list[Text]
    counts: list[int]


class ChallengeRecord(Struct, omit_defaults=True):
    """A reading challenge that is running or coming: ``goal`` books (or categories, if
    ``by_category``) borrowed from ``start`` to ``end`` inclusive, by the classes named
    (empty: every class)."""

    challenge_id: Identifier
    name: Text
    start: date
    end: date
    goal: Annotated[int, Meta(ge=1, le=1000)]
    by_category: bool = False
    class_names: list[Text] = msgspec.field(default_factory=list)


class ReadingRecord(Struct, kw_only=True):
    """What to read next: the lists and the co-reading counts, computed on the server, and
    the reading challenges (a server from before challenges sends none; a kiosk from before
    them ignores the field)."""

    lists: list[ReadingListRecord] = msgspec.field(default_factory=list)
    next_books: list[NextBooksRecord] = msgspec.field(default_factory=list)
    challenges: list[ChallengeRecord] = msgspec.field(default_factory=list)


class ReferenceDocument(Struct, kw_only=True):
    """A school's whole reference data, as the librarian loads it into the server."""

    school: Text = ""
    patrons: list[PatronRecord] = msgspec.field(default_factory=list)
    cards: list[CardRecord] = msgspec.field(default_factory=list)
    items: list[ItemRecord] = msgspec.field(default_factory=list)
    policy: PolicyRecord | None = None
    calendar: CalendarRecord | None = None
    timetable: TimetableRecord | None = None


class ReferenceDelta(Struct, kw_only=True):
    """What changed since the kiosk's cursor (everything when ``full``)."""

    #: the server database's identity: a cursor from another database means "start again"
    epoch: str
    cursor: int
    full: bool
    kiosk_id: str
    #: this kiosk's highest event already reflected in ``loans``, counted in the journal
    #: incarnation ``incarnation`` (the one the kiosk asked for; None from older servers)
    applied_seq: int
    #: false while the librarian has loaded no reference data: the kiosk keeps what it has
    has_reference: bool
    school: str = ""
    patrons: list[PatronRecord] = msgspec.field(default_factory=list)
    patrons_removed: list[str] = msgspec.field(default_factory=list)
    cards: list[CardRecord] = msgspec.field(default_factory=list)
    cards_removed: list[str] = msgspec.field(default_factory=list)
    #: items with their current status (in repair, lost... as the server knows it)
    items: list[ItemRecord] = msgspec.field(default_factory=list)
    items_removed: list[str] = msgspec.field(default_factory=list)
    #: None: unchanged since the cursor
    policy: PolicyRecord | None = None
    calendar: CalendarRecord | None = None
    timetable: TimetableRecord | None = None
    #: loans opened or changed (at any kiosk), and items whose loan closed
    loans: list[LoanRecord] = msgspec.field(default_factory=list)
    loans_closed: list[str] = msgspec.field(default_factory=list)
    incarnation: str | None = None
    #: the school's time zone (an IANA name) in which the server counts days and due dates;
    #: a kiosk configured with another one says so in its log (None: an older server)
    timezone: str | None = None
    #: reading lists and co-reading counts (None: unchanged since the cursor, or an older server)
    reading: ReadingRecord | None = None


# --- for the librarian ------------------------------------------------------------------------


class KioskInfo(Struct):
    kiosk_id: str
    name: str
    #: when the kiosk's credential was issued: no event can be older
    provisioned: str
    last_contact: str | None
    #: its high-water mark (see PushReply.applied_seq)
    applied_seq: int
    events: int
    needs_review: int
    last_boot_id: str | None
    #: the kiosk's wall clock minus the server's at its last push (seconds; + is ahead)
    clock_offset_s: float | None


class KioskList(Struct):
    kiosks: list[KioskInfo]


class ImportChunk(Struct):
    from_seq: int
    to_seq: int
    applied: int
    applied_with_warning: int
    duplicate: int
    needs_review: int


class ImportReply(Struct):
    kiosk_id: str
    applied_seq: int
    chunks: list[ImportChunk]


class ErrorReply(Struct):
    #: a stable code (e.g. unauthorized, wrong_kiosk, invalid_request, busy)
    error: str
    detail: str


_encoder = msgspec.json.Encoder()


def encode(message: Any) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes, kind: type) -> Any:
    """Raises msgspec.DecodeError (not JSON) or msgspec.ValidationError (wrong shape).

    JSON has one kind of number, and the OpenAPI document's ``"type": "integer"`` (JSON
    Schema 2020-12) is any number with no fraction: ``7.0`` is the integer 7. msgspec's typed
    decoding refuses it, so a message that fails is decoded again as plain JSON, the
    integral floats where the type has an int made ints (never inside a free ``payload``),
    and converted, strictly, to its type: a kiosk's own messages keep the fast path."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as error:
        if "got `float`" not in str(error):  # msgspec's words for a number with a point where it wants an int
            raise
        try:
            plain = msgspec.json.decode(data)
        except RecursionError:
            raise error from None
        fixed, changed = _integral(plain, msgspec.inspect.type_info(kind))
        if not changed:
            raise error from None
        return msgspec.convert(fixed, kind)


def _integral(value: Any, kind: msgspec.inspect.Type) -> tuple[Any, bool]:
    """``value`` with each integral float where ``kind`` has an int made an int, and whether any was."""
    while isinstance(kind, msgspec.inspect.Metadata):
        kind = kind.type
    if isinstance(kind, msgspec.inspect.UnionType):
        if isinstance(value, float) and any(isinstance(t, msgspec.inspect.FloatType) for t in kind.types):
            return value, False
        for option in kind.types:
            fixed, changed = _integral(value, option)
            if changed:
                return fixed, True
        return value, False
    if isinstance(kind, msgspec.inspect.IntType):
        if isinstance(value, float) and value.is_integer():
            return int(value), True
        return value, False
    if isinstance(kind, msgspec.inspect.StructType) and isinstance(value, dict):
        out, any_changed = dict(value), False
        for field in kind.fields:
            if field.encode_name in out:
                out[field.encode_name], changed = _integral(out[field.encode_name], field.type)
                any_changed |= changed
        return out, any_changed
    if isinstance(kind, msgspec.inspect.ListType) and isinstance(value, list):
        items = [_integral(item, kind.item_type) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False


# A push's events decoded the fast way (``decode_push``): msgspec checks a string's pattern
# with a regular expression per field per event, 4-5 us an event, most of a push's decoding.
# These twins have the same fields, types and lengths but no patterns; the patterns are then
# checked over the whole batch at once (a character class over all the values joined, or each
# distinct value once), and a batch that fails is decoded again the strict way, so that the
# error is msgspec's own, word for word. They are WireEvent and PushRequest (subclasses).
class _LaxWireEvent(WireEvent, kw_only=True):
    event_id: Annotated[str, Meta(min_length=1, max_length=80)]
    kiosk_id: str
    boot_id: Annotated[str, Meta(min_length=1, max_length=80)]
    wall_time: Annotated[str, Meta(min_length=10, max_length=40)]
    actor: Annotated[str, Meta(min_length=1, max_length=128)]
    type: Annotated[str, Meta(min_length=1, max_length=64)]


class _LaxPushRequest(PushRequest, kw_only=True):
    events: Annotated[list[_LaxWireEvent], Meta(max_length=MAX_BATCH)]  # type: ignore[assignment]


def _pattern(kind: Any) -> re.Pattern[str]:
    return re.compile(next(m.pattern for m in typing.get_args(kind)[1:] if isinstance(m, Meta) and m.pattern))


_IDENTIFIER_CHARS = re.compile(r"[A-Za-z0-9._:-]*")  # Identifier's pattern, its length apart
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f]")  # what _PRINTABLE refuses
_KIOSK_ID, _IDENTIFIER, _TYPE_NAME = _pattern(KioskId), _pattern(Identifier), _pattern(EventTypeName)


def _patterns_hold(events: Sequence[WireEvent]) -> bool:
    """Whether every event's strings match WireEvent's patterns (their lengths were checked)."""
    if _IDENTIFIER_CHARS.fullmatch("".join([e.event_id for e in events])) is None:
        return False
    if _NOT_PRINTABLE.search("".join([e.wall_time for e in events])) or \
            _NOT_PRINTABLE.search("".join([e.actor for e in events])):
        return False
    return all(_KIOSK_ID.search(k) for k in {e.kiosk_id for e in events}) and \
        all(_IDENTIFIER.search(b) for b in {e.boot_id for e in events}) and \
        all(_TYPE_NAME.search(t) for t in {e.type for e in events})


def decode_push(data: bytes) -> PushRequest:
    """``decode(data, PushRequest)``, the same result and the same errors, about five times
    faster for a batch of ordinary events."""
    try:
        message = msgspec.json.decode(data, type=_LaxPushRequest)
    except msgspec.ValidationError:
        message = None
    if message is None or not _patterns_hold(message.events):
        return decode(data, PushRequest)  # the strict way: raises msgspec's own error
    return message
