"""A checkpoint of the circulation state, so that a restart replays only recent events.

The state is a projection of reference snapshot + events and can always be rebuilt; the
checkpoint only saves time. It is written whole (atomic replace) every segment's worth of
events and on a clean shutdown, and trusted only if it was built on the same reference
snapshot and the journal still holds, at the checkpoint's sequence number, the very event
it names. Anything else (a repaired journal, a new snapshot, a damaged file) means a full
rebuild, never a wrong state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import msgspec

from bookcorner.circulation.model import Card, ItemStatus
from bookcorner.circulation.state import CirculationState, Loan, item_from_payload
from bookcorner.journal.snapshot import SnapshotStorage
from bookcorner.journal.storage import StoreError

log = logging.getLogger(__name__)

FORMAT = "bookcorner.state-checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    state: CirculationState
    reference_version: str
    applied_seq: int
    last_event_id: str


class CheckpointStore:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "state.db"

    def load(self) -> Checkpoint | None:
        try:
            tables = SnapshotStorage(self.path).read()
        except StoreError as error:
            log.warning("state checkpoint unusable, rebuilding from the journal: %s", error)
            return None
        if not tables:
            return None
        try:
            meta = tables["meta"]["1"]
            if meta.get("format") != FORMAT:
                return None
            loans = {k: msgspec.convert(v, Loan, strict=False) for k, v in tables.get("loans", {}).items()}
            by_patron: dict[str, tuple[str, ...]] = {}
            for loan in sorted(loans.values(), key=lambda l: (l.since, l.item_id)):
                by_patron[loan.patron_id] = by_patron.get(loan.patron_id, ()) + (loan.item_id,)
            status = {k: ItemStatus(v["status"]) for k, v in tables.get("item_status", {}).items()}
            cards = {k: msgspec.convert(v, Card, strict=False) for k, v in tables.get("enrolled_cards", {}).items()}
            items = {k: item_from_payload(v) for k, v in tables.get("registered_items", {}).items()}
            state = CirculationState(loans=loans, by_patron=by_patron, item_status=status, last_seq=meta["last_seq"],
                                     enrolled_cards=cards, registered_items=items)
            return Checkpoint(state, meta["reference_version"], meta["applied_seq"], meta["last_event_id"])
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as error:
            log.warning("state checkpoint unreadable, rebuilding from the journal: %s", error)
            return None

    def save(self, state: CirculationState, reference_version: str, applied_seq: int, last_event_id: str) -> None:
        tables = {
            "meta": {"1": {"format": FORMAT, "reference_version": reference_version, "applied_seq": applied_seq,
                           "last_seq": state.last_seq, "last_event_id": last_event_id}},
            "loans": {item_id: msgspec.to_builtins(loan) for item_id, loan in state.loans.items()},
            "item_status": {item_id: {"status": str(s)} for item_id, s in state.item_status.items()},
            "enrolled_cards": {card_id: msgspec.to_builtins(card) for card_id, card in state.enrolled_cards.items()},
            "registered_items": {item_id: msgspec.to_builtins(item) for item_id, item in state.registered_items.items()},
        }
        SnapshotStorage(self.path).write(tables)
