"""The sync daemon: gets every journal event to the central server, once, in order, and
brings the reference data back.

A *round*: push every unacknowledged event in batches (oldest first; the position is
saved after each acknowledged batch), then pull what changed in the reference data and
write it for the kiosk. Rounds run when the kiosk or the librarian asks (``sync/wake``),
shortly after new events are recorded, and every ``interval_s``; after a failure the
next try waits a random, growing time (or what the server's Retry-After says).

The daemon reads the journal and never writes it; it is the only writer of
``sync/status.db`` (what the kiosk shows), ``sync/position.db`` (where it is) and of the
reference snapshot it pulls. Every failure ends in a log line and a status with the
reason, for the librarian.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bookcorner.config import SyncSection
from bookcorner.i18n import _
from bookcorner.journal import incarnation
from bookcorner.journal.clock import ClockReading
from bookcorner.journal.incarnation import Incarnation
from bookcorner.journal.journal import JournalReader
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.journal.storage import StoreError
from bookcorner.protocol.messages import ClockReading as WireClock
from bookcorner.protocol.messages import PushReply, PushRequest, WireEvent
from bookcorner.sync.batches import UnreadableEvents, journal_identity, next_batch
from bookcorner.sync.client import SyncClient, SyncError
from bookcorner.sync.notify import Watchdog
from bookcorner.sync.position import Position, load_position, position_for, save_position
from bookcorner.sync.reference import changes_anything, merge, parse_version, version_of
from bookcorner.sync.status import Phase, read_status, take_wake_request, write_status

log = logging.getLogger(__name__)
LOCK_FILE = "daemon.lock"
#: how often the daemon looks for a wake request and for new events while it waits
TICK_S = 0.25
MAX_REWINDS = 3



#: instants the offsets of two zones are compared at: twice a month over years around now and to come
_ZONE_SAMPLES = [datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=15 * n) for n in range(200)]


def same_zone(a: str, b: str) -> bool:
    """Two zone names that count days alike (``UTC`` and ``Etc/UTC``, ``Asia/Chongqing`` and
    ``Asia/Shanghai``): the same offset from UTC at every sampled instant."""
    if a == b:
        return True
    try:
        first, second = ZoneInfo(a), ZoneInfo(b)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return all(at.astimezone(first).utcoffset() == at.astimezone(second).utcoffset() for at in _ZONE_SAMPLES)

class Clock(Protocol):
    def read(self) -> ClockReading: ...


#: the defaults live once, in the configuration's [sync] section
_SYNC = SyncSection()


@dataclass(frozen=True)
class DaemonSettings:
    server_url: str
    credential_file: Path
    ca_bundle: str = _SYNC.ca_bundle
    batch_size: int = _SYNC.batch_size
    connect_timeout_s: float = _SYNC.connect_timeout_s
    read_timeout_s: float = _SYNC.read_timeout_s
    interval_s: float = _SYNC.interval_s
    retry_initial_s: float = _SYNC.retry_initial_s
    retry_max_s: float = _SYNC.retry_max_s
    retry_after_max_s: float = _SYNC.retry_after_max_s
    busy_retry_max_s: float = _SYNC.busy_retry_max_s
    #: new events are pushed this long after the daemon notices them
    push_after_s: float = _SYNC.push_after_s

    @classmethod
    def from_config(cls, config) -> DaemonSettings:
        section = config.sync
        tuning = {name: getattr(section, name) for name in cls.__dataclass_fields__
                  if name not in ("server_url", "credential_file")}
        return cls(section.server_url, config.credential_file, **tuning)


@dataclass(frozen=True)
class RoundResult:
    ok: bool
    acked_seq: int
    #: events recorded and not acknowledged when the round ended
    pending: int
    error: SyncError | None = None


class DaemonBusy(Exception):
    """Another sync daemon runs on this data directory."""


def read_credential(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SyncError(_("no credential in {path}: on the server run `bookcorner central add-kiosk ID` and save "
                          "what it prints in that file").format(path=path)) from None
    except OSError as error:
        raise SyncError(_("cannot read the credential {path}: {error}").format(path=path, error=error.strerror)) from None
    if not token or len(token.split()) != 1:
        raise SyncError(_("the credential file {path} is empty or damaged").format(path=path))
    return token


def backoff(failures: int, settings: DaemonSettings, rng: random.Random, retry_after: float | None = None) -> float:
    """Seconds to wait after ``failures`` failed rounds in a row: "equal jitter" (half
    fixed, half random) so that a school's kiosks do not all come back at once, and at
    least what the server asked for."""
    ceiling = min(settings.retry_max_s, settings.retry_initial_s * 2 ** max(0, failures - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.retry_after_max_s))
    return delay


#: after a 429 the wait is Retry-After plus a random part, up to this share of it, and up to
#: at least Retry-After's own granularity (whole seconds): kiosks the server told the same
#: second come back spread over that second, in about the order it booked them
BUSY_JITTER_SHARE, BUSY_JITTER_MIN_S = 0.25, 1.0


def busy_jitter(asked: float) -> float:
    """The window of the random part added to a 429's wait of ``asked`` seconds."""
    return max(BUSY_JITTER_MIN_S, BUSY_JITTER_SHARE * asked)


