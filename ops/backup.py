"""``bookcorner backup`` / ``restore``: a kiosk's data directory in one file, taken while
the kiosk and the sync daemon run.

Why a copy taken while they run is consistent:

* the reference snapshot, the circulation checkpoint and the sync status and position are
  each replaced atomically (written aside, then renamed), so each file read is one whole
  version;
* the journal is append-only: sealed segments never change, and the open one only grows.
  Each segment is copied up to its last complete record;
* the order matters: everything else is copied *before* the journal, so the journal copy
  holds at least every event the copied sync position or checkpoint refers to. (The
  other way round, a restored kiosk could hand out again a number the server has.)

The file is a gzip'd tar with a manifest (``bookcorner-backup.json``: the files with their
SHA-256, the journal's last number, what the server had acknowledged) that ``restore``
checks before anything is put in place. Restoring onto a data directory that already
holds a journal is refused: two kiosks with the same events would be worse than none.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bookcorner.i18n import _

MANIFEST = "bookcorner-backup.json"
FORMAT = "bookcorner.backup"
VERSION = 1
#: copied first, in this order; then the journal
BEFORE_JOURNAL = ("reference", "state", "sync")
#: never copied: locks and one-shot requests belong to the running processes
SKIPPED_NAMES = {"writer.lock", "daemon.lock", "wake"}
SKIPPED_SUFFIXES = (".tmp", ".part", ".lock")


class BackupError(Exception):
    """A backup that cannot be made or restored; the message says why, for a person."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    files: int
    last_seq: int
    acked_seq: int


def _skipped(path: Path) -> bool:
    return path.name in SKIPPED_NAMES or path.name.endswith(SKIPPED_SUFFIXES) or path.name.startswith(".")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and not _skipped(p))


def _whole_records(data: bytes) -> bytes:
    """A journal segment up to its last complete record (records are lines)."""
    end = data.rfind(b"\n")
    return data[:end + 1] if end >= 0 else b""


def _read(path: Path, journal: bool) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # replaced or removed between the listing and the read
        return None
    return _whole_records(data) if journal else data


def make_backup(data_dir: Path, target: Path) -> BackupSummary:
    from bookcorner.journal import incarnation
    from bookcorner.journal.journal import JournalReader, list_segments
    from bookcorner.sync.position import load_position, position_for

    if not (data_dir / "journal").is_dir() and not (data_dir / "reference").is_dir():
        raise BackupError(_("{path} is not a kiosk's data directory (no journal, no reference data)").format(
            path=data_dir))
    if target.is_dir():
        target = target / f"bookcorner-{data_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"
    contents: list[tuple[str, bytes, int]] = []
    for folder in BEFORE_JOURNAL:
        for path in _files(data_dir / folder):
            data = _read(path, journal=False)
            if data is not None:
                contents.append((path.relative_to(data_dir).as_posix(), data, path.stat().st_mode & 0o777))
    journal_is = incarnation.load(data_dir / "journal")
    acked = position_for(load_position(data_dir / "sync"), journal_is).acked_seq if (data_dir / "sync").is_dir() else 0
    for _first, path in list_segments(data_dir / "journal") if (data_dir / "journal").is_dir() else []:
        data = _read(path, journal=True)
        if data is not None:
            contents.append((path.relative_to(data_dir).as_posix(), data, 0o644))
    manifest = {"format": FORMAT, "version": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "acked_seq": acked, "incarnation": journal_is.incarnation_id if journal_is else None,
                "files": {name: hashlib.sha256(data).hexdigest() for name, data, _m in contents}}
    with tempfile.TemporaryDirectory(prefix="bookcorner-backup-") as scratch:
        # the journal as copied, checked the way the kiosk will read it
        for name, data, _mode in contents:
            if name.startswith("journal/"):
                (Path(scratch) / Path(name).name).write_bytes(data)
        manifest["last_seq"] = last_seq = JournalReader(Path(scratch)).last_seq() if any(Path(scratch).iterdir()) else 0
    if last_seq < acked:
        raise BackupError(_("the journal copy ends at event {seq} but the server has {acked}: try again").format(
            seq=manifest["last_seq"], acked=acked))
    part = target.with_name(target.name + ".part")
    with open(part, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
            _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode(), 0o644)
            for name, data, mode in contents:
                _add(tar, name, data, mode)
        raw.flush()
        os.fsync(raw.fileno())
    os.chmod(part, 0o600)  # the credential is in it
    os.replace(part, target)
    return BackupSummary(target, len(contents), last_seq, acked)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def hand_over(path: Path, owner: tuple[int, int]) -> None:
    """Give ``path`` and everything in it to ``owner`` (uid, gid): what root writes into a
    data directory (a restore, a migration run with sudo) is otherwise root's, and the
    kiosk can no longer record."""
    os.chown(path, *owner, follow_symlinks=False)
    for inner in path.rglob("*"):
        os.chown(inner, *owner, follow_symlinks=False)


