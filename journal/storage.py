"""A TinyDB storage that is durable, crash-safe and cheap to write.

TinyDB's own JSONStorage rewrites the whole file in place on every write: the cost grows
with the data, a crash mid-write tears the file, and a zero-length file reads as an empty
database. ``SegmentStorage`` keeps TinyDB's interface (``read()`` returns the tables,
``write()`` receives them) but persists each write as one appended, checksummed change
record, made durable with fdatasync before ``write()`` returns:

    <crc32 of body, 8 hex digits> <body: {"u": {table: {id: doc}}, "d": {table: [ids]}}>\n

* A crash mid-append leaves an incomplete last record (no newline, or a checksum that
  does not match): it was never acknowledged, and the writer cuts it off when it reopens.
* A damaged record elsewhere (bit rot on an SD card) is detected by its checksum; the
  records around it are salvaged, the damaged file is kept aside, and the damage reported.
* A file with no valid record at all (zero-length, NUL-filled, garbage) is never taken for
  an empty database: opening it raises ``SegmentUnreadable``.
* A failed write (full disk, I/O error) cuts the file back to its last good record, rolls
  the in-memory tables back, and raises ``StoreWriteError``; nothing acknowledged is lost.
* Readers in other processes open the same file read-only and see whole records only.

Each file is a segment: the journal keeps segments small so that a write costs the same
after ten events or a million.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from tinydb.storages import Storage

from bookcorner.i18n import _

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

#: the table holding the segment's header (format, schema, kiosk, first sequence number)
META_TABLE = "_meta"
HEADER_ID = "1"

Tables = dict[str, dict[str, dict[str, Any]]]


class StoreError(Exception):
    """Something is wrong with the kiosk's stored data; the message says what to do."""


class StoreWriteError(StoreError):
    """A write did not become durable; nothing changed and nothing acknowledged was lost."""

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


class SegmentUnreadable(StoreError):
    """The file holds no valid record at all: not an empty database, a damaged one."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(
            _("{path}: {what}; it is not an empty database, it is damaged").format(path=path, what=what)
        )
        self.path = path
        self.what = what


def encode_record(changes: Mapping[str, Any]) -> bytes:
    body = _encode(changes)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


@dataclass
class Parsed:
    """The outcome of reading a segment's bytes."""

    tables: Tables = field(default_factory=dict)
    records: int = 0
    #: end of the last valid record: where the next append goes
    good_end: int = 0
    #: bytes after the last record that do not form one (a crash mid-append)
    torn_tail: int = 0
    #: (offset, length) of invalid records followed by valid ones: real damage
    corrupt: list[tuple[int, int]] = field(default_factory=list)


def _record_body(line: bytes) -> dict[str, Any] | None:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = _decode(body)
    except (ValueError, msgspec.DecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("u", {}), dict):
        return None
    return record


def apply_record(tables: Tables, record: Mapping[str, Any]) -> None:
    for name, docs in record.get("u", {}).items():
        tables.setdefault(name, {}).update(docs)
    for name, ids in record.get("d", {}).items():
        table = tables.get(name)
        if table is not None:
            for doc_id in ids:
                table.pop(doc_id, None)


def parse(blob: bytes, start: int = 0, tables: Tables | None = None) -> Parsed:
    """Replay the records in ``blob[start:]``.

    A complete line that is not a valid record is corruption. Bytes after the last
    newline are a torn tail: an append still in progress (seen by a reader) or cut short
    by a crash (seen by the writer when it reopens)."""
    parsed = Parsed(tables={} if tables is None else tables, good_end=start)
    offset = start
    end = len(blob)
    last_line_end = start
    while offset < end:
        newline = blob.find(b"\n", offset)
        if newline < 0:
            break
        record = _record_body(blob[offset:newline])
        if record is None:
            parsed.corrupt.append((offset, newline + 1 - offset))
        else:
            apply_record(parsed.tables, record)
            parsed.records += 1
            parsed.good_end = newline + 1
        offset = last_line_end = newline + 1
    parsed.torn_tail = end - last_line_end
    return parsed


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_sync = getattr(os, "fdatasync", os.fsync)


