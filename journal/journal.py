"""The kiosk's event journal: durable, bounded, shared safely with the sync daemon.

Events are kept in segments, each a small TinyDB over ``SegmentStorage``
(``seg-<first seq>.log``). The newest segment takes appends; once it holds
``segment_events`` events it is sealed (a final header update, then read-only) and a new
one begins. Recording a scan therefore costs the same after a hundred events or a
hundred thousand, shipped to the server or not; the sync daemon reads sealed segments
and the growing one without locks, seeing whole records only.

One process writes (the kiosk, or ``bookcorner circ``): it holds ``writer.lock``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from tinydb import TinyDB
from tinydb.table import Document

from bookcorner.circulation.events import DamageNote, Event, EventDraft, EventType, JournalDamage, PayloadInvalid
from bookcorner.i18n import _
from bookcorner.journal import incarnation, schema
from bookcorner.journal.clock import ClockReading
from bookcorner.journal.incarnation import Incarnation
from bookcorner.journal.storage import (
    HEADER_ID,
    META_TABLE,
    SegmentStorage,
    SegmentUnreadable,
    StoreError,
    parse,
    write_new_file,
)

log = logging.getLogger(__name__)

EVENTS_TABLE = "events"
SEGMENT_GLOB = "seg-*.log"
QUARANTINE = "damaged"


class Clock(Protocol):
    def read(self) -> ClockReading: ...


class JournalBusy(StoreError):
    """Another process is writing this journal."""


class JournalDamaged(StoreError):
    """A segment cannot be read at all; ``bookcorner journal repair`` continues from the
    last good state after keeping the damaged file aside."""


@dataclass(frozen=True)
class Damage:
    """What was wrong with a segment and what was done about it (shown to the librarian)."""

    segment: str
    kind: str  # "corrupt_records" | "unreadable" | "gap"
    detail: str
    kept_at: str | None = None

    def describe(self) -> str:
        text = f"{self.segment}: {self.detail}"
        if self.kept_at:
            text += " " + _("(the damaged file is kept at {path})").format(path=self.kept_at)
        return text


def segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"seg-{first_seq:012d}.log"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(SEGMENT_GLOB):
        try:
            found.append((int(path.stem.removeprefix("seg-")), path))
        except ValueError:
            continue
    return sorted(found)


def header_record(kiosk_id: str, first_seq: int, created: str) -> dict[str, Any]:
    header = {
        "format": schema.FORMAT,
        "schema": schema.SCHEMA,
        "kiosk_id": kiosk_id,
        "first_seq": first_seq,
        "created": created,
        "sealed": False,
    }
    return {"u": {META_TABLE: {HEADER_ID: header}}}


def segment_records(tables: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole segment as records, its header first and alone, so that opening a journal
    can read any segment's header from its first line."""
    header = {META_TABLE: tables.get(META_TABLE, {})}
    rest = {name: docs for name, docs in tables.items() if name != META_TABLE}
    return [{"u": header}, {"u": rest}] if rest else [{"u": header}]


def read_header(path: Path) -> dict[str, Any] | None:
    """The segment's header from its first record (without reading the whole file)."""
    with path.open("rb") as fp:
        first = fp.readline(1 << 16)
    parsed = parse(first if first.endswith(b"\n") else b"")
    return parsed.tables.get(META_TABLE, {}).get(HEADER_ID)


