"""An in-memory stand-in for the journal's stamping, so rule tests stay pure: each
decision's drafts become events with consecutive sequence numbers and are applied."""

from __future__ import annotations

from datetime import datetime

from bookcorner.circulation.events import Event
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.rules import Decision
from bookcorner.circulation.state import CirculationState, apply, initial_state


class Ledger:
    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self.state: CirculationState = initial_state(reference)
        self.events: list[Event] = []

    def record(self, decision: Decision, now: datetime) -> Decision:
        for draft in decision.events:
            seq = len(self.events) + 1
            event = Event(
                event_id=f"e{seq:05d}",
                kiosk_id="test",
                seq=seq,
                boot_id="boot",
                monotonic_ns=seq,
                wall_time=now.isoformat(),
                clock_synced=True,
                actor=draft.actor,
                type=draft.type,
                payload=draft.payload,
            )
            self.events.append(event)
            self.state = apply(self.state, event)
        return decision
