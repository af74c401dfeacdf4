"""Events are facts: what happened at the kiosk, immutable, in order.

The rules produce ``EventDraft``s (what happened, by whom); the journal stamps them into
``Event``s (identity, per-kiosk sequence number, boot id, monotonic and wall clock) when
it makes them durable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class EventType(StrEnum):
    CHECKED_OUT = "loan.checked_out"
    RETURNED = "loan.returned"
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


#: events that change circulation state (the rest are records for the librarian)
STATE_CHANGING = frozenset(
    {
        EventType.CHECKED_OUT,
        EventType.RETURNED,
        EventType.RENEWED,
        EventType.ITEM_DAMAGED,
        EventType.ITEM_LOST,
        EventType.ITEM_FOUND,
        EventType.ITEM_REPAIRED,
        EventType.CARD_ENROLLED,
        EventType.ITEM_REGISTERED,
    }
)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, for serialisation."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class EventDraft:
    type: EventType
    #: who did it: a patron id, or "kiosk" for anonymous acts (a return without a card)
    actor: str
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", _freeze(self.payload))


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
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", _freeze(self.payload))

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
            "payload": thaw(self.payload),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Event:
        return cls(
            event_id=record["event_id"],
            kiosk_id=record["kiosk_id"],
            seq=record["seq"],
            boot_id=record["boot_id"],
            monotonic_ns=record["monotonic_ns"],
            wall_time=record["wall_time"],
            clock_synced=record["clock_synced"],
            actor=record["actor"],
            type=EventType(record["type"]),
            payload=record["payload"],
        )
