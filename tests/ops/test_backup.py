"""`bookcorner backup` / `restore`: a restore onto a fresh data directory reproduces the
kiosk exactly (its events, its circulation state, what waits for the server, its
credential), a backup taken while events are written and acknowledged is consistent,
and a damaged backup or an occupied data directory is refused."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import Journal, JournalReader
from bookcorner.kiosk.desk import CirculationDesk
from bookcorner.ops.backup import BackupError, make_backup, restore_backup
from bookcorner.sync.position import Position, load_position, save_position
from bookcorner.sync.status import Phase, read_status, write_status
from tests.sync.kiosk import TestKiosk

ROOT = Path(__file__).resolve().parents[2]


def bookcorner(*words: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    return subprocess.run([sys.executable, "-m", "bookcorner", *words], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def events(root: Path) -> list:
    return list(JournalReader(root / "journal").events_after(0))


def desk_state(root: Path, kiosk_id: str):
    clock = FixedClock(datetime(2026, 11, 23, 12, tzinfo=timezone.utc))
    with CirculationDesk(root, kiosk_id, clock) as desk:
        return desk.state


@pytest.fixture
def demo_kiosk(tmp_path) -> Path:
    """The demo school after its scripted visit (real loans, returns and a checkpoint),
    with a sync daemon's position and status and a credential, as on a running corner."""
    root = tmp_path / "kiosk"
    done = bookcorner("demo", "--data-dir", str(root), "--tour")
    assert done.returncode == 0, done.stderr
    last = JournalReader(root / "journal").last_seq()
    assert last > 4
    (root / "sync").mkdir(exist_ok=True)
    save_position(root / "sync", Position(acked_seq=last - 3))
    write_status(root, replace(read_status(root), phase=Phase.OFFLINE, acked_seq=last - 3,
                               last_error="the server could not be reached", needs_review=1))
    (root / "sync" / "credential").write_text("secret-token\n")
    os.chmod(root / "sync" / "credential", 0o600)
    (root / "sync" / "daemon.lock").write_text("1234")
    return root


def test_a_restore_reproduces_the_kiosk_exactly(demo_kiosk, tmp_path):
    stick = tmp_path / "stick"
    stick.mkdir()
    done = bookcorner("backup", "--data-dir", str(demo_kiosk), "--to", str(stick))
    assert done.returncode == 0, done.stderr
    [archive] = stick.iterdir()
    assert "(3 not yet on the server)" in done.stdout
    assert archive.stat().st_mode & 0o077 == 0  # the credential is in it

    fresh = tmp_path / "new-sd-card" / "bookcorner"
    done = bookcorner("restore", str(archive), "--data-dir", str(fresh))
    assert done.returncode == 0, done.stderr

    assert events(fresh) == events(demo_kiosk)
    assert read_status(fresh) == read_status(demo_kiosk)
    assert load_position(fresh / "sync") == load_position(demo_kiosk / "sync")
    last = JournalReader(fresh / "journal").last_seq()
    assert read_status(fresh).waiting(last) == read_status(demo_kiosk).waiting(last) == 3
    assert (fresh / "sync" / "credential").read_text() == "secret-token\n"
    assert (fresh / "sync" / "credential").stat().st_mode & 0o777 == 0o600
    assert not (fresh / "sync" / "daemon.lock").exists()  # a running process's lock is not data
    for folder in ("reference", "state"):
        for original in (demo_kiosk / folder).rglob("*"):
            if original.is_file():
                assert (fresh / original.relative_to(demo_kiosk)).read_bytes() == original.read_bytes()
    assert desk_state(fresh, "demo-corner") == desk_state(demo_kiosk, "demo-corner")
    # the restored corner goes on numbering where the old one stopped
    with Journal(fresh / "journal", "demo-corner", FixedClock(datetime.now(timezone.utc))) as journal:
        assert journal.last_seq == last


