"""What an event's payload must be before anything of it reaches the database.

The protocol's types (``protocol.messages.WireEvent``) pin every column of ``events``
except the payload, which is free JSON: a newer kiosk may add fields. But some payload
fields go into columns (``item_state``, ``loans``, ``cards``, ``catalogue``: String(80))
or into lookups, where PostgreSQL refuses what SQLite takes (an id over 80 characters:
``StringDataRightTruncation``; a NUL: ``UntranslatableCharacter``). One such event used to
make the whole push fail (500), and the daemon resent it forever while every later loan of
that corner waited behind it.

So every event is checked here, before the write lock, as a pure function of the event.
One that does not fit is still stored (its payload as JSON text, where a NUL is the
escape ``\\u0000`` and harms nothing) and kept for review as ``invalid_payload``, with a
detail naming the field and the problem, never the value (it may be a child's name);
the rest of the batch applies. Nothing of it is replayed, looked up or written elsewhere.

An event that fits is then decoded into its type's payload (``circulation.events``): this
module and that one are the only places a payload is read by key. A payload its type's
struct refuses is kept for review the same way when its event changes a book or the
reference data; a record (a refusal, an unknown code, a damage report) is kept as it came
(``UnknownPayload``), applied as a record as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

import msgspec

from bookcorner.circulation.events import (
    OLD_NAMES,
    EventType,
    Payload,
    PayloadInvalid,
    UnknownPayload,
    decode_payload,
)
from bookcorner.circulation.replay import ADDITIONS, CHANGES_ITEMS
from bookcorner.protocol.messages import ItemRecord, WireEvent

#: the longest id a column holds (item_state, loans, cards, catalogue: String(80))
MAX_ID = 80
#: deeper than this a payload is not something a kiosk wrote (its own are 3 deep at most)
MAX_DEPTH = 32
#: the largest payload (as JSON text) taken as an event; a kiosk's are well under 2 KiB
MAX_PAYLOAD_BYTES = 64 * 1024
#: the most cards one enrolment may replace
MAX_REPLACES = 100
#: ids are printable: no NUL (PostgreSQL text cannot hold it) and no other control character
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: the values a payload holds that nest nothing (what a JSON decoder gives besides dicts and lists)
_FLAT = frozenset({str, int, float, bool, type(None)})
#: the payload fields that become columns or lookups, by the event types that replay them
_ID_FIELDS = ("item_id", "patron_id", "card_id", "loan_id")


class Problem(msgspec.Struct, frozen=True):
    """Why an event's payload was not taken: ``field`` (a path such as ``payload.item_id``)
    and ``problem`` (a code: too_long, empty, control_character, not_a_string, not_a_list,
    too_many, too_deep, too_large, invalid_item), with what the limit was."""

    field: str
    problem: str
    limit: int | None = None
    #: for an item: the rule it breaks, as msgspec words it
    rule: str | None = None

    def detail(self, event_type: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": event_type, "field": self.field, "problem": self.problem}
        if self.limit is not None:
            out["limit"] = self.limit
        if self.rule is not None:
            out["rule"] = self.rule
        return out


def problem_of(event: WireEvent, payload_text: str) -> Problem | None:
    """The first thing about ``event``'s payload the database (or replay) cannot take,
    or None when it fits. ``payload_text``: the payload as it will be stored."""
    # (a character is at most 4 bytes in UTF-8: most payloads are measured without encoding them)
    if len(payload_text) * 4 > MAX_PAYLOAD_BYTES and len(payload_text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        return Problem("payload", "too_large", MAX_PAYLOAD_BYTES)
    if _depth_over(event.payload, MAX_DEPTH):
        return Problem("payload", "too_deep", MAX_DEPTH)
    kind = event.type
    if kind not in CHANGES_ITEMS and kind not in ADDITIONS:
        return None  # records and unknown types: nothing of the payload leaves the events table
    payload = event.payload
    for name in _ID_FIELDS:
        if name in payload and payload[name] is not None:
            found = _id_problem(f"payload.{name}", payload[name])
            if found is not None:
                return found
    if kind == EventType.CARD_ENROLLED:
        replaces = payload.get("replaces")
        if replaces is not None:
            if not isinstance(replaces, list):
                return Problem("payload.replaces", "not_a_list")
            if len(replaces) > MAX_REPLACES:
                return Problem("payload.replaces", "too_many", MAX_REPLACES)
            for index, value in enumerate(replaces):
                found = _id_problem(f"payload.replaces[{index}]", value)
                if found is not None:
                    return found
    if kind == EventType.ITEM_REGISTERED:
        try:
            msgspec.convert(payload.get("item"), ItemRecord)
        except msgspec.ValidationError as error:
            # msgspec names the rule and the path (``Expected `str` of length <= 80 - at
            # `$.item_id```), never the value
            rule, _, path = str(error).partition(" - at `")
            return Problem("payload.item" + path.rstrip("`").removeprefix("$"), "invalid_item", rule=rule)
    return None


def decoded(event: WireEvent, payload_text: str) -> Payload | Problem:
    """``event``'s typed payload, or the first problem with it (``problem_of``, then its type's
    struct). ``event`` carries its type's current name (``canonical``)."""
    found = problem_of(event, payload_text)
    if found is not None:
        return found
    try:
        return decode_payload(event.type, event.payload)
    except PayloadInvalid as error:
        if event.type in CHANGES_ITEMS or event.type in ADDITIONS:
            return Problem(error.field, "invalid", rule=error.rule)
        return UnknownPayload(event.payload)


