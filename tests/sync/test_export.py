"""USB sneakernet: a corner with no network exports its events to a stick, the librarian
imports the file at the library computer; importing twice, or after the kiosk pushed
the same events, changes nothing, and a file changed on the way is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.imports import import_export
from bookcorner.protocol.credentials import bearer
from tests.sync.kiosk import TestKiosk


def central_command(central, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bookcorner", "central", *args, "--db", central.db_url],
                          capture_output=True, text=True, timeout=60)


def stored(central, kiosk_id: str) -> list[int]:
    with central.store.reading() as conn:
        return list(conn.execute(select(db.events.c.seq).where(db.events.c.kiosk_id == kiosk_id)
                                 .order_by(db.events.c.seq)).scalars())


def test_export_to_a_stick_import_twice_then_sync_changes_nothing_more(central, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path / "kiosk", kiosk_id, central.url, central.add_kiosk(kiosk_id))
    last = kiosk.record(kiosk.loans_and_returns(0, 20))
    stick = tmp_path / "usb"
    stick.mkdir()
    exported = kiosk.bookcorner("export-batch", "--to", str(stick))
    assert exported.returncode == 0, exported.stderr
    [file] = list(stick.iterdir())
    assert file.name == f"{kiosk_id}-00000001-{last:08d}.bcx" and f"numbers 1 to {last}" in exported.stdout

    first = central_command(central, "import", str(file), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)[0] | {"file": None} == {
        "file": None, "kiosk_id": kiosk_id, "applied_seq": last, "applied": last, "applied_with_warning": 0,
        "duplicate": 0, "needs_review": 0}
    again = central_command(central, "import", str(file))
    assert again.returncode == 0 and f"{last} already here" in again.stdout
    assert stored(central, kiosk_id) == list(range(1, last + 1))

    # the network comes back: the daemon's first push is answered "duplicate", and it moves on
    result = kiosk.daemon().run_round()
    assert result.ok and result.acked_seq == last
    assert stored(central, kiosk_id) == list(range(1, last + 1))
    nothing = kiosk.bookcorner("export-batch", "--to", str(stick))
    assert nothing.returncode == 0 and "nothing to export" in nothing.stdout


def test_a_file_changed_on_the_way_is_refused(central, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path / "kiosk", kiosk_id, central.url, central.add_kiosk(kiosk_id))
    kiosk.record(kiosk.loans_and_returns(0, 2))
    target = tmp_path / "batch.bcx"
    assert kiosk.bookcorner("export-batch", "--to", str(target)).returncode == 0
    envelope = json.loads(target.read_bytes())
    envelope["body"] = envelope["body"].replace('"S01"', '"S02"')  # someone lends the books to another child
    target.write_text(json.dumps(envelope))
    refused = central_command(central, "import", str(target))
    assert refused.returncode == 1 and "signature does not match" in refused.stderr
    assert stored(central, kiosk_id) == []


def test_a_file_from_a_kiosk_the_server_does_not_know_is_refused(central_sqlite, tmp_path):
    kiosk = TestKiosk(tmp_path / "kiosk", "corner-unknown-here", central_sqlite.url, "bck1_made-up")
    kiosk.record(kiosk.loans_and_returns(0, 1))
    target = tmp_path / "batch.bcx"
    assert kiosk.bookcorner("export-batch", "--to", str(target)).returncode == 0
    refused = central_command(central_sqlite, "import", str(target))
    assert refused.returncode == 1 and "no kiosk 'corner-unknown-here'" in refused.stderr


def test_the_librarian_can_upload_an_export_over_https_too(central_sqlite, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path / "kiosk", kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))
    last = kiosk.record(kiosk.loans_and_returns(0, 3))
    target = tmp_path / "batch.bcx"
    assert kiosk.bookcorner("export-batch", "--to", str(target)).returncode == 0
    url = f"{central_sqlite.url}/v1/imports"
    assert requests.post(url, data=target.read_bytes(), headers=bearer(kiosk.credential.read_text().strip()),
                         timeout=10).status_code == 403  # a kiosk cannot import for itself
    answer = requests.post(url, data=target.read_bytes(), headers=bearer(central_sqlite.add_librarian()), timeout=10)
    assert answer.status_code == 200 and answer.json()["applied_seq"] == last


def test_a_big_export_is_imported_in_push_sized_chunks(central_sqlite, kiosk_id, tmp_path):
    kiosk = TestKiosk(tmp_path / "kiosk", kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))
    last = kiosk.record(kiosk.loans_and_returns(0, 25))
    target = tmp_path / "batch.bcx"
    assert kiosk.bookcorner("export-batch", "--to", str(target)).returncode == 0
    reply = import_export(central_sqlite.store, target.read_bytes(), chunk=7)
    assert [(c.from_seq, c.to_seq) for c in reply.chunks][:2] == [(1, 7), (8, 14)] and reply.applied_seq == last
    again = import_export(central_sqlite.store, target.read_bytes(), chunk=7)
    assert sum(c.duplicate for c in again.chunks) == last
    assert stored(central_sqlite, kiosk_id) == list(range(1, last + 1))
