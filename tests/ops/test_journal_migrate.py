"""`bookcorner journal migrate`, the step an upgrade runs as the kiosk's user: it says when
there is nothing to do, and refuses (exit 3, the journal untouched) a segment of a schema
this version has no migration for. The migration itself: tests/ops/test_upgrade.py."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from bookcorner.circulation.events import Checkout, EventDraft, EventType
from bookcorner.journal import schema
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.journal import Journal, list_segments, segment_records
from bookcorner.journal.storage import HEADER_ID, META_TABLE, SegmentStorage, write_new_file

ROOT = Path(__file__).resolve().parents[2]


def migrate(config: Path, data: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    return subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(config), "journal", "migrate",
                           "--data-dir", str(data)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_nothing_to_migrate_and_a_schema_without_migration(tmp_path):
    data, config = tmp_path / "data", tmp_path / "kiosk.toml"
    config.write_text('[kiosk]\nid = "corner-1"\n')
    clock = FixedClock(datetime(2026, 11, 23, 4, tzinfo=timezone.utc))
    with Journal(data / "journal", "corner-1", clock) as journal:
        journal.append([EventDraft(EventType.CHECKED_OUT, "S01", Checkout(item_id="X1", patron_id="S01", due=date(2026, 11, 30)))])
    done = migrate(config, data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"the journal is at schema {schema.SCHEMA}: nothing to migrate"

    # a segment from before the first schema this version knows how to migrate
    [(_first, path)] = list_segments(data / "journal")
    tables = SegmentStorage(path, read_only=True).read()
    tables[META_TABLE][HEADER_ID]["schema"] = 0
    write_new_file(path, segment_records(tables))
    before = path.read_bytes()
    done = migrate(config, data)
    assert done.returncode == 3
    assert "no migration from journal schema 0 to 1" in done.stderr
    assert path.read_bytes() == before
