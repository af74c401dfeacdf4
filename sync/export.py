"""USB sneakernet: the unacknowledged events in one signed file, for a corner with no network.

``bookcorner export-batch --to /media/usb`` reads the journal (never writes it) and the
daemon's position, and writes ``<kiosk>-<first>-<last>.bcx`` whole or not at all (a
temporary file, fsync, rename, fsync the folder: a stick pulled out mid-write leaves no
half file under the final name). The librarian imports it at the library computer with
``bookcorner central import FILE``; importing it twice, or after the kiosk pushed the same
events, changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bookcorner.journal import incarnation
from bookcorner.journal.clock import ClockReading
from bookcorner.protocol.credentials import signing_key
from bookcorner.protocol.export import SUFFIX, ExportBody, seal
from bookcorner.protocol.messages import ClockReading as WireClock
from bookcorner.protocol.messages import WireEvent
from bookcorner.sync.batches import journal_identity, next_batch
from bookcorner.sync.position import load_position, position_for


@dataclass(frozen=True)
class Exported:
    path: Path
    from_seq: int
    to_seq: int
    events: int


def _write_whole(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (vfat on a stick) do not sync a folder; the rename is done
    finally:
        os.close(fd)


def export_batch(
    data_dir: str | os.PathLike[str],
    kiosk_id: str,
    token: str,
    target: str | os.PathLike[str],
    reading: ClockReading,
    *,
    since: int | None = None,
) -> Exported | None:
    """Write the events after ``since`` (default: the last acknowledged one) to
    ``target`` (a folder, or a file name). None when there is nothing to export."""
    root = Path(data_dir)
    if since is None:
        after = position_for(load_position(root / "sync"), incarnation.load(root / "journal")).acked_seq
    else:
        after = since
    batch = next_batch(root / "journal", after, limit=10**9)
    if not batch.events:
        return None
    body = ExportBody(
        kiosk_id=kiosk_id,
        # the same range of the same journal gets the same id: exporting again is importing again
        batch_id=f"usb-{batch.from_seq}-{batch.to_seq}-{batch.events[-1]['event_id'][:8]}",
        clock=WireClock(reading.boot_id, reading.monotonic_ns, reading.wall.isoformat(timespec="milliseconds"),
                        reading.synced),
        from_seq=batch.from_seq,
        to_seq=batch.to_seq,
        events=[WireEvent(**record) for record in batch.events],
        journal=journal_identity(root / "journal"),
    )
    data = seal(body, signing_key(token), reading.wall.isoformat(timespec="seconds"))
    path = Path(target)
    if path.is_dir():
        path = path / f"{kiosk_id}-{batch.from_seq:08d}-{batch.to_seq:08d}{SUFFIX}"
    _write_whole(path, data)
    return Exported(path, batch.from_seq, batch.to_seq, len(batch.events))
