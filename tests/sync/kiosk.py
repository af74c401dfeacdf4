"""A kiosk for sync tests: a real data directory (journal, reference snapshot, credential,
configuration), events recorded by the real journal, and the real daemon, in this
process or as ``bookcorner syncd``."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bookcorner.circulation.events import Checkin, Checkout, EventDraft, EventType
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import Journal
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.sync.daemon import DaemonSettings, SyncDaemon
from tests.school import reference


def checkout(n: int, patron: str = "S01", shelf: str = "X") -> EventDraft:
    item = f"{shelf}{n:06d}"
    return EventDraft(EventType.CHECKED_OUT, patron, Checkout(item_id=item, patron_id=patron, card_id="c", code=item,
                                                              due=date(2026, 11, 30)))


def checkin(n: int, patron: str = "S01", shelf: str = "X") -> EventDraft:
    return EventDraft(EventType.CHECKED_IN, "kiosk", Checkin(item_id=f"{shelf}{n:06d}", patron_id=patron,
                                                             due=date(2026, 11, 30)))


def loans_and_returns(first: int, pairs: int, shelf: str = "X") -> list[EventDraft]:
    """Each book lent and brought back: replayed exactly once, none of it needs review.
    (Tests share a server: give each kiosk its own ``shelf`` of books.)"""
    drafts: list[EventDraft] = []
    for n in range(first, first + pairs):
        drafts += [checkout(n, shelf=shelf), checkin(n, shelf=shelf)]
    return drafts


class TestKiosk:
    __test__ = False

    def __init__(self, root: Path, kiosk_id: str, server_url: str, token: str, clock: FixedClock | None = None) -> None:
        self.root, self.kiosk_id, self.server_url = root, kiosk_id, server_url
        # a synced clock at the real time: the server finds nothing odd about these events' times
        self.clock = clock or FixedClock(datetime.now(timezone.utc) - timedelta(minutes=1), synced=True)
        root.mkdir(parents=True, exist_ok=True)
        self.credential = root / "credential"
        self.credential.write_text(token + "\n")
        os.chmod(self.credential, 0o600)
        ReferenceStore(root / "reference").save(reference(), "test-1", "Test school")
        self.config = root / "kiosk.toml"
        self.config.write_text(
            f'[kiosk]\nid = "{kiosk_id}"\ndata_dir = "{root}"\n'
            f'[sync]\nserver_url = "{server_url}"\ncredential_file = "{self.credential}"\n'
            "batch_size = 100\nconnect_timeout_s = 2.0\nread_timeout_s = 2.0\n"
            "retry_initial_s = 0.05\nretry_max_s = 0.2\ninterval_s = 60.0\n"
        )

    def loans_and_returns(self, first: int, pairs: int) -> list[EventDraft]:
        """Books of this kiosk's own shelf, lent and brought back."""
        return loans_and_returns(first, pairs, shelf=self.kiosk_id + "/")

    def record(self, drafts: list[EventDraft], chunk: int = 50, clock=None) -> int:
        """Append through the kiosk's own journal (the only writer); the last seq."""
        with Journal(self.root / "journal", self.kiosk_id, clock or self.clock) as journal:
            for start in range(0, len(drafts), chunk):
                journal.append(drafts[start:start + chunk])
            return journal.last_seq

    def settings(self, **changes) -> DaemonSettings:
        base = dict(server_url=self.server_url, credential_file=self.credential, batch_size=100,
                    connect_timeout_s=2.0, read_timeout_s=2.0, retry_initial_s=0.05, retry_max_s=0.2,
                    interval_s=60.0, push_after_s=0.2)
        base.update(changes)
        return DaemonSettings(**base)

    def daemon(self, clock=None, **changes) -> SyncDaemon:
        return SyncDaemon(self.root, self.kiosk_id, self.settings(**changes), clock or self.clock)

    def bookcorner(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "BOOKCORNER_CONFIG"}
        return subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(self.config), *args],
                              capture_output=True, text=True, env=env, timeout=timeout)

    def syncd_once(self, *args: str) -> subprocess.CompletedProcess:
        return self.bookcorner("syncd", "--once", *args)


def wall(clock: FixedClock) -> datetime:
    return clock.wall
