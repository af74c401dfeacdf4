"""Where the daemon is: the highest event the server acknowledged, and the batch in flight.

Only the daemon writes it (``sync/position.db``, replaced whole and fsync'ed after every
acknowledged batch), so a crash or power cut resumes from the last acknowledgement: at
most one batch is sent again, under the same batch id, and the server answers it from
its record of that batch. If the file is lost the daemon starts from 0 and the server's
reply to the first batch (all duplicates, and its high-water mark) brings it forward
again: one batch resent, not the whole journal.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from journal.snapshot import SnapshotStorage
from journal.storage import StoreError

log = logging.getLogger(__name__)
POSITION_FILE = "position.db"


@dataclass(frozen=True)
class Position:
    acked_seq: int = 0
    #: the batch sent but not yet acknowledged: resent with the same id and range
    inflight_batch: str | None = None
    inflight_from: int = 0
    inflight_to: int = 0


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
