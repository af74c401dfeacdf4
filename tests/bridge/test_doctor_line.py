"""`bookcorner doctor` on the library computer (the central role) says how the replay bridge
does, read from the central database itself: off; on and sending; failing, with the library
system's reason and the loans waiting in the outbox since when. Run as a teacher runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from bookcorner.central import zone
from bookcorner.central.services import bridge
from tests.bridge.peer import Peer
from tests.bridge.test_bridge import outbox, turn_on

ROOT = Path(__file__).resolve().parents[2]


def doctor_bridge(tmp_path: Path, *words: str, language: str = "en") -> list[dict]:
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[kiosk]\nlanguage = "{language}"\ndata_dir = "{tmp_path / "data"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    done = subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(config), "doctor", "--json", "--user",
                           "root", *words], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    return [finding for finding in json.loads(done.stdout) if finding["check"] == "bridge"]


def test_no_central_role_no_bridge_line(tmp_path):
    if Path("/etc/systemd/system/bookcorner-central.service").exists():
        return  # this machine has the central role: its own database would be checked
    assert doctor_bridge(tmp_path) == []


def test_off_then_sending_then_failing_with_the_reason_and_the_backlog(school, other, tmp_path):
    url = school.store.url
    assert doctor_bridge(tmp_path, "--central-db", url) == [
        {"check": "bridge", "level": "ok", "message": "the bridge to the school's library system is off", "fix": ""}]

    peer = Peer(other(), "utf-8").start()
    port = peer.port
    try:
        turn_on(school.store, port)
        school.record(school.checkout("I1", "S1"), school.checkout("I3", "S10"))  # S10: unknown there, refused
        bridge.send_due(school.store)
    finally:
        peer.stop()
    [line] = doctor_bridge(tmp_path, "--central-db", url)
    assert line == {"check": "bridge", "level": "ok", "fix": "", "message": f"the bridge to the library system "
                    f"127.0.0.1:{port} works: 1 loan(s) sent, 0 waiting, 1 refused"}

    school.record(school.checkout("I2", "S2"), school.checkin("I1"))  # the library system is down now
    keeper = bridge.BridgeKeeper(school.store, first_wait=timedelta(seconds=1))
    keeper.once()
    oldest = min(r.created_at for r in outbox(school.store) if r.status == "waiting")
    since = oldest.astimezone(zone.school_zone(school.store)).strftime("%Y-%m-%d %H:%M")
    [line] = doctor_bridge(tmp_path, "--central-db", url)
    assert line["level"] == "problem"
    assert line["message"].startswith(f"the bridge cannot reach the library system 127.0.0.1:{port}: cannot connect to "
                                      f"127.0.0.1:{port}")
    assert line["message"].endswith(f". 2 loan(s) wait in the outbox, the oldest since {since}.")
    assert "Library system on the dashboard" in line["fix"]

    [chinese] = doctor_bridge(tmp_path, "--central-db", url, language="zh_CN")
    assert chinese["level"] == "problem" and "无法连接图书馆系统" in chinese["message"] and since in chinese["message"]


def test_a_database_that_is_not_there(tmp_path):
    [line] = doctor_bridge(tmp_path, "--central-db", str(tmp_path / "nowhere.db"))
    assert line["level"] == "problem" and "does not exist" in line["message"]
    assert not (tmp_path / "nowhere.db").exists()  # looking did not make one


def test_the_database_is_the_installed_central_servers(tmp_path):
    from bookcorner.ops.install import central_database

    assert central_database(tmp_path) is None  # no central unit: not the library computer
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "bookcorner-central.service").write_text((ROOT / "systemd/bookcorner-central.service").read_text())
    assert central_database(tmp_path) == str(tmp_path / "var/lib/bookcorner-central/central.db")
    (tmp_path / "etc/bookcorner").mkdir()
    (tmp_path / "etc/bookcorner/central.env").write_text('BOOKCORNER_CENTRAL_DB="postgresql://bookcorner@/school"\n')
    assert central_database(tmp_path) == "postgresql://bookcorner@/school"


def test_loans_waiting_long_without_an_error_mean_no_server_sends_them(school, other, tmp_path):
    from bookcorner.central import db
    from bookcorner.ops.doctor import Context, check_bridge

    peer = Peer(other(), "utf-8").start()
    peer.stop()  # set up, never reached: no keeper runs here, so no error is recorded either
    turn_on(school.store, peer.port)
    school.record(school.checkout("I4", "S4"))
    ctx = Context(data_dir=tmp_path, user="root", server_url="", devices=None, central_db=school.store.url)
    [soon] = check_bridge(ctx, now=db.now() + timedelta(minutes=1))
    assert soon.level == "ok" and soon.message.endswith("works: 0 loan(s) sent, 1 waiting, 0 refused")
    [late] = check_bridge(ctx, now=db.now() + timedelta(hours=2))
    assert late.level == "warn" and "has sent nothing for a while. 1 loan(s) wait in the outbox" in late.message
    assert "bookcorner-central.service" in late.fix
