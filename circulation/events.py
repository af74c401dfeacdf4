"""Events are facts: what happened at the kiosk, immutable, in order.

The rules produce ``EventDraft``s (what happened, by whom); the journal stamps them into
``Event``s (identity, per-kiosk sequence number, boot id, monotonic and wall clock) when
it makes them durable.

Each event type has one typed payload, defined here (msgspec structs, frozen): the rules
make them, the journal, the wire, the server's ingest and the reports read them by
attribute. Payloads are decoded from builtins (JSON, a TinyDB record, a wire event's
``payload``) only at the boundary, with ``decode_payload`` / ``decode_payload_json``: an
event type this code does not know (a newer kiosk's) decodes to ``UnknownPayload``, its
raw payload kept; an old name (``loan.returned``) decodes as the type it was renamed to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, cast

import msgspec

from bookcorner.circulation.model import ItemType


class EventType(StrEnum):
    CHECKED_OUT = "loan.checked_out"
    CHECKED_IN = "loan.checked_in"
    RENEWED = "loan.renewed"
    ITEM_DAMAGED = "item.damaged"
    ITEM_LOST = "item.lost"
    ITEM_FOUND = "item.found"
    ITEM_REPAIRED = "item.repaired"
    #: the librarian gave an unknown card to a patron (usable at once, offline)
    CARD_ENROLLED = "card.enrolled"
    #: the librarian registered a book the catalogue did not know (usable at once, offline)
    ITEM_REGISTERED = "item.registered"
    #: a scan that changed nothing, with the reason a child was given
    REFUSED = "scan.refused"
    UNKNOWN_CARD = "scan.unknown_card"
    UNKNOWN_ITEM = "scan.unknown_item"
    UNREADABLE = "scan.unreadable"
    #: the journal recovered from damage and could not save everything (see payload)
    JOURNAL_DAMAGE = "journal.damage"
    #: a stock-take of the shelf began at the kiosk (circulation/stocktake.py); one event per
    #: code scanned off the shelf, then one when it was finished (or given up)
    STOCKTAKE_STARTED = "stocktake.started"
    STOCKTAKE_SCANNED = "stocktake.scanned"
    STOCKTAKE_FINISHED = "stocktake.finished"

    @classmethod
    def _missing_(cls, value: object) -> EventType | None:
        return OLD_NAMES.get(value) if isinstance(value, str) else None


#: names earlier releases wrote (kiosk journals, pushes, USB exports, the central database's
#: stored events): they decode as the type they were renamed to
OLD_NAMES: dict[str, EventType] = {"loan.returned": EventType.CHECKED_IN}


_BY_NAME: dict[str, EventType] = {**{str(t): t for t in EventType}, **OLD_NAMES}


def event_type(name: str) -> EventType | None:
    """The event type a name (new or old) stands for; None for a type this code does not know."""
    return _BY_NAME.get(name)


#: events that change circulation state (the rest are records for the librarian)
STATE_CHANGING = frozenset(
    {
        EventType.CHECKED_OUT,
        EventType.CHECKED_IN,
        EventType.RENEWED,
        EventType.ITEM_DAMAGED,
        EventType.ITEM_LOST,
        EventType.ITEM_FOUND,
        EventType.ITEM_REPAIRED,
        EventType.CARD_ENROLLED,
        EventType.ITEM_REGISTERED,
    }
)


# --- the payloads ------------------------------------------------------------------------------
# Fields a kiosk always writes but a reader can do without have defaults, so a payload of an
# older or newer kiosk still decodes. Encoded, each is what the rules wrote before payloads were
# typed: every field, except where a field was written only sometimes (``omit_defaults``: a
# damage report's loan, a note) and is left out at its default (None) as it was then.


class _Payload(msgspec.Struct, frozen=True, kw_only=True):
    #: the event type whose payload this is
    TYPE: ClassVar[EventType]


class Checkout(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.CHECKED_OUT
    item_id: str
    patron_id: str
    card_id: str | None = None
    #: the code scanned
    code: str = ""
    due: date
    warnings: tuple[str, ...] = ()


class Checkin(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.CHECKED_IN
    item_id: str
    loan_id: str | None = None
    patron_id: str | None = None
    due: date | None = None
    #: the borrower's card was tapped
    with_card: bool = False
    #: closed by another act (a checkout to someone else, a damage report), not handed back
    implicit: bool = False
    warnings: tuple[str, ...] = ()


class Renewal(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.RENEWED
    item_id: str
    loan_id: str | None = None
    patron_id: str | None = None
    due_before: date | None = None
    due: date
    #: which renewal of the loan (1 for the first)
    renewal: int = 0


class ItemDamaged(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.ITEM_DAMAGED
    item_id: str
    note: str | None = None
    #: the loan it came back from, when it was on loan
    loan_id: str | None = None
    patron_id: str | None = None
    #: a student librarian who took it in for someone else (older kiosks)
    handled_by: str | None = None


class ItemLost(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.ITEM_LOST
    item_id: str
    note: str | None = None
    loan_id: str | None = None
    patron_id: str | None = None


class ItemFound(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.ITEM_FOUND
    item_id: str
    note: str | None = None


class ItemRepaired(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.ITEM_REPAIRED
    item_id: str
    note: str | None = None


class CardEnrolled(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.CARD_ENROLLED
    card_id: str
    patron_id: str
    #: the patron's cards this one replaces (recorded as lost)
    replaces: tuple[str, ...] | None = None


class NewItem(msgspec.Struct, frozen=True, kw_only=True):
    """A book registered at a kiosk, as the kiosk recorded it."""

    item_id: str
    title: str
    barcode: str | None = None
    isbn13: str | None = None
    isbn10: str | None = None
    author: str | None = None
    call_number: str | None = None
    item_type: ItemType = ItemType.CIRCULATING
    home_corner: str | None = None


class ItemRegistered(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.ITEM_REGISTERED
    item: NewItem
    code: str | None = None


class LoanNote(msgspec.Struct, frozen=True, kw_only=True):
    """A loan named in a refusal (the overdue book, the books already held)."""

    item_id: str
    title: str = ""
    due: str = ""


class Refused(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    """A scan that changed nothing: the reason code and the facts the child was given."""

    TYPE = EventType.REFUSED
    reason: str = ""
    code: str = ""
    item_id: str | None = None
    title: str | None = None
    patron_id: str | None = None
    card_id: str | None = None
    card_status: str | None = None
    item_type: str | None = None
    status: str | None = None
    action: str | None = None
    due: str | None = None
    #: how many books the patron has on loan (``held`` in the journal and on the wire, as before)
    loan_count: int | None = msgspec.field(default=None, name="held")
    limit: int | None = None
    renewals: int | None = None
    on_loan: int | None = None
    overdue: tuple[LoanNote, ...] | None = None
    loans: tuple[LoanNote, ...] | None = None


class UnknownCard(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.UNKNOWN_CARD
    code: str = ""


class UnknownItem(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.UNKNOWN_ITEM
    code: str = ""
    isbn13: str | None = None


class Unreadable(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.UNREADABLE
    code: str = ""


class DamageNote(msgspec.Struct, frozen=True, kw_only=True):
    segment: str = ""
    #: corrupt_records | unreadable | gap
    kind: str = ""
    detail: str = ""
    kept_at: str | None = None


class JournalDamage(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.JOURNAL_DAMAGE
    damage: tuple[DamageNote, ...] = ()


class StocktakeStarted(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.STOCKTAKE_STARTED
    stocktake_id: str
    #: the corners (classes) whose books stand on this shelf; None: every book of the catalogue
    shelf: tuple[str, ...] | None = None
    #: who started it (a librarian's or student librarian's patron id)
    patron_id: str | None = None


class StocktakeScanned(_Payload, frozen=True, kw_only=True):
    TYPE = EventType.STOCKTAKE_SCANNED
    stocktake_id: str
    #: the code as scanned (the result is worked out from the codes: stocktake.reconcile)
    code: str


class StocktakeFinished(_Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = EventType.STOCKTAKE_FINISHED
    stocktake_id: str
    scans: int = 0
    #: given up before the end: its scans say nothing about what is missing
    cancelled: bool = False


class UnknownPayload(msgspec.Struct, frozen=True):
    """The payload of an event type this code does not know (a newer kiosk's), or one a
    record type's struct could not take: kept as it came, for review."""

    raw: Mapping[str, Any]


TypedPayload = (Checkout | Checkin | Renewal | ItemDamaged | ItemLost | ItemFound | ItemRepaired | CardEnrolled
                | ItemRegistered | Refused | UnknownCard | UnknownItem | Unreadable | JournalDamage | StocktakeStarted
                | StocktakeScanned | StocktakeFinished)
Payload = TypedPayload | UnknownPayload

PAYLOAD_TYPES: dict[EventType, type[_Payload]] = {t.TYPE: t for t in (
    Checkout, Checkin, Renewal, ItemDamaged, ItemLost, ItemFound, ItemRepaired, CardEnrolled, ItemRegistered,
    Refused, UnknownCard, UnknownItem, Unreadable, JournalDamage, StocktakeStarted, StocktakeScanned,
    StocktakeFinished)}
#: every payload class, for an isinstance check
PAYLOAD_CLASSES: tuple[type, ...] = (*PAYLOAD_TYPES.values(), UnknownPayload)
_JSON_DECODERS = {kind: msgspec.json.Decoder(struct) for kind, struct in PAYLOAD_TYPES.items()}
_RAW = msgspec.json.Decoder(dict[str, Any])


# --- decoding at the boundary --------------------------------------------------------------------


class PayloadInvalid(ValueError):
    """A payload that does not fit its event type's struct: ``field`` (a path such as
    ``payload.due``) and ``rule`` (what msgspec found wrong, never the value)."""

    def __init__(self, event_type: str, field: str, rule: str) -> None:
        super().__init__(f"{event_type}: {field}: {rule}")
        self.event_type, self.field, self.rule = event_type, field, rule


def _invalid(event_type: str, error: msgspec.ValidationError) -> PayloadInvalid:
    # msgspec names the rule and the path ("Expected `str`, got `int` - at `$.patron_id`")
    rule, _, path = str(error).partition(" - at `")
    return PayloadInvalid(event_type, "payload" + path.rstrip("`").removeprefix("$"), rule)


def decode_payload(type_name: str, raw: Any) -> Payload:
    """An event's payload from builtins (a TinyDB record's, a wire event's): the typed
    payload of its type (old names too), ``UnknownPayload`` for a type this code does not
    know. Raises PayloadInvalid when it does not fit its type."""
    kind = event_type(type_name)
    if kind is None:
        return UnknownPayload(raw if isinstance(raw, Mapping) else {})
    try:
        return cast(TypedPayload, msgspec.convert(raw, PAYLOAD_TYPES[kind]))
    except msgspec.ValidationError as error:
        raise _invalid(str(type_name), error) from None


def decode_payload_json(type_name: str, text: str | bytes) -> Payload:
    """``decode_payload`` straight from a payload's JSON text (as the central database stores it)."""
    kind = event_type(type_name)
    if kind is None:
        return UnknownPayload(_RAW.decode(text))
    try:
        return cast(TypedPayload, _JSON_DECODERS[kind].decode(text))
    except msgspec.ValidationError as error:
        raise _invalid(str(type_name), error) from None


def decode_or_raw(type_name: str, raw: Any) -> Payload:
    """``decode_payload``, keeping a payload that does not fit as ``UnknownPayload`` (for
    what reads back events already kept for review)."""
    try:
        return decode_payload(type_name, raw)
    except PayloadInvalid:
        return UnknownPayload(raw if isinstance(raw, Mapping) else {})


def decode_json_or_raw(type_name: str, text: str | bytes) -> Payload:
    """``decode_payload_json``, keeping a payload that does not fit (or is no JSON object) as
    ``UnknownPayload``: what reads stored events back (reports, exports, review pages)."""
    try:
        return decode_payload_json(type_name, text)
    except (PayloadInvalid, msgspec.DecodeError):
        try:
            raw = _RAW.decode(text)
        except msgspec.DecodeError:
            raw = {}
        return UnknownPayload(raw)


def payload_builtins(payload: Payload) -> dict[str, Any]:
    """A payload as plain dicts and lists again, for JSON and TinyDB."""
    if isinstance(payload, UnknownPayload):
        return dict(payload.raw)
    out: dict[str, Any] = msgspec.to_builtins(payload)
    return out


def _text_field(payload: Payload, name: str) -> str | None:
    """One text field of any payload (a raw one's too), None when it has none or it is no text."""
    value = payload.raw.get(name) if isinstance(payload, UnknownPayload) else getattr(payload, name, None)
    return value if isinstance(value, str) else None


# What the reports and review pages ask of any event, whatever its type (and of a payload kept
# raw for review, what it says): None when it names none.


def item_id_of(payload: Payload) -> str | None:
    return _text_field(payload, "item_id")


def patron_id_of(payload: Payload) -> str | None:
    return _text_field(payload, "patron_id")


def loan_id_of(payload: Payload) -> str | None:
    return _text_field(payload, "loan_id")


def card_id_of(payload: Payload) -> str | None:
    return _text_field(payload, "card_id")


def code_of(payload: Payload) -> str | None:
    return _text_field(payload, "code")


def new_title_of(payload: Payload) -> str | None:
    """The title of a book registered at a kiosk."""
    if isinstance(payload, ItemRegistered):
        return payload.item.title
    item = payload.raw.get("item") if isinstance(payload, UnknownPayload) else None
    title = item.get("title") if isinstance(item, Mapping) else None
    return title if isinstance(title, str) else None


@dataclass(frozen=True, slots=True)
class EventDraft:
    type: EventType
    #: who did it: a patron id, or "kiosk" for anonymous acts (a return without a card)
    actor: str
    payload: TypedPayload


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    kiosk_id: str
    seq: int
    boot_id: str
    monotonic_ns: int
    #: ISO 8601 with UTC offset, as the kiosk's clock read it
    wall_time: str
    clock_synced: bool
    actor: str
    type: EventType
    payload: Payload

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kiosk_id": self.kiosk_id,
            "seq": self.seq,
            "boot_id": self.boot_id,
            "monotonic_ns": self.monotonic_ns,
            "wall_time": self.wall_time,
            "clock_synced": self.clock_synced,
            "actor": self.actor,
            "type": str(self.type),
            "payload": payload_builtins(self.payload),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, keep_raw: bool = False) -> Event:
        """An event from a journal record (old type names too). Raises PayloadInvalid, or
        with ``keep_raw`` keeps a payload that does not fit as ``UnknownPayload``."""
        kind = EventType(record["type"])
        decode = decode_or_raw if keep_raw else decode_payload
        return cls(
            event_id=record["event_id"],
            kiosk_id=record["kiosk_id"],
            seq=record["seq"],
            boot_id=record["boot_id"],
            monotonic_ns=record["monotonic_ns"],
            wall_time=record["wall_time"],
            clock_synced=record["clock_synced"],
            actor=record["actor"],
            type=kind,
            payload=decode(kind, record["payload"]),
        )
