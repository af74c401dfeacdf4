"""Where the daemon is: the highest event the server acknowledged, and the batch in flight.

Only the daemon writes it (``sync/position.db``, replaced whole and fsync'ed after every
acknowledged batch), so a crash or power cut resumes from the last acknowledgement: at
most one batch is sent again, under the same batch id, and the server answers it from
its record of that batch. If the file is lost the daemon starts from 0 and sends the
journal again: the server answers what it has as duplicates (by event id) and stores what
it lacks. The daemon never takes the server's high-water mark past the batch it sent as
its own: a journal that went back in time (restored, copied back) may hold, under
numbers the server has seen, events the server has never seen.

The position counts in one journal incarnation (journal.incarnation): a new incarnation
starts from what the one it continues had acknowledged before the new one began.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bookcorner.journal.incarnation import Incarnation
from bookcorner.journal.snapshot import SnapshotStorage
from bookcorner.journal.storage import StoreError

log = logging.getLogger(__name__)
POSITION_FILE = "position.db"


@dataclass(frozen=True)
class Position:
    acked_seq: int = 0
    #: the batch sent but not yet acknowledged: resent with the same id and range
    inflight_batch: str | None = None
    inflight_from: int = 0
    inflight_to: int = 0
    #: the journal incarnation ``acked_seq`` counts in (None: written before incarnations)
    incarnation: str | None = None


def position_for(position: Position, journal: Incarnation | None) -> Position:
    """Where to push ``journal`` from: ``position`` when it counts in that incarnation;
    for an incarnation that continues the position's, what was acknowledged before the new
    one began; else (a journal the daemon never saw) from the start."""
    if journal is None or position.incarnation == journal.incarnation_id:
        return position
    if position.incarnation is None and not journal.went_back:
        # kept beside this journal before positions named one: it counts in this journal
        return replace(position, incarnation=journal.incarnation_id)
    if position.incarnation == journal.previous:
        return Position(min(position.acked_seq, journal.since_seq - 1), incarnation=journal.incarnation_id)
    return Position(0, incarnation=journal.incarnation_id)


def load_position(sync_dir: str | os.PathLike[str]) -> Position:
    try:
        tables = SnapshotStorage(Path(sync_dir) / POSITION_FILE).read()
    except StoreError as error:
        log.error("sync position unreadable (%s): starting from 0; the server's answer brings it forward", error)
        return Position()
    record = (tables or {}).get("position", {}).get("1")
    if not record:
        return Position()
    try:
        return Position(**{k: record[k] for k in Position.__dataclass_fields__ if k in record})
    except TypeError:
        return Position()


def save_position(sync_dir: str | os.PathLike[str], position: Position) -> None:
    SnapshotStorage(Path(sync_dir) / POSITION_FILE).write({"position": {"1": asdict(position)}})