def restore_backup(archive: Path, data_dir: Path, owner: tuple[int, int] | None = None) -> BackupSummary:
    """Put ``archive`` onto a data directory without a journal; ``owner`` (uid, gid), when
    given, gets the restored files (a restore run as root).

    The restored journal goes on as a new incarnation (journal.incarnation): the events
    it numbers from here may carry numbers the server already has from the kiosk's life
    after the backup, and the server must not take those as these."""
    from bookcorner.journal import incarnation
    from bookcorner.journal.journal import JournalReader

    if (data_dir / "journal").exists() and any((data_dir / "journal").iterdir()):
        raise BackupError(_("{path} already holds a journal: restore onto an empty data directory (move this one "
                            "aside first)").format(path=data_dir))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {member.name: member for member in tar.getmembers()}
            if MANIFEST not in members:
                raise BackupError(_("{path} is not a bookcorner backup").format(path=archive))
            manifest = json.loads((tar.extractfile(members[MANIFEST]) or io.BytesIO()).read())  # no data: not a file
            if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
                raise BackupError(_("{path} is not a bookcorner backup").format(path=archive))
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            # staged on the data directory's own filesystem (it may be a partition mounted
            # there), so that each folder is put in place by a rename
            staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restoring-",
                                            dir=data_dir if data_dir.is_dir() else data_dir.parent))
            try:
                for name, digest in manifest["files"].items():
                    member = members.get(name)
                    relative = Path(name)
                    if (member is None or not member.isfile() or relative.is_absolute() or ".." in relative.parts
                            or relative.parts[0] not in (*BEFORE_JOURNAL, "journal")):
                        raise BackupError(_("the backup {path} is damaged ({name})").format(path=archive, name=name))
                    data = (tar.extractfile(member) or io.BytesIO()).read()
                    if hashlib.sha256(data).hexdigest() != digest:
                        raise BackupError(_("the backup {path} is damaged ({name})").format(path=archive, name=name))
                    out = staging / relative
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(data)
                    os.chmod(out, member.mode & 0o777)
                journal = staging / "journal"
                if journal.is_dir() and (JournalReader(journal).check() or
                                         JournalReader(journal).last_seq() != manifest["last_seq"]):
                    raise BackupError(_("the backup {path} is damaged (journal)").format(path=archive))
                journal.mkdir(exist_ok=True)
                incarnation.save(journal, incarnation.Incarnation.begin(
                    incarnation.Reason.RESTORED, manifest["last_seq"] + 1, manifest.get("incarnation"),
                    manifest.get("created")))
                for folder in (*BEFORE_JOURNAL, "journal"):
                    if (staging / folder).exists():
                        destination = data_dir / folder
                        if destination.exists():
                            shutil.rmtree(destination)
                        data_dir.mkdir(parents=True, exist_ok=True)
                        os.replace(staging / folder, destination)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            if owner is not None:
                hand_over(data_dir, owner)
    except (tarfile.TarError, OSError, EOFError, ValueError, KeyError) as error:
        raise BackupError(_("cannot restore {path}: {error}").format(path=archive, error=error)) from None
    return BackupSummary(archive, len(manifest["files"]), manifest["last_seq"], manifest["acked_seq"])
