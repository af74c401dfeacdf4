"""What the librarian must hear about a journal that went back in time, until they have seen it.

A restore, a repair that lost events, or a journal found behind the server begins a new
journal incarnation (journal.incarnation); the sync daemon adds what the server said of
it (how many events and loans made after the backup it holds that the kiosk no longer
has). ``bookcorner doctor``, the librarian's screen and ``bookcorner journal seen`` read it
from here, the same words everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bookcorner.i18n import _
from bookcorner.journal import incarnation
from bookcorner.sync.status import read_status


@dataclass(frozen=True)
class JournalNotice:
    #: the librarian's "seen" mark for it (journal.incarnation.notice_key)
    key: str
    #: restored | repaired | went_back
    kind: str
    since_seq: int
    restored_from: str | None
    #: the sync daemon has told the server (and heard its answer)
    told_server: bool
    events_not_here: int = 0
    loans_not_here: int = 0

    def describe(self) -> str:
        if self.kind == incarnation.Reason.RESTORED:
            when = (self.restored_from or "?")[:16].replace("T", " ")
            if not self.told_server:
                return _("This kiosk was restored from a backup of {when}. Loans made after the backup come back "
                         "from the server at the next sync.").format(when=when)
            if not self.events_not_here:
                return _("This kiosk was restored from a backup of {when}. The server had nothing newer from it: "
                         "nothing was lost.").format(when=when)
            return _("This kiosk was restored from a backup of {when}: {loans} loan(s) ({events} event(s)) were made "
                     "after the backup and are not on the kiosk any more. The server keeps them, and the kiosk has "
                     "taken their loans back from it.").format(when=when, loans=self.loans_not_here,
                                                                 events=self.events_not_here)
        if self.kind == incarnation.Reason.REPAIRED:
            return _("The journal was repaired and lost its events from number {seq} on. Whatever of them reached the "
                     "server is kept there ({events} event(s)); the kiosk has taken the loans back from "
                     "it.").format(seq=self.since_seq, events=self.events_not_here)
        return _("The server had events of this kiosk that its journal no longer holds (were its files copied back "
                 "by hand?). The kiosk went on under a new journal identity: nothing was lost, and the server keeps "
                 "both.")

    @property
    def fix(self) -> str:
        return _("look at the review queue on the dashboard, then run `bookcorner journal seen` (or press \"Seen\" "
                 "on the librarian's screen)")


def unseen(data_dir: str | os.PathLike[str]) -> JournalNotice | None:
    """The notice about the journal's current incarnation, unless the librarian has seen it."""
    root = Path(data_dir)
    current = incarnation.load(root / "journal")
    if current is None:
        return None
    status = read_status(root)
    told = status.incarnation == current.incarnation_id and status.incarnation_told
    kind = status.journal_notice if told and status.journal_notice else (
        str(current.reason) if current.went_back else None)
    if kind is None:
        return None
    key = incarnation.notice_key(current.incarnation_id, kind)
    if key in incarnation.seen(root / "state"):
        return None
    return JournalNotice(key, kind, current.since_seq, current.restored_from, told,
                         status.events_not_here if told else 0, status.loans_not_here if told else 0)


def mark_seen(data_dir: str | os.PathLike[str], notice: JournalNotice) -> None:
    incarnation.mark_seen(Path(data_dir) / "state", [notice.key])
