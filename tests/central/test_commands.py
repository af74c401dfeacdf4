"""`bookcorner central` as the librarian uses it at the library computer: register a
kiosk and get its credential once, see the kiosks and the review queue, load the
school's data, serve with several processes and stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.protocol.credentials import bearer
from tests.central.harness import CentralServer
from tests.central.pushes import KioskClient, checkin


def central(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BOOKCORNER_CENTRAL_DB"}
    return subprocess.run([sys.executable, "-m", "bookcorner", "central", *args, "--db", db_url],
                          capture_output=True, text=True, timeout=60, env=env)


def test_add_kiosk_prints_the_credential_once_and_refuses_a_second_time(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    added = central(db_url, "add-kiosk", "corner-3-2", "--name", "三年级二班")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("bck1_") and len(token) > 40 and "shown only once" in added.stderr
    assert token not in (tmp_path / "central.db").read_bytes().decode("latin-1")  # only its hash is kept
    again = central(db_url, "add-kiosk", "corner-3-2")
    assert again.returncode == 1 and "--reissue" in again.stderr
    reissued = central(db_url, "add-kiosk", "corner-3-2", "--reissue")
    assert reissued.returncode == 0 and reissued.stdout.strip() != token
    listing = json.loads(central(db_url, "kiosks", "--json").stdout)["kiosks"]
    assert [(k["kiosk_id"], k["name"], k["applied_seq"]) for k in listing] == [("corner-3-2", "三年级二班", 0)]
    assert central(db_url, "add-librarian", "Ms Li").returncode == 0
    store = db.Store(db_url)
    try:  # who issued which credential, as from the dashboard (the refused second add left nothing)
        with store.reading() as conn:
            audit = [(a.action, a.target) for a in conn.execute(select(db.audit_log).order_by(db.audit_log.c.audit_id))]
            whom = {a.who for a in conn.execute(select(db.audit_log))}
    finally:
        store.dispose()
    assert audit == [("kiosk.add", "corner-3-2"), ("kiosk.reissue", "corner-3-2"), ("librarian.add", "Ms Li")]
    assert all(w.endswith("(command line)") for w in whom), whom


def test_a_reissued_credential_replaces_the_old_one(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    old = central(db_url, "add-kiosk", "corner-1").stdout.strip()
    server = CentralServer(db_url, tmp_path / "server.log").start()
    try:
        kiosk = KioskClient(server.url, "corner-1", old)
        assert kiosk.push([kiosk.event(*checkin("I1"))]).status_code == 200
        new = central(db_url, "add-kiosk", "corner-1", "--reissue").stdout.strip()
        time.sleep(2.2)  # the server remembers a credential's answer for 2 s at most
        assert kiosk.push([kiosk.event(*checkin("I1"))]).status_code == 401
        assert kiosk.push([kiosk.event(*checkin("I1"))], token=new).status_code == 200
    finally:
        server.stop()


def test_the_review_queue_and_the_demo_school(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    token = central(db_url, "add-kiosk", "corner-1").stdout.strip()
    loaded = central(db_url, "load-reference", "--demo")
    assert loaded.returncode == 0 and "patrons" in loaded.stdout
    assert "0 patrons" in central(db_url, "load-reference", "--demo").stdout  # nothing changed the second time
    assert "nothing waits for review" in central(db_url, "reviews").stdout
    server = CentralServer(db_url, tmp_path / "server.log").start()
    try:
        kiosk = KioskClient(server.url, "corner-1", token)
        kiosk.push([kiosk.event(*checkin("NOT-LENT"))])
        delta = requests.get(f"{server.url}/v1/reference", headers=bearer(token), timeout=10).json()
        assert delta["has_reference"] and len(delta["patrons"]) > 100 and delta["policy"]["roles"]["student"]
    finally:
        server.stop()
    queue = json.loads(central(db_url, "reviews", "--json").stdout)
    assert [(r["kiosk_id"], r["seq"], r["reason"]) for r in queue] == [("corner-1", 1, "not_on_loan")]


def test_several_server_processes_share_the_port_and_stop_together(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    token = central(db_url, "add-kiosk", "corner-1").stdout.strip()
    server = CentralServer(db_url, tmp_path / "server.log", "--workers", "2").start()
    try:
        kiosk = KioskClient(server.url, "corner-1", token)
        for n in range(6):  # several connections: both processes take some
            answer = kiosk.push([kiosk.event(*checkin(f"I{n}"))])
            assert answer.status_code == 200 and answer.json()["applied_seq"] == n + 1
        children = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True)
        assert len(children.stdout.split()) == 2
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(15) == 0
        server.stop()


def test_a_database_that_cannot_be_opened_is_named(tmp_path):
    refused = central("postgresql://nobody@127.0.0.1:1/none", "kiosks")
    assert refused.returncode == 3 and "cannot" in refused.stderr and "127.0.0.1:1" in refused.stderr


def test_the_storm_limits_are_checked_before_the_server_starts(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    for wrong in (("--push-limit", "0"), ("--push-queue", "-1"), ("--push-wait", "-2"), ("--busy-retry-after", "0"),
                  ("--busy-retry-after", "5", "--busy-retry-after-max", "3")):
        done = central(db_url, "--port", "0", *wrong)
        assert done.returncode == 2, (wrong, done.stderr)
        assert "--push-limit and --busy-retry-after must be at least 1" in done.stderr
        assert not (tmp_path / "central.db").exists()  # refused before the database was opened
