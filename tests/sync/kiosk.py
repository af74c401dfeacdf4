"""A kiosk for sync tests: a real data directory (journal, reference snapshot, credential,
configuration), events recorded by the real journal, and the real daemon, in this
process or as ``bookcorner syncd``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bookcorner.circulation.events import Checkin, Checkout, EventDraft, EventType
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import Journal, JournalReader
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.sync.daemon import DaemonSettings, SyncDaemon
from bookcorner.sync.status import read_status
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
            "batch_size = 100\nconnect_timeout_s = 2.0\nread_timeout_s = 10.0\n"
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
                    connect_timeout_s=2.0, read_timeout_s=10.0, retry_initial_s=0.05, retry_max_s=0.2,
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


@dataclass
class Acks:
    """Every acknowledgement the daemons acted on (their own log lines, per kiosk thread)."""

    seen: list[tuple[str, int, float]] = field(default_factory=list)  # (kiosk, acked up to, when)
    rewinds: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class AckRecorder(logging.Handler):
    def __init__(self, acks: Acks) -> None:
        super().__init__(logging.DEBUG)
        self.acks = acks

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("batch %s (%d-%d) acknowledged"):
            self.acks.seen.append((record.threadName, record.args[3], record.created))
        elif "sending again from there" in record.msg:
            self.acks.rewinds.append(record.getMessage())
        elif record.msg.startswith("sync round failed"):
            self.acks.failures.append(record.getMessage())


def keep_lending(kiosk: TestKiosk, stop: threading.Event) -> None:
    """Children at the kiosk: a book lent and brought back every 30 ms, in the journal the kiosk
    keeps open as long as it runs (opened once, as the kiosk does: a journal opened anew while
    this process forks a tool could find its lock still held by the child for a moment)."""
    n = 0
    with Journal(kiosk.root / "journal", kiosk.kiosk_id, kiosk.clock) as journal:
        while not stop.is_set():
            journal.append(kiosk.loans_and_returns(n, 1))
            n += 1
            time.sleep(0.03)


def recorded(kiosk: TestKiosk) -> int:
    return JournalReader(kiosk.root / "journal").last_seq()


@contextmanager
def daemons_running(daemons: list[SyncDaemon], names: list[str] | None = None) -> Iterator[threading.Event]:
    """Each daemon's rounds in a thread of its own (named, for the log records); stopped,
    joined and closed on the way out. Yields the event that stops them."""
    stop = threading.Event()
    runners = [threading.Thread(target=d.run, args=(stop,), name=names[n] if names else None)
               for n, d in enumerate(daemons)]
    for runner in runners:
        runner.start()
    try:
        yield stop
    finally:
        stop.set()
        for runner in runners:
            runner.join(15)
        for daemon in daemons:
            daemon.close()


class LendingKiosks:
    """Kiosks where children lend all the time (``keep_lending``), each with its real daemon
    running (``daemons_running``); every acknowledgement the daemons act on is in ``acks``."""

    def __init__(self, kiosks: list[TestKiosk], **daemon_settings) -> None:
        self.kiosks, self.acks = kiosks, Acks()
        self.daemons = [k.daemon(**daemon_settings) for k in kiosks]
        self.lending = threading.Event()
        self.lenders = [threading.Thread(target=keep_lending, args=(k, self.lending)) for k in kiosks]
        self._log = logging.getLogger("bookcorner.sync.daemon")
        self._recorder = AckRecorder(self.acks)

    @contextmanager
    def running(self) -> Iterator[LendingKiosks]:
        level = self._log.level
        self._log.addHandler(self._recorder)
        self._log.setLevel(logging.DEBUG)
        try:
            with daemons_running(self.daemons, [k.kiosk_id for k in self.kiosks]):
                for lender in self.lenders:
                    lender.start()
                try:
                    yield self
                finally:
                    self.stop_lending()
        finally:
            self._log.removeHandler(self._recorder)
            self._log.setLevel(level)

    def stop_lending(self) -> None:
        self.lending.set()
        for lender in self.lenders:  # (its last loan recorded before the daemons are waited for)
            if lender.is_alive():
                lender.join(5)

    def drain(self, timeout: float = 30.0) -> None:
        """The children go home; wait until every kiosk's events are acknowledged."""
        self.stop_lending()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(read_status(k.root).acked_seq < recorded(k) for k in self.kiosks):
            time.sleep(0.1)

    def acknowledged_since(self, moment: float, timeout: float = 30.0) -> None:
        """Wait until every kiosk has had a batch acknowledged after ``moment`` (time.time())."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(
                any(who == k.kiosk_id and when > moment for who, _, when in list(self.acks.seen)) for k in self.kiosks):
            time.sleep(0.05)

    def times(self, kiosk_id: str) -> list[tuple[int, float]]:
        """(acknowledged up to, when) of each of the kiosk's acknowledgements."""
        return [(up_to, when) for who, up_to, when in self.acks.seen if who == kiosk_id]