def test_a_backup_taken_while_events_are_written_and_acknowledged_is_consistent(tmp_path):
    kiosk = TestKiosk(tmp_path / "kiosk", "corner-1", "http://127.0.0.1:9", "token")
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer():  # the kiosk: one event at a time, small segments so that they roll over during the backups
        try:
            with Journal(kiosk.root / "journal", "corner-1", kiosk.clock, segment_events=16) as journal:
                n = 0
                while not stop.is_set() and n < 3000:
                    n += 1
                    journal.append(kiosk.loans_and_returns(n, 1)[:1])
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    def acknowledger():  # the sync daemon: acknowledges what is in the journal
        try:
            while not stop.is_set():
                last = JournalReader(kiosk.root / "journal").last_seq() if (kiosk.root / "journal").exists() else 0
                save_position(kiosk.root / "sync", Position(acked_seq=last))
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    (kiosk.root / "sync").mkdir(exist_ok=True)
    threads = [threading.Thread(target=writer), threading.Thread(target=acknowledger)]
    for thread in threads:
        thread.start()
    try:
        summaries = []
        for number in range(8):
            summaries.append(make_backup(kiosk.root, tmp_path / f"backup-{number}.tar.gz"))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    final = events(kiosk.root)
    assert summaries[-1].last_seq > summaries[0].last_seq  # the backups really ran while events came in
    for number, summary in enumerate(summaries):
        restored = tmp_path / f"restored-{number}"
        restore_backup(summary.path, restored)
        assert JournalReader(restored / "journal").check() == []
        copy = events(restored)
        assert copy == final[:len(copy)] and len(copy) == summary.last_seq
        # never a restored kiosk behind what the server already has
        assert load_position(restored / "sync").acked_seq <= summary.last_seq


def test_a_damaged_backup_and_an_occupied_data_directory_are_refused(demo_kiosk, tmp_path):
    archive = make_backup(demo_kiosk, tmp_path / "b.tar.gz").path
    with pytest.raises(BackupError, match="already holds a journal"):
        restore_backup(archive, demo_kiosk)
    # one event changed inside the archive: its checksum no longer matches
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive, "r:gz") as source, tarfile.open(tampered, "w:gz") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.startswith("journal/"):
                data = data.replace(b'"seq":2', b'"seq":9', 1)
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    done = bookcorner("restore", str(tampered), "--data-dir", str(tmp_path / "fresh"))
    assert done.returncode == 3
    assert "is damaged" in done.stderr
    assert not (tmp_path / "fresh" / "journal").exists()
    done = bookcorner("restore", str(tmp_path / "missing.tar.gz"), "--data-dir", str(tmp_path / "fresh"))
    assert done.returncode == 3 and "cannot restore" in done.stderr



def test_an_archive_whose_manifest_is_not_a_file_is_refused(tmp_path):
    archive = tmp_path / "odd.tar.gz"
    with tarfile.open(archive, "w:gz") as out:
        manifest = tarfile.TarInfo("bookcorner-backup.json")
        manifest.type = tarfile.DIRTYPE
        out.addfile(manifest)
    with pytest.raises(BackupError, match="cannot restore"):
        restore_backup(archive, tmp_path / "fresh")

def test_a_restore_made_with_sudo_is_flagged_by_doctor_until_chowned(demo_kiosk, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: files of another user")
    archive = make_backup(demo_kiosk, tmp_path / "b.tar.gz").path
    fresh = tmp_path / "fresh"
    restore_backup(archive, fresh)  # as root: the files are root's
    os.chmod(tmp_path, 0o755)
    os.chmod(tmp_path.parent, 0o755)
    done = bookcorner("doctor", "--data-dir", str(fresh), "--user", "nobody")
    assert "[PROBLEM] the kiosk's user nobody cannot change" in done.stdout
    assert f"sudo chown -R nobody: {fresh}" in done.stdout
    subprocess.run(["chown", "-R", "nobody:", str(fresh)], check=True)
    done = bookcorner("doctor", "--data-dir", str(fresh), "--user", "nobody")
    assert "cannot change" not in done.stdout


def test_a_restore_run_with_sudo_gives_the_files_to_the_kiosk_user(demo_kiosk, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: files of another user")
    archive = make_backup(demo_kiosk, tmp_path / "b.tar.gz").path
    # the data directory the installer made, owned by the kiosk's user (a throwaway uid here)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    os.chown(fresh, 54321, 54322)
    done = bookcorner("restore", str(archive), "--data-dir", str(fresh))
    assert done.returncode == 0, done.stderr
    assert "the restored files belong to 54321, the kiosk's user" in done.stdout
    restored = [fresh, *fresh.rglob("*")]
    assert len(restored) > 5 and {(path.stat().st_uid, path.stat().st_gid) for path in restored} == {(54321, 54322)}
    assert not [path for path in fresh.iterdir() if path.name.startswith(".")]  # no staging left behind
    assert events(fresh) == events(demo_kiosk)
    # no data directory yet: the user named (else bookcorner) gets it
    other = tmp_path / "other"
    done = bookcorner("restore", str(archive), "--data-dir", str(other), "--user", "nobody")
    assert done.returncode == 0, done.stderr
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout)
    assert {path.stat().st_uid for path in [other, *other.rglob("*")]} == {nobody}
