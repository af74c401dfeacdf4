"""A journal's identity (its *incarnation*), and what the librarian has seen of its changes.

Sequence numbers alone cannot tell a journal that goes on from one that went back in time:
a kiosk restored from last week's backup, re-imaged and paired again, reset, or repaired
after losing its newest segment numbers its next events with numbers the server has
already seen for other events. So every journal carries an incarnation id, made when the
journal is created and made anew whenever it may have gone back (``restore``, a repair
that lost events, a journal that finds the server ahead of it). The server tracks each
(kiosk, incarnation) on its own and never takes what it acknowledged for one incarnation
as an acknowledgement for another (docs/protocol.md, "Journal incarnations").

``journal/incarnation.db`` is written by whoever creates the incarnation (the journal's
writer, or ``bookcorner restore`` before any writer exists), replaced whole. The
librarian's "seen" marks live apart, in ``state/seen.db``: the kiosk's screen and
``bookcorner journal seen`` write them while the kiosk runs.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path

from bookcorner.journal.storage import parse, write_new_file

INCARNATION_FILE = "incarnation.db"
SEEN_FILE = "seen.db"


class Reason(StrEnum):
    """Why an incarnation began."""

    #: a new, empty journal (first start, a re-imaged card, ``demo --reset``)
    NEW = "new"
    #: a journal written before incarnations existed, named as it is (nothing went back)
    UPGRADED = "upgraded"
    #: ``bookcorner restore`` put a backup in place
    RESTORED = "restored"
    #: ``bookcorner journal repair`` set aside a segment and lost its events
    REPAIRED = "repaired"
    #: the server had more of this journal than the journal holds (copied back by hand?)
    WENT_BACK = "went_back"


@dataclass(frozen=True)
class Incarnation:
    incarnation_id: str
    #: the first sequence number of this incarnation's own events (those before it were
    #: recorded by the journal it continues, ``previous``)
    since_seq: int
    reason: Reason
    created: str
    previous: str | None = None
    #: when the backup was made (``restored``)
    restored_from: str | None = None

    @classmethod
    def begin(cls, reason: Reason, since_seq: int, previous: str | None = None,
              restored_from: str | None = None) -> Incarnation:
        return cls(uuid.uuid4().hex, since_seq, reason, _now(), previous, restored_from)

    @classmethod
    def first(cls, first_seq: int, has_events: bool) -> Incarnation:
        """The name a journal gets when it has none: a new journal's (numbered from
        ``first_seq``), or that of a journal written before incarnations (it goes on as it
        was: nothing went back)."""
        return cls.begin(Reason.UPGRADED if has_events else Reason.NEW, 1 if has_events else first_seq)

    @property
    def went_back(self) -> bool:
        """Whether this incarnation began because the journal may have gone back in time."""
        return self.reason in (Reason.RESTORED, Reason.REPAIRED, Reason.WENT_BACK)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read(path: Path) -> dict:
    """The one record a file written by ``_write`` holds ({} if none, or damaged)."""
    try:
        parsed = parse(path.read_bytes())
    except OSError:
        return {}
    return parsed.tables if parsed.records == 1 and not parsed.corrupt else {}


def _write(path: Path, tables: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_new_file(path, [{"u": tables}])


def load(journal_dir: str | os.PathLike[str]) -> Incarnation | None:
    """The journal's incarnation; None for a journal no writer of this version has opened yet."""
    record = _read(Path(journal_dir) / INCARNATION_FILE).get("incarnation", {}).get("1")
    if not record:
        return None
    try:
        return Incarnation(**{**record, "reason": Reason(record["reason"])})
    except (TypeError, KeyError, ValueError):
        return None


def save(journal_dir: str | os.PathLike[str], incarnation: Incarnation) -> None:
    record = {**asdict(incarnation), "reason": str(incarnation.reason)}
    _write(Path(journal_dir) / INCARNATION_FILE, {"incarnation": {"1": record}})


def begin(journal_dir: str | os.PathLike[str], reason: Reason, since_seq: int, *,
          restored_from: str | None = None) -> Incarnation:
    """Start a new incarnation of the journal in ``journal_dir`` (it continues the current one)."""
    current = load(journal_dir)
    made = Incarnation.begin(reason, since_seq, current.incarnation_id if current else None, restored_from)
    save(journal_dir, made)
    return made


def ensure(journal_dir: str | os.PathLike[str], first_seq: int, has_events: bool) -> Incarnation:
    """The journal's incarnation, named now (``Incarnation.first``) if it has none."""
    found = load(journal_dir)
    if found is not None:
        return found
    made = Incarnation.first(first_seq, has_events)
    save(journal_dir, made)
    return made


# -- what the librarian has seen ---------------------------------------------------------------


def notice_key(incarnation_id: str, kind: str) -> str:
    return f"{incarnation_id}:{kind}"


def seen(state_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Notices the librarian has seen: key (``notice_key``) -> when."""
    return dict(_read(Path(state_dir) / SEEN_FILE).get("seen", {}).get("1", {}))


def mark_seen(state_dir: str | os.PathLike[str], keys: list[str], when: str | None = None) -> None:
    marks = seen(state_dir)
    for key in keys:
        marks.setdefault(key, when or _now())
    _write(Path(state_dir) / SEEN_FILE, {"seen": {"1": marks}})