def stored_decoded(event_type: str, raw: dict[str, Any]) -> Payload | Problem:
    """``decoded`` for a payload read back from the database (an event kept for review that
    a librarian accepts or corrects): its problem, or its typed payload."""
    found = problem_in(event_type, raw)
    if found is not None:
        return found
    try:
        return decode_payload(event_type, raw)
    except PayloadInvalid as error:
        return Problem(error.field, "invalid", rule=error.rule)


def canonical(event: WireEvent) -> WireEvent:
    """``event`` under its type's current name (an older kiosk's ``loan.returned`` is a
    ``loan.checked_in``): stored, replayed and reported under that one name."""
    new = OLD_NAMES.get(event.type)
    return event if new is None else msgspec.structs.replace(event, type=str(new))


def fits(value: Any) -> TypeGuard[str]:
    """Whether ``value`` can be an id in a column or a lookup (for what reads stored
    payloads back: an event kept for review may name an id that cannot)."""
    return _id_problem("", value) is None


def problem_in(event_type: str, payload: dict[str, Any]) -> Problem | None:
    """``problem_of`` for a payload read back from the database (a librarian's correction)."""
    text = msgspec.json.encode(payload).decode("utf-8")
    return problem_of(WireEvent(event_id="-", kiosk_id="-", seq=1, boot_id="-", monotonic_ns=0, wall_time="-",
                                clock_synced=False, actor="-", type=event_type, payload=payload), text)


def _id_problem(field: str, value: Any) -> Problem | None:
    if not isinstance(value, str):
        return Problem(field, "not_a_string")
    if not value:
        return Problem(field, "empty")
    if len(value) > MAX_ID:
        return Problem(field, "too_long", MAX_ID)
    if _CONTROL.search(value):
        return Problem(field, "control_character")
    return None


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (without recursion: a payload may be
    nested as deep as the JSON decoder allows)."""
    if type(value) is dict and limit >= 2:  # most payloads: one object of plain values (and lists of
        for v in value.values():  # plain values, as a checkout's "warnings": []), seen without a walk
            if type(v) not in _FLAT and type(v) is not tuple and \
                    not (type(v) is list and all(type(x) in _FLAT for x in v)):
                break
        else:
            return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    flat = _FLAT
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(current, Mapping):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        for v in children:  # (a plain value by its exact type first: an ABC's isinstance costs ~0.3 us)
            if type(v) not in flat and isinstance(v, (Mapping, list)):
                stack.append((v, depth + 1))
    return False