def busy_backoff(failures: int, settings: DaemonSettings, rng: random.Random, retry_after: float | None) -> float:
    """Seconds to wait after the server said it is busy (429) ``failures`` times in a row:
    what it asked for (Retry-After, at most ``busy_retry_max_s``), plus a random part
    (``busy_jitter``), so that kiosks told the same second come back spread out. The
    server's Retry-After already says when it is likely to have room (its queue and the
    kiosks it told before: ``central.api.admission``), so the wait does not double towards
    ``retry_max_s`` as after a failure. A 429 without Retry-After (a proxy's):
    ``retry_initial_s`` doubling per refusal, up to ``busy_retry_max_s``."""
    if retry_after is None:
        asked = settings.retry_initial_s * 2 ** max(0, failures - 1)
    else:
        asked = retry_after
    asked = min(asked, settings.busy_retry_max_s)
    return asked + rng.uniform(0, busy_jitter(asked))


def _phase_of(error: SyncError) -> Phase:
    return Phase.BUSY if error.busy else Phase.OFFLINE if error.offline else Phase.ERROR


class SyncDaemon:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        kiosk_id: str,
        settings: DaemonSettings,
        clock: Clock,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.root = Path(data_dir)
        self.journal_dir = self.root / "journal"
        self.sync_dir = self.root / "sync"
        self.kiosk_id = kiosk_id
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.references = ReferenceStore(self.root / "reference")
        self.sync_dir.mkdir(parents=True, exist_ok=True)
        self.position = load_position(self.sync_dir)
        self.status = read_status(self.root)
        if self.status.phase is Phase.SYNCING:  # a previous daemon died mid-round
            self.status = replace(self.status, phase=Phase.ERROR if self.status.last_error else Phase.NEVER)
        self.status = replace(self.status, acked_seq=self.position.acked_seq)
        self._client: SyncClient | None = None
        #: the school's zone last named by the server when it differed from the kiosk's (said once)
        self._zone_warned: str | None = None
        self._lock_fd: int | None = None
        #: systemd's watchdog (Type=notify, WatchdogSec=): pinged while the loop turns and after every batch
        self.watchdog = Watchdog()

    # -- one process per data directory -------------------------------------------------------

    def lock(self) -> None:
        fd = os.open(self.sync_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonBusy(_("a sync daemon already runs for {path} (pid {pid})").format(
                path=self.root, pid=holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- what the kiosk sees ----------------------------------------------------------------------

    def _publish(self, **changes) -> None:
        self.status = replace(self.status, **changes)
        try:
            write_status(self.root, self.status)
        except (StoreError, OSError) as error:
            log.error("cannot write the sync status for the kiosk: %s", error)

    def _now(self) -> str:
        return self.clock.read().wall.isoformat(timespec="seconds")

    def _journal_last_seq(self) -> int:
        try:
            return JournalReader(self.journal_dir).last_seq()
        except (StoreError, OSError) as error:
            log.error("cannot read the journal: %s", error)
            return self.position.acked_seq

    def pending(self) -> int:
        return max(0, self._journal_last_seq() - self.position.acked_seq)

    # -- a round ------------------------------------------------------------------------------------

    def _follow_incarnation(self) -> Incarnation | None:
        """Count the position in the journal's current incarnation (a restore, a repair or a
        re-created journal begins a new one: journal.incarnation)."""
        current = incarnation.load(self.journal_dir)
        position = position_for(self.position, current)
        if position != self.position:
            if current is not None and self.position.incarnation is not None:
                log.warning("the journal is a new incarnation (%s, from event %d, continuing %s): sending from "
                            "event %d on", current.reason, current.since_seq, current.previous or "-",
                            position.acked_seq + 1)
            self._save(position)
        if current is not None and self.status.incarnation != current.incarnation_id:
            notice = str(current.reason) if current.went_back else None
            self._publish(incarnation=current.incarnation_id, incarnation_told=False, journal_notice=notice,
                          events_not_here=0, loans_not_here=0, server_seq=0, acked_seq=position.acked_seq)
        return current

    def run_round(self) -> RoundResult:
        try:
            self._follow_incarnation()
        except SyncError as error:
            self._publish(phase=Phase.ERROR, last_error=error.message)
            return RoundResult(False, self.position.acked_seq, self.pending(), error)
        journal_last = self._journal_last_seq()
        to_send = max(0, journal_last - self.position.acked_seq)
        self._publish(phase=Phase.SYNCING, last_attempt=self._now(), sent=0, to_send=to_send, next_attempt=None)
        try:
            client = self._connect()
            self._push_all(client, journal_last)
            self._pull(client)
        except SyncError as error:
            log.warning("sync round failed: %s%s", error.message, f" [{error.cause}]" if error.cause else "")
            self._publish(phase=_phase_of(error), last_error=error.message,
                          acked_seq=self.position.acked_seq)
            return RoundResult(False, self.position.acked_seq, self.pending(), error)
        pending = self.pending()
        self._publish(phase=Phase.IDLE, last_success=self._now(), last_error=None, acked_seq=self.position.acked_seq)
        log.info("sync round done: events up to %d acknowledged, %d waiting, %d for review",
                 self.position.acked_seq, pending, self.status.needs_review)
        return RoundResult(True, self.position.acked_seq, pending)

    def _connect(self) -> SyncClient:
        if not self.settings.server_url:
            raise SyncError(_("no central server is configured ([sync] server_url); use `bookcorner export-batch` "
                              "to carry the events on a USB stick"))
        token = read_credential(self.settings.credential_file)
        if self._client is None:
            self._client = SyncClient(self.settings.server_url, token, ca_bundle=self.settings.ca_bundle or None,
                                      connect_timeout_s=self.settings.connect_timeout_s,
                                      read_timeout_s=self.settings.read_timeout_s)
        return self._client

    def _save(self, position: Position) -> None:
        try:
            save_position(self.sync_dir, position)
        except (StoreError, OSError) as error:
            raise SyncError(_("cannot save the sync position ({error}); is the data partition full?").format(
                error=error)) from None
        self.position = position
        self.watchdog.ping()  # a long push is progress, not a hang

    def _wire_clock(self) -> WireClock:
        reading = self.clock.read()
        return WireClock(reading.boot_id, reading.monotonic_ns, reading.wall.isoformat(timespec="milliseconds"),
                         reading.synced)

    def _push_all(self, client: SyncClient, journal_last: int) -> None:
        """``journal_last``: the journal's last event when the round began (read once: events
        recorded during the round are counted as the batches reach them)."""
        rewinds = 0
        while True:
            position = self.position
            resend = position.inflight_batch is not None and position.inflight_from == position.acked_seq + 1
            try:
                batch = next_batch(self.journal_dir, position.acked_seq, self.settings.batch_size,
                                   up_to=position.inflight_to if resend else None)
            except UnreadableEvents as unreadable:
                raise SyncError(str(unreadable)) from None
            except (StoreError, OSError) as error:
                raise SyncError(_("cannot read the journal: {error}").format(error=error)) from None
            if not batch.events:
                self._announce(client, position.acked_seq)
                return
            batch_id = (position.inflight_batch if resend and position.inflight_to == batch.to_seq else None) or str(uuid.uuid4())
            journal_last = max(journal_last, batch.to_seq)
            self._save(replace(position, inflight_batch=batch_id, inflight_from=batch.from_seq,
                               inflight_to=batch.to_seq))
            request = PushRequest(
                kiosk_id=self.kiosk_id, batch_id=batch_id, from_seq=batch.from_seq, to_seq=batch.to_seq,
                clock=self._wire_clock(),
                events=[WireEvent(**record) for record in batch.events],
                waiting=max(0, journal_last - position.acked_seq),
                journal=journal_identity(self.journal_dir),
            )
            reply = client.push(request)
            acked = self._acknowledged(reply, batch.to_seq)
            self._take_notice(reply)
            if reply.applied_seq > batch.to_seq and batch.to_seq >= self._journal_last_seq():
                self._server_ahead(reply.applied_seq, batch.to_seq)
            if acked < batch.from_seq - 1:
                rewinds += 1
                log.warning("the server has this kiosk's events only up to %d, not %d (restored from a backup?): "
                            "sending again from there", acked, position.acked_seq)
                if rewinds > MAX_REWINDS:
                    raise SyncError(_("the server keeps losing this kiosk's events after number {seq}").format(
                        seq=acked))
            elif acked < batch.from_seq:
                raise SyncError(_("the server did not take events from number {seq} on ({detail})").format(
                    seq=batch.from_seq, detail=reply.results[0].reason if reply.results else "-"))
            self._save(Position(acked, incarnation=position.incarnation))
            self._publish(acked_seq=acked, sent=self.status.sent + len(batch.events), needs_review=reply.needs_review)
            log.debug("batch %s (%d-%d) acknowledged up to %d in %.3f s [%s]", batch_id, batch.from_seq,
                      batch.to_seq, acked, client.last.seconds, client.last.server_timing)

    def _acknowledged(self, reply: PushReply, to_seq: int) -> int:
        """What the reply acknowledges of this journal: never past the batch it answers,
        unless the journal holds, under the server's mark, the very event the server has
        there (then everything before it is the same too: the position had been lost).
        Numbers the server has past the batch may be other events than this journal's
        (a journal that went back in time)."""
        if reply.applied_seq <= to_seq or reply.applied_event_id is None:
            return min(reply.applied_seq, to_seq)
        try:
            mine = next(JournalReader(self.journal_dir).records_after(reply.applied_seq - 1, limit=1), None)
        except (StoreError, OSError):
            mine = None
        if mine is not None and mine["seq"] == reply.applied_seq and mine["event_id"] == reply.applied_event_id:
            return reply.applied_seq
        return to_seq

    def _announce(self, client: SyncClient, acked_seq: int) -> None:
        """A journal that went back (a restore, a repair) with nothing new to send yet: an
        empty push names it to the server, which answers what it holds from before (the
        librarian's notice, and the case in the review queue) now, not at the next loan."""
        current = incarnation.load(self.journal_dir)
        if current is None or not current.went_back or self.status.incarnation_told:
            return
        reply = client.push(PushRequest(
            kiosk_id=self.kiosk_id, batch_id=str(uuid.uuid4()), from_seq=acked_seq + 1, to_seq=acked_seq,
            clock=self._wire_clock(), events=[], waiting=0, journal=journal_identity(self.journal_dir)))
        self._take_notice(reply)

    def _take_notice(self, reply: PushReply) -> None:
        """What the server's answer says of this journal's incarnation."""
        if not self.status.incarnation_told:
            self._publish(incarnation_told=True)
        notice = reply.journal_notice
        if notice is None:
            return
        log.warning("the server says this kiosk's journal went back (%s): %d event(s), %d loan(s) made after it "
                    "are on the server and not in this journal; %d number(s) reused", notice.kind,
                    notice.events_not_here, notice.loans_not_here, notice.reused_numbers)
        changes: dict[str, object] = {"journal_notice": notice.kind}
        if notice.events_not_here or notice.loans_not_here:
            changes.update(events_not_here=notice.events_not_here, loans_not_here=notice.loans_not_here)
        self._publish(**changes)

    def _server_ahead(self, server_seq: int, journal_last: int) -> None:
        """The server has events of this journal incarnation past the journal's end: the
        journal went back in time without a restore (its files copied back by hand?)."""
        if self.status.server_seq != server_seq:
            log.warning("the server has this journal's events up to number %d but the journal ends at %d: it went "
                        "back in time (files copied back?); its next events are sent as new ones, and the kiosk "
                        "starts a new journal incarnation", server_seq, journal_last)
        self._publish(journal_notice=str(incarnation.Reason.WENT_BACK), server_seq=server_seq)

    def _pull(self, client: SyncClient) -> None:
        current = None
        since, epoch = 0, None
        if self.references.exists():
            try:
                loaded = self.references.load()
                current = loaded.reference
                parsed = parse_version(loaded.version)
                if parsed is not None:
                    epoch, since = parsed
            except StoreError as error:
                log.warning("the kiosk's reference data is unreadable (%s): pulling all of it", error)
        delta = client.reference(since, epoch, self.position.incarnation)
        self._compare_zone(delta.timezone)
        if not delta.has_reference:
            log.info("the server has no reference data yet: the kiosk keeps what it has")
            return
        version = version_of(delta.epoch, delta.cursor)
        if not changes_anything(delta, current):
            self._publish(reference_version=version)
            return
        try:
            reference = merge(current, delta)
        except StoreError as error:
            raise SyncError(_("the server's reference data could not be used: {error}").format(error=error)) from None
        try:
            self.references.save(reference, version, delta.school)
        except (StoreError, OSError) as error:
            raise SyncError(_("cannot write the reference data for the kiosk: {error}").format(error=error)) from None
        self._publish(reference_version=version)
        log.info("reference data %s written (%s)", version, "full" if delta.full else "changes")

    def _compare_zone(self, school_zone: str | None) -> None:
        """The server counts days and due dates in the school's zone; a kiosk configured with
        another one (its kiosk.timezone) would tell children other due dates: said in the log."""
        mine = str(getattr(self.clock, "zone", "") or "")
        if school_zone and mine and not same_zone(school_zone, mine) and school_zone != self._zone_warned:
            log.warning("the server counts days in the time zone %s but this kiosk's kiosk.timezone is %s: "
                        "set kiosk.timezone = \"%s\" in the kiosk's configuration", school_zone, mine, school_zone)
        self._zone_warned = school_zone

    def _delay(self, failures: int, error: SyncError | None) -> float:
        """How long to wait before the next round after a failed one."""
        if error is not None and error.busy:
            return busy_backoff(failures, self.settings, self.rng, error.retry_after)
        return backoff(failures, self.settings, self.rng, error.retry_after if error else None)

    # -- the loop ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set."""
        self.watchdog.ready()
        try:
            self._loop(stop)
        finally:
            self.watchdog.stopping()

    def _loop(self, stop: threading.Event) -> None:
        next_round = 0.0
        failures = 0
        last_ok = False
        next_look = 0.0
        while not stop.is_set():
            self.watchdog.ping()
            now = time.monotonic()
            asked = take_wake_request(self.root)  # (taken every time, so one request is one round)
            due = asked or now >= next_round
            if not due and last_ok and now >= next_look:
                next_look = now + self.settings.push_after_s
                due = self._journal_last_seq() > self.position.acked_seq
            if due:
                result = self.run_round()
                last_ok = result.ok
                if result.ok:
                    failures = 0
                    next_round = time.monotonic() + self.settings.interval_s
                    next_look = time.monotonic() + self.settings.push_after_s
                else:
                    failures += 1
                    delay = self._delay(failures, result.error)
                    next_round = time.monotonic() + delay
                    at = self.clock.read().wall.timestamp() + delay
                    self._publish(next_attempt=datetime.fromtimestamp(at, self.clock.read().wall.tzinfo)
                                  .isoformat(timespec="seconds"))
                    log.info("next try in %.1f s", delay)
            stop.wait(TICK_S)
