"""Upgrading in place, in a throwaway root: a kiosk's data kept from an uninstalled program
(events of an older journal schema, the user that owns them) gets release A (kiosk and
central server on one machine), which keeps a backup before it migrates the journal; with
a central database one migration behind, release B (a new journal schema with its
migration) upgrades it: the events are intact and migrated, the database is at head, a
backup is kept, and a second run changes nothing. Release C, whose journal schema has no
migration, fails: the program and the data as they were are put back, and the error says
so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from bookcorner.circulation.events import Checkout, EventDraft, EventType
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import Journal, JournalReader, list_segments, read_header, segment_records
from bookcorner.journal.storage import HEADER_ID, META_TABLE, SegmentStorage, write_new_file
from bookcorner.central.migrations import config as migrations_config
from bookcorner.ops.backup import hand_over
from bookcorner.ops.install import CENTRAL_LOCK_FILE, LOCK_FILE, STAMP, Installer
from bookcorner.ops.units import ROLES
from tests.ops.conftest import bookcorner, release

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("systemctl"),
                                reason="installing needs root, useradd and systemctl")

SCHEMA = Path("journal/schema.py")
#: the program's venv is made with Debian's Python, as on the Pi: the kiosk's user runs the
#: migrations, and may not enter a Python under /root
SYSTEM_PYTHON = Path("/usr/bin/python3")


def new_schema(version: int, migration: bool) -> dict[str, str]:
    """journal/schema.py of a release whose journal schema is ``version``; with a
    migration from the one before that notes it in every event's payload."""
    text = (Path(__file__).resolve().parents[2] / SCHEMA).read_text()
    text = text.replace("SCHEMA = 1\n", f"SCHEMA = {version}\n")
    if migration:
        text = text.replace("MIGRATIONS: Mapping[int, Migration] = {}", f'''

def _note(tables: Tables) -> Tables:
    events = {{seq: {{**event, "payload": {{**event["payload"], "schema": {version}}}}}
              for seq, event in tables.get("events", {{}}).items()}}
    return {{**tables, "events": events}}


MIGRATIONS: Mapping[int, Migration] = {{{version - 1}: _note}}''')
    return {SCHEMA.as_posix(): text}