def outdated_segments(directory: Path) -> list[tuple[Path, int]]:
    """(segment, its schema) for each segment written with an older journal schema: what
    opening the journal for writing migrates (``bookcorner journal migrate``)."""
    found = []
    for _first, path in list_segments(directory):
        header = read_header(path)
        if header is not None and header.get("schema", 0) < schema.SCHEMA:
            found.append((path, header.get("schema", 0)))
    return found


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Journal:
    """The writer's view: append events durably, read them back."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        kiosk_id: str,
        clock: Clock,
        *,
        segment_events: int = 256,
        repair: bool = False,
        known_seq: int = 0,
    ) -> None:
        self.directory = Path(directory)
        self.kiosk_id = kiosk_id
        self.clock = clock
        self.segment_events = segment_events
        self.damage: list[Damage] = []
        self._db: TinyDB | None = None
        self._storage: SegmentStorage | None = None
        self._lock_fd: int | None = None
        #: who this journal is (see journal.incarnation); set when it is opened
        self.incarnation: Incarnation
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._open(repair, known_seq)
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _lock(self) -> None:
        path = self.directory / "writer.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalBusy(
                _("{path} is in use by another bookcorner process (pid {pid}), probably the kiosk; "
                  "use the kiosk, or stop it first").format(path=self.directory, pid=holder)
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _open(self, repair: bool, known_seq: int) -> None:
        segments = list_segments(self.directory)
        existed = bool(segments)
        went_back = False
        # Migration rewrites segments oldest first, the newest last: when the newest is
        # current, all are, and opening stays cheap however many segments there are.
        newest = read_header(segments[-1][1]) if segments else None
        if newest is None or newest.get("schema") != schema.SCHEMA:
            for _first, path in segments:
                self._check_header(path)
        else:
            self._check_header(segments[-1][1])
        if not segments:
            first = known_seq + 1
            write_new_file(segment_path(self.directory, first), [header_record(self.kiosk_id, first, _utc_now())])
            segments = [(first, segment_path(self.directory, first))]
        if repair:
            self._repair_archives(segments[:-1])
        first_seq, path = segments[-1]
        previous_last = first_seq - 1
        try:
            self._attach(path)
        except SegmentUnreadable as unreadable:
            if not repair:
                raise JournalDamaged(
                    _("the journal's current segment {path} is damaged ({what}); events from number {seq} on "
                      "cannot be read. Run `bookcorner journal repair` to keep the file aside and carry on "
                      "from the last good state.").format(path=path, what=unreadable.what, seq=first_seq)
                ) from None
            kept = self._quarantine(path)
            next_seq = max(previous_last, known_seq) + 1
            self.damage.append(
                Damage(path.name, "unreadable", _("{what}; events from number {seq} on are lost").format(
                    what=unreadable.what, seq=first_seq), str(kept))
            )
            write_new_file(segment_path(self.directory, next_seq),
                           [header_record(self.kiosk_id, next_seq, _utc_now())])
            self._attach(segment_path(self.directory, next_seq))
            went_back = True
        except StoreError:
            self._salvage(path)
            self._attach(path)
        if went_back:
            # the numbers after the last good state may be numbers the server has seen
            self.incarnation = incarnation.begin(self.directory, incarnation.Reason.REPAIRED, self._last_seq + 1)
        else:
            self.incarnation = incarnation.ensure(self.directory, self._last_seq + 1, existed)
        if self.damage:
            notes = tuple(DamageNote(segment=d.segment, kind=d.kind, detail=d.detail, kept_at=d.kept_at)
                          for d in self.damage)
            self.append([EventDraft(EventType.JOURNAL_DAMAGE, "kiosk", JournalDamage(damage=notes))])
        if self._header().get("sealed") or self._count >= self.segment_events:
            self._roll()

    def _check_header(self, path: Path) -> None:
        header = read_header(path)
        if header is None:
            return  # unreadable or damaged: found when the segment itself is opened or checked
        if header.get("format") != schema.FORMAT:
            raise StoreError(_("{path} is not a bookcorner journal segment").format(path=path))
        if header.get("kiosk_id") != self.kiosk_id:
            raise StoreError(
                _("{path} belongs to kiosk {other!r}, not {ours!r}: each kiosk needs its own data directory").format(
                    path=path, other=header.get("kiosk_id"), ours=self.kiosk_id)
            )
        version = header.get("schema", 0)
        if version > schema.SCHEMA:
            raise StoreError(
                _("{path} was written by a newer bookcorner (journal schema {found}, this one knows {known}); "
                  "upgrade bookcorner").format(path=path, found=version, known=schema.SCHEMA)
            )
        if version < schema.SCHEMA:
            self._migrate(path, version)

    def _migrate(self, path: Path, version: int) -> None:
        source = SegmentStorage(path, read_only=True)
        tables = schema.migrate(source.read(), version)
        tables.setdefault(META_TABLE, {}).setdefault(HEADER_ID, {})["schema"] = schema.SCHEMA
        sealed = tables[META_TABLE][HEADER_ID].get("sealed")
        os.chmod(path, 0o644)
        write_new_file(path, segment_records(tables))
        if sealed:
            os.chmod(path, 0o444)
        log.info("migrated %s from journal schema %s to %s", path, version, schema.SCHEMA)

    def _salvage(self, path: Path) -> None:
        """Keep every valid record of a segment with damaged records, set the file aside."""
        source = SegmentStorage(path, read_only=True)
        parsed = source.parsed
        kept = self._quarantine(path, copy=True)
        detail = _("{bad} damaged record(s) found; {good} record(s) saved").format(
            bad=len(parsed.corrupt), good=parsed.records)
        self.damage.append(Damage(path.name, "corrupt_records", detail, str(kept)))
        tables = source.read()
        if HEADER_ID not in tables.get(META_TABLE, {}):
            first = int(path.stem.removeprefix("seg-"))
            tables.update(header_record(self.kiosk_id, first, _utc_now())["u"])
        os.chmod(path, 0o644)
        write_new_file(path, segment_records(tables))
        log.warning("journal segment %s salvaged: %s", path, detail)

    def _repair_archives(self, sealed: list[tuple[int, Path]]) -> None:
        """Salvage damaged records in sealed segments; set unreadable ones aside."""
        for index, (first, path) in enumerate(sealed):
            following = sealed[index + 1][0] if index + 1 < len(sealed) else None
            try:
                parsed = SegmentStorage(path, read_only=True).parsed
            except SegmentUnreadable as unreadable:
                kept = self._quarantine(path)
                lost = _("{what}; events from number {seq} on are lost").format(what=unreadable.what, seq=first)
                if following is not None:
                    lost = _("{what}; events {start} to {end} are lost").format(
                        what=unreadable.what, start=first, end=following - 1)
                self.damage.append(Damage(path.name, "unreadable", lost, str(kept)))
                continue
            if parsed.corrupt:
                self._salvage(path)
                os.chmod(path, 0o444)

    def _quarantine(self, path: Path, copy: bool = False) -> Path:
        folder = self.directory / QUARANTINE
        folder.mkdir(exist_ok=True)
        target = folder / f"{path.name}.{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"
        if copy:
            shutil.copy2(path, target)
        else:
            os.replace(path, target)
        return target

    def _attach(self, path: Path) -> None:
        storage = SegmentStorage(path, append_only={EVENTS_TABLE})
        self._storage = storage
        self._db = TinyDB(storage=lambda: storage)
        self._events = self._db.table(EVENTS_TABLE, cache_size=0)
        self._meta = self._db.table(META_TABLE, cache_size=0)
        self._path = path
        header = self._header()
        events = storage.read().get(EVENTS_TABLE, {})
        self._count = len(events)
        self._last_seq = max((int(k) for k in events), default=header.get("first_seq", 1) - 1)
        if storage.parsed.torn_tail:
            log.info("journal %s: cut off an append that never completed (%d bytes)", path, storage.parsed.torn_tail)

    def _header(self) -> dict[str, Any]:
        assert self._storage is not None
        return self._storage.read().get(META_TABLE, {}).get(HEADER_ID, {})

    def begin_incarnation(self, reason: incarnation.Reason) -> Incarnation:
        """Go on as a new incarnation from the next event (the journal may have gone back)."""
        self.incarnation = incarnation.begin(self.directory, reason, self._last_seq + 1)
        log.warning("journal %s is now incarnation %s (%s), from event %d", self.directory,
                    self.incarnation.incarnation_id, reason, self.incarnation.since_seq)
        return self.incarnation

    # -- writing ---------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def append(self, drafts: Sequence[EventDraft]) -> list[Event]:
        """Record events; when this returns they are on disk (fdatasync). All of them or
        none: several events from one decision are one record. Raises StoreWriteError."""
        if not drafts:
            return []
        if self._db is None:
            self._start_next_segment()
        reading = self.clock.read()
        wall = reading.wall.isoformat(timespec="milliseconds")
        events = [
            Event(
                event_id=str(uuid.uuid4()),
                kiosk_id=self.kiosk_id,
                seq=self._last_seq + 1 + i,
                boot_id=reading.boot_id,
                monotonic_ns=reading.monotonic_ns,
                wall_time=wall,
                clock_synced=reading.synced,
                actor=draft.actor,
                type=draft.type,
                payload=draft.payload,
            )
            for i, draft in enumerate(drafts)
        ]
        self._events.insert_multiple(Document(e.to_record(), doc_id=e.seq) for e in events)
        self._last_seq += len(events)
        self._count += len(events)
        if self._count >= self.segment_events:
            try:
                self._roll()
            except StoreError as error:  # the events are safe; the next append retries
                log.warning("could not start a new journal segment yet: %s", error)
        return events

    def _roll(self) -> None:
        """Seal the current segment and start the next one."""
        if self._db is not None:
            if not self._header().get("sealed"):
                self._meta.update(
                    {"sealed": True, "last_seq": self._last_seq, "events": self._count, "sealed_at": _utc_now()},
                    doc_ids=[int(HEADER_ID)],
                )
            self._detach()
            os.chmod(self._path, 0o444)
        self._start_next_segment()

    def _start_next_segment(self) -> None:
        first = self._last_seq + 1
        path = segment_path(self.directory, first)
        if not path.exists():
            write_new_file(path, [header_record(self.kiosk_id, first, _utc_now())])
        self._attach(path)

    def _detach(self) -> None:
        if self._storage is not None:
            self._storage.close()
        self._storage = None
        self._db = None

    # -- reading ---------------------------------------------------------------------------

    def events_after(self, seq: int) -> Iterator[Event]:
        """Every event with a higher sequence number, in order (archives included)."""
        return JournalReader(self.directory).events_after(seq)

    def close(self) -> None:
        self._detach()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JournalReader:
    """A reader's view, for another process (the sync daemon) or for rebuilding state:
    no lock, never writes, sees whole records only."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def segments(self) -> list[tuple[int, Path]]:
        return list_segments(self.directory)

    def records_after(self, seq: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The stored records of the events after ``seq``, in order, as they are on disk
        (for the wire: no ``Event`` built only to be turned back into a record)."""
        segments = self.segments()
        produced = 0
        for index, (_first, path) in enumerate(segments):
            following = segments[index + 1][0] if index + 1 < len(segments) else None
            if following is not None and following <= seq + 1:
                continue
            try:
                # events are never changed: the storage keeps no copy of each to compare
                storage = SegmentStorage(path, read_only=True, append_only={EVENTS_TABLE})
            except (SegmentUnreadable, FileNotFoundError) as error:
                log.error("journal segment %s unreadable: %s", path, error)
                continue
            docs = storage.read().get(EVENTS_TABLE, {})
            for doc_seq in sorted(int(k) for k in docs):
                if doc_seq <= seq:
                    continue
                yield docs[str(doc_seq)]
                produced += 1
                if limit is not None and produced >= limit:
                    return

    def events_after(self, seq: int, limit: int | None = None) -> Iterator[Event]:
        """The events after ``seq``, their payloads typed. A record whose payload does not
        fit its type (written by a kiosk release that wrote it otherwise) is kept with its
        raw payload, and said in the log: it changes no state here, and the sync daemon
        ships it as recorded, for the server to keep for review."""
        for record in self.records_after(seq, limit):
            try:
                yield Event.from_record(record)
            except PayloadInvalid as error:
                log.error("journal event %s kept as recorded: %s", record.get("seq"), error)
                yield Event.from_record(record, keep_raw=True)

    def last_seq(self) -> int:
        segments = self.segments()
        for first, path in reversed(segments):
            try:
                docs = SegmentStorage(path, read_only=True).read().get(EVENTS_TABLE, {})
            except (SegmentUnreadable, FileNotFoundError):
                continue
            return max((int(k) for k in docs), default=first - 1)
        return 0

    def check(self) -> list[Damage]:
        """Verify every segment: readable, no damaged record, sequence numbers without gaps."""
        found: list[Damage] = []
        expected: int | None = None
        for first, path in self.segments():
            try:
                storage = SegmentStorage(path, read_only=True)
            except SegmentUnreadable as error:
                found.append(Damage(path.name, "unreadable", error.what))
                expected = None
                continue
            parsed = storage.parsed
            if parsed.corrupt:
                found.append(Damage(path.name, "corrupt_records", _("{bad} damaged record(s)").format(
                    bad=len(parsed.corrupt))))
            seqs = sorted(int(k) for k in storage.read().get(EVENTS_TABLE, {}))
            if expected is not None and first != expected:
                found.append(Damage(path.name, "gap", _("events {start} to {end} are missing").format(
                    start=expected, end=first - 1)))
            run = first
            for s in seqs:
                if s != run:
                    found.append(Damage(path.name, "gap", _("events {start} to {end} are missing").format(
                        start=run, end=s - 1)))
                run = s + 1
            expected = run
        return found