def write_new_file(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Create ``path`` whole or not at all: write a temporary file, make it durable,
    rename it into place, make the rename durable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            for record in records:
                _write_all(fd, encode_record(record))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as error:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise write_error(error, path) from error
    fsync_directory(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_error(error: OSError, path: Path) -> StoreWriteError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StoreWriteError(
            _("the disk is full: could not save to {path}. Nothing was recorded; free some space (or ask the "
              "librarian to) and scan again.").format(path=path),
            disk_full=True,
        )
    return StoreWriteError(
        _("could not save to {path}: {error}. Nothing was recorded; scan again, and tell the librarian if "
          "it keeps happening.").format(path=path, error=error.strerror or error)
    )


def _copy_doc(doc: Any) -> Any:
    return _decode(_encode(doc))


class SegmentStorage(Storage):
    """One segment file as a TinyDB storage (see the module docstring).

    ``append_only`` names tables whose documents are never changed or removed once
    written (the journal's events): their changes are found by comparing key sets, so a
    write costs the same however many documents the table holds."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        append_only: Iterable[str] = (),
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._append_only = frozenset(append_only)
        self._fd: int | None = None
        self._poisoned = False
        blob = self.path.read_bytes()
        parsed = parse(blob)
        if parsed.records == 0:
            what = _("the file is empty") if not blob else _("the file holds no valid record")
            raise SegmentUnreadable(self.path, what)
        self.parsed = parsed
        self._tables: Tables = parsed.tables
        self._size = parsed.good_end
        self._keys: dict[str, set[str]] = {}
        self._shadow: Tables = {}
        if not read_only:
            self._remember_all()  # a reader never writes: no changes to track
            if parsed.corrupt:
                raise StoreError(
                    _("{path}: damaged records must be salvaged before writing").format(path=self.path)
                )
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            if parsed.torn_tail:
                # an append that never completed: it was never acknowledged
                os.ftruncate(self._fd, parsed.good_end)
                os.fsync(self._fd)

    # -- TinyDB's Storage interface --------------------------------------------------------

    def read(self) -> Tables:
        return self._tables

    def write(self, data: Tables) -> None:
        if self._fd is None:
            raise StoreError(_("{path}: opened read-only").format(path=self.path))
        if self._poisoned:
            raise StoreWriteError(
                _("{path}: an earlier failed write could not be undone; restart the kiosk").format(path=self.path)
            )
        upserts, deletes = self._changes(data)
        if not upserts and not deletes:
            return
        record: dict[str, Any] = {"u": upserts}
        if deletes:
            record["d"] = deletes
        line = encode_record(record)
        offset = self._size
        try:
            _write_all(self._fd, line)
            _sync(self._fd)
        except OSError as error:
            try:
                os.ftruncate(self._fd, offset)
                os.fsync(self._fd)
            except OSError:
                self._poisoned = True
            self._rollback(data)
            raise write_error(error, self.path) from error
        self._size = offset + len(line)
        self._remember(upserts, deletes)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- reading more of a file another process is appending to ------------------------------

    def refresh(self) -> int:
        """Read records appended since the last read (read-only use); returns how many."""
        with self.path.open("rb") as fp:
            fp.seek(self._size)
            blob = fp.read()
        if not blob:
            return 0
        parsed = parse(blob, 0, self._tables)
        self._size += parsed.good_end
        self.parsed.records += parsed.records
        return parsed.records

    # -- change tracking ------------------------------------------------------------------

    def _changes(self, data: Tables) -> tuple[Tables, dict[str, list[str]]]:
        upserts: Tables = {}
        deletes: dict[str, list[str]] = {}
        for name, table in data.items():
            if name in self._append_only:
                known = self._keys.setdefault(name, set())
                new = table.keys() - known
                if len(table) != len(known) + len(new):
                    raise StoreError(f"{self.path}: documents removed from append-only table {name!r}")
                if new:
                    upserts[name] = {k: table[k] for k in sorted(new, key=_id_order)}
            else:
                old = self._shadow.get(name, {})
                changed = {k: v for k, v in table.items() if old.get(k) != v}
                gone = [k for k in old if k not in table]
                if changed:
                    upserts[name] = changed
                if gone:
                    deletes[name] = gone
        for name in set(self._keys) | set(self._shadow):
            if name not in data:
                gone = list(self._keys.get(name, ())) + list(self._shadow.get(name, {}))
                if name in self._append_only and gone:
                    raise StoreError(f"{self.path}: append-only table {name!r} dropped")
                if gone:
                    deletes[name] = gone
        return upserts, deletes

    def _remember_all(self) -> None:
        for name, table in self._tables.items():
            if name in self._append_only:
                self._keys[name] = set(table)
            else:
                self._shadow[name] = {k: _copy_doc(v) for k, v in table.items()}

    def _remember(self, upserts: Tables, deletes: Mapping[str, list[str]]) -> None:
        for name, docs in upserts.items():
            if name in self._append_only:
                self._keys.setdefault(name, set()).update(docs)
            else:
                shadow = self._shadow.setdefault(name, {})
                for doc_id, doc in docs.items():
                    shadow[doc_id] = _copy_doc(doc)
        for name, ids in deletes.items():
            kept = self._shadow.get(name)
            if kept is not None:
                for doc_id in ids:
                    kept.pop(doc_id, None)

    def _rollback(self, data: Tables) -> None:
        """Put the tables back as they were on disk (TinyDB changed them in place)."""
        for name in list(data):
            if name in self._append_only:
                known = self._keys.get(name, set())
                data[name] = {k: v for k, v in data[name].items() if k in known}
            elif name in self._shadow:
                data[name] = {k: _copy_doc(v) for k, v in self._shadow[name].items()}
            else:
                del data[name]
        for name, shadow in self._shadow.items():
            if name not in data:
                data[name] = {k: _copy_doc(v) for k, v in shadow.items()}


def _id_order(doc_id: str) -> tuple[int, str]:
    return (int(doc_id), doc_id) if doc_id.isdigit() else (0, doc_id)
