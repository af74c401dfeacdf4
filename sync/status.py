"""What the sync daemon tells the kiosk, and how the kiosk asks it to sync now.

The daemon is the only writer of ``sync/status.db`` (replaced whole, so the kiosk always
reads one complete version); the kiosk only reads it, for the sync badge and the
librarian's end-of-day view. To ask for a sync now, the kiosk (or the librarian) creates
``sync/wake``; the daemon notices within a second, removes it and starts a round.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from bookcorner.journal.snapshot import SnapshotStorage
from bookcorner.journal.storage import StoreError

STATUS_FILE = "status.db"
WAKE_FILE = "wake"


class Phase(StrEnum):
    NEVER = "never"  # no sync has been tried yet
    IDLE = "idle"  # the last round succeeded; waiting for the next
    SYNCING = "syncing"
    OFFLINE = "offline"  # the server could not be reached (no network, DNS, refused, timeout)
    BUSY = "busy"  # the server has too many kiosks at once (429): the daemon tries again after Retry-After
    ERROR = "error"  # the server answered, but not as it should (rejected, malformed reply...)


@dataclass(frozen=True)
class SyncStatus:
    phase: Phase = Phase.NEVER
    #: highest journal sequence number the server has acknowledged
    acked_seq: int = 0
    #: ISO 8601 times of the last round that ended with everything acknowledged, and of the last try
    last_success: str | None = None
    last_attempt: str | None = None
    #: why the last round failed, for the librarian (already in the kiosk's language)
    last_error: str | None = None
    #: progress of the round under way: events sent so far out of those to send
    sent: int = 0
    to_send: int = 0
    #: events the server kept for a librarian's review
    needs_review: int = 0
    #: the reference snapshot version last pulled
    reference_version: str | None = None
    #: after a failed round: when the daemon tries again by itself (ISO 8601); a sync
    #: request (``request_sync``) starts a round at once whatever this says
    next_attempt: str | None = None
    #: the journal incarnation ``acked_seq`` counts in
    incarnation: str | None = None
    #: the server has answered a push made under ``incarnation`` (until then, what it holds
    #: from before a restore is not known here)
    incarnation_told: bool = False
    #: what the server found about this journal going back in time (journal.incarnation):
    #: "restored" | "repaired" | "went_back"; None when nothing did
    journal_notice: str | None = None
    #: events (and loans among them) the server holds from before a restore or repair that
    #: are not in this journal any more (their loans come back with the reference data)
    events_not_here: int = 0
    loans_not_here: int = 0
    #: went_back: the server had events of this journal up to here, past the journal's end
    server_seq: int = 0

    def waiting(self, journal_last_seq: int) -> int:
        """Events recorded here that the server has not acknowledged yet."""
        return max(0, journal_last_seq - self.acked_seq)


def _folder(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "sync"


def read_status(data_dir: str | os.PathLike[str]) -> SyncStatus:
    """The daemon's last word; a missing or damaged file reads as "never synced"."""
    try:
        tables = SnapshotStorage(_folder(data_dir) / STATUS_FILE).read()
    except StoreError:
        return SyncStatus(phase=Phase.ERROR, last_error="sync status unreadable")
    if not tables:
        return SyncStatus()
    values = dict(tables.get("status", {}).get("1", {}))
    known = set(SyncStatus.__dataclass_fields__)
    values = {k: v for k, v in values.items() if k in known}
    try:
        values["phase"] = Phase(values.get("phase", Phase.NEVER))
        return SyncStatus(**values)
    except (TypeError, ValueError):
        return SyncStatus(phase=Phase.ERROR, last_error="sync status unreadable")


def write_status(data_dir: str | os.PathLike[str], status: SyncStatus) -> None:
    """Only the sync daemon calls this."""
    record = asdict(status)
    record["phase"] = str(status.phase)
    SnapshotStorage(_folder(data_dir) / STATUS_FILE).write({"status": {"1": record}})


def request_sync(data_dir: str | os.PathLike[str]) -> None:
    """Ask the daemon for a round now (idempotent; safe from any process)."""
    folder = _folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WAKE_FILE).touch()


def take_wake_request(data_dir: str | os.PathLike[str]) -> bool:
    """The daemon's side: True (once) if a sync was requested."""
    try:
        (_folder(data_dir) / WAKE_FILE).unlink()
        return True
    except FileNotFoundError:
        return False
