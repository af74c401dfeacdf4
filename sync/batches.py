"""Reading the next batch of unacknowledged events from the kiosk's journal (read only).

A gap in the sequence numbers is sent as such (the server records the numbers as lost)
only when the journal itself says events were lost: ``bookcorner journal repair``
records a ``journal.damage`` event after setting a damaged segment aside. A gap with no
such record may be a segment that cannot be read right now: the daemon stops before it
and says so, rather than tell the server those events never existed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bookcorner.circulation.events import EventType
from bookcorner.i18n import _
from bookcorner.journal import incarnation
from bookcorner.journal.journal import JournalReader
from bookcorner.protocol.messages import JournalIdentity


def journal_identity(journal_dir: str | os.PathLike[str]) -> JournalIdentity | None:
    """The journal's incarnation as the wire names it; None until a writer of this version
    has opened the journal (the server then goes on with the incarnation it knows)."""
    found = incarnation.load(journal_dir)
    if found is None:
        return None
    return JournalIdentity(incarnation=found.incarnation_id, since_seq=found.since_seq, reason=str(found.reason),
                           previous=found.previous, restored_from=found.restored_from)


class UnreadableEvents(Exception):
    def __init__(self, start: int, end: int) -> None:
        super().__init__(_("events {start} to {end} cannot be read from the journal; run `bookcorner journal check` "
                           "(and `bookcorner journal repair` if it finds damage)").format(start=start, end=end))
        self.start, self.end = start, end


@dataclass(frozen=True)
class PendingBatch:
    from_seq: int
    to_seq: int
    #: the journal's records, as stored (the wire event's fields)
    events: tuple[dict[str, Any], ...]


def records_after(journal_dir: str | os.PathLike[str], seq: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The journal's event records after ``seq``, in order, as stored."""
    return JournalReader(journal_dir).records_after(seq, limit)


def _damage_recorded_after(journal_dir: str | os.PathLike[str], seq: int) -> bool:
    return any(r.get("type") == EventType.JOURNAL_DAMAGE for r in records_after(journal_dir, seq))


def next_batch(
    journal_dir: str | os.PathLike[str], after: int, limit: int, *, up_to: int | None = None
) -> PendingBatch:
    """Events after ``after``, at most ``limit`` (and none past ``up_to``, to resend a
    batch in flight exactly). An empty batch has ``to_seq == after``."""
    events: list[dict[str, Any]] = []
    expected = after + 1
    for record in records_after(journal_dir, after, limit=limit):
        seq = record["seq"]
        if up_to is not None and seq > up_to:
            break
        if seq != expected and not _damage_recorded_after(journal_dir, seq - 1):
            if not events:
                raise UnreadableEvents(expected, seq - 1)
            break
        events.append(record)
        expected = seq + 1
    return PendingBatch(after + 1, events[-1]["seq"] if events else after, tuple(events))