def in_venv(system: Path, code: str) -> str:
    done = subprocess.run([str(system / "opt/bookcorner/venv/bin/python"), "-c", code], capture_output=True,
                          text=True, cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def records(system: Path) -> list[dict]:
    """The journal as the installed program reads it."""
    journal = system / "var/lib/bookcorner/journal"
    return json.loads(in_venv(system, "import json; from bookcorner.journal.journal import JournalReader; "
                                      f"print(json.dumps(list(JournalReader({str(journal)!r}).records_after(0))))"))


def as_schema(journal: Path, version: int) -> None:
    """Every segment's header says ``version`` (what an older release wrote)."""
    for _first, path in list_segments(journal):
        mode = path.stat().st_mode & 0o777
        tables = SegmentStorage(path, read_only=True).read()
        tables[META_TABLE][HEADER_ID]["schema"] = version
        write_new_file(path, segment_records(tables))
        os.chmod(path, mode)


def schemas_in(archive: Path, scratch: Path) -> set[int]:
    """The journal schemas of the segments a backup holds."""
    scratch.mkdir()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.startswith("journal/"):
                (scratch / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    return {read_header(path)["schema"] for _first, path in list_segments(scratch)}


def owners(folder: Path) -> set[int]:
    return {path.stat().st_uid for path in [folder, *folder.rglob("*")]}


def test_upgrade_migrates_keeps_a_backup_then_changes_nothing_and_a_failure_rolls_back(system, wheelhouse,
                                                                                          tmp_path):
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 to make the program's venv with")
    a = release(tmp_path / "a", new_schema(1, migration=True))
    b = release(tmp_path / "b", new_schema(2, migration=True))
    c = release(tmp_path / "c", new_schema(3, migration=False))
    words = ["install", "--root", str(system), "--wheelhouse", str(wheelhouse), "--python", str(SYSTEM_PYTHON)]

    # what `uninstall` left of a kiosk that had recorded events (three segments, two sealed)
    # with the journal schema before A's: its data and the user that owns them
    Installer(system).user()
    passwd = {line.split(":")[0]: line.split(":") for line in (system / "etc/passwd").read_text().splitlines()}
    owner = int(passwd["bookcorner"][2]), int(passwd["bookcorner"][3])
    data = system / "var/lib/bookcorner"
    clock = FixedClock(datetime(2026, 11, 23, 9, tzinfo=timezone.utc), synced=True)
    with Journal(data / "journal", "demo-corner", clock, segment_events=4) as journal:
        for n in range(10):
            journal.append([EventDraft(EventType.CHECKED_OUT, "S01", Checkout(
                item_id=f"X{n:06d}", patron_id="S01", card_id="c", code=f"X{n:06d}", due=date(2026, 11, 30)))])
    as_schema(data / "journal", 0)
    hand_over(data, owner)

    first = bookcorner(a, *words, "--role", "both")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    kept = out.index("changed: a backup of the data: /var/backups/bookcorner/bookcorner-bookcorner-")
    assert kept < out.index("changed: the program in") < out.index("changed: the journal migrated to schema 1 (3 "
                                                                    "segment(s))")
    [reinstall_backup] = (system / "var/backups/bookcorner").iterdir()
    assert schemas_in(reinstall_backup, tmp_path / "kept") == {0}  # taken before the migration
    units, boot = ROLES["both"]
    assert all((system / "etc/systemd/system" / unit).is_file() for unit in units)
    assert all((system / "etc/systemd/system/multi-user.target.wants" / unit).is_symlink() for unit in boot)
    venv = system / "opt/bookcorner/venv"
    assert frozen(venv) == pinned()

    dependencies_of_a = json.loads((venv / STAMP).read_text())["dependencies"]
    # the events as A migrated them
    before = records(system)
    assert [record["payload"]["schema"] for record in before] == [1] * 10
    assert {read_header(path)["schema"] for _first, path in list_segments(data / "journal")} == {1}
    # and a central database one migration behind (what A's server made, before a release added 0003)
    # (A's install made one when it paired its kiosk with it: made again here, one migration behind)
    central = system / "var/lib/bookcorner-central"
    (central / "central.db").unlink()
    in_venv(system, "from bookcorner.central import db; from bookcorner.central.migrations import upgrade; "
                    f"store = db.Store({str(central / 'central.db')!r})\n"
                    "with store.writing() as conn: upgrade(conn, '0002')")
    hand_over(central, owner)

    (venv / "made-by-a").write_text("")
    upgraded = bookcorner(b, *words)  # the role installed is kept
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    # B pins the same dependencies: they were copied from A's program, not installed again
    assert (venv / "made-by-a").exists() and frozen(venv) == pinned()
    assert json.loads((venv / STAMP).read_text())["dependencies"] == dependencies_of_a
    out = upgraded.stdout
    assert "already so: no service to stop" in out
    assert "changed: a backup of the data: /var/backups/bookcorner/bookcorner-bookcorner-" in out
    assert "changed: a copy of the central database: /var/backups/bookcorner/central-" in out
    assert "changed: the program in /opt/bookcorner/venv" in out
    assert "changed: the journal migrated to schema 2 (3 segment(s))" in out
    assert "changed: the central database's schema brought up to date" in out
    after = records(system)
    assert after == [{**record, "payload": {**record["payload"], "schema": 2}} for record in before]
    assert {read_header(path)["schema"] for _first, path in list_segments(data / "journal")} == {2}
    assert owners(data) == {owner[0]} and owners(central) == {owner[0]}
    assert in_venv(system, "import sqlite3; print(sqlite3.connect("
                           f"{str(central / 'central.db')!r}).execute('select version_num from alembic_version')"
                           ".fetchone()[0])").strip() == migrations_head()
    backups = sorted((system / "var/backups/bookcorner").iterdir())
    assert (system / "var/backups/bookcorner").stat().st_mode & 0o777 == 0o700
    upgrade_backup = [path for path in backups if path.suffix == ".gz" and path != reinstall_backup][-1]
    assert schemas_in(upgrade_backup, tmp_path / "kept-by-b") == {1}
    with tarfile.open(upgrade_backup) as tar:
        manifest = json.loads(tar.extractfile("bookcorner-backup.json").read())
    assert manifest["last_seq"] == 10 and sum(name.startswith("journal/") for name in manifest["files"]) == 3
    assert not (venv.parent / "venv.previous").exists()

    again = bookcorner(b, *words)
    assert again.returncode == 0, again.stderr
    assert "changed:" not in again.stdout and again.stdout.rstrip().endswith("nothing to change")
    assert "already so: the journal at schema 2\n" in again.stdout
    assert records(system) == after

    stamp = (venv / STAMP).read_text()
    failed = bookcorner(c, *words)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "changed: the program in /opt/bookcorner/venv" in failed.stdout
    assert "the journal could not be migrated: " in failed.stderr and "no migration from journal schema 2" in \
        failed.stderr
    assert "Nothing was lost: the previous program is back in place." in failed.stderr
    assert "the data was restored from /var/backups/bookcorner/bookcorner-bookcorner-" in failed.stderr
    assert (venv / STAMP).read_text() == stamp and not (venv.parent / "venv.previous").exists()
    assert records(system) == after  # read by B's program, back in place
    assert owners(data) == {owner[0]}
    assert JournalReader(data / "journal").check() == []


def frozen(venv: Path) -> set[str]:
    """The dependencies installed in ``venv``, as ``name==version``."""
    out = subprocess.run([str(venv / "bin/python"), "-m", "pip", "freeze", "--exclude", "bookcorner"],
                         capture_output=True, text=True).stdout
    return {line.lower().replace("_", "-") for line in out.splitlines()}


def pinned() -> set[str]:
    """What the kiosk's and the central server's locks pin."""
    return {line.lower() for lock in (LOCK_FILE, CENTRAL_LOCK_FILE) for line in lock.read_text().splitlines()
            if line and not line.startswith("#")}


def migrations_head() -> str:
    """The newest central migration in this checkout: what an upgrade brings the database to."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrations_config()).get_current_head()
    assert head is not None
    return head
