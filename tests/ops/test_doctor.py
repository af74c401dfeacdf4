"""`bookcorner doctor` against broken set-ups, as a teacher runs it: a real kiosk data
directory, real device files and users, a really full filesystem, a closed port, a
damaged journal. Each must be named in plain words with the right fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bookcorner.journal.journal import list_segments
from tests.disk import use_up_space
from tests.sync.kiosk import TestKiosk

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def doctor(config: Path, *words: str, language: str | None = None) -> tuple[int, list[dict], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    if language:
        text = config.read_text().replace("[kiosk]\n", f'[kiosk]\nlanguage = "{language}"\n', 1)
        config.write_text(text)
    done = subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(config), "doctor", "--json", *words],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def by_check(findings: list[dict], check: str) -> list[dict]:
    return [finding for finding in findings if finding["check"] == check]


@pytest.fixture
def kiosk(tmp_path) -> TestKiosk:
    kiosk = TestKiosk(tmp_path / "data", "corner-1", f"http://127.0.0.1:{closed_port()}", "token")
    kiosk.record(kiosk.loans_and_returns(1, 5), chunk=1)
    return kiosk


@pytest.fixture
def listening():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def use_server(kiosk: TestKiosk, url: str) -> None:
    kiosk.config.write_text(kiosk.config.read_text().replace(kiosk.server_url, url))


def test_a_healthy_kiosk_with_events_waiting(kiosk, listening):
    use_server(kiosk, listening)
    code, findings, _ = doctor(kiosk.config, "--user", "root")
    assert code == 0, findings
    assert by_check(findings, "server")[0]["level"] == "ok"
    assert by_check(findings, "journal")[0] == {"check": "journal", "level": "ok", "fix": "",
                                               "message": "the journal is sound (10 event(s))"}
    waiting = by_check(findings, "pending")[0]
    assert waiting["level"] == "warn" and waiting["message"].startswith("10 event(s) wait")
    assert "export-batch" in waiting["fix"]
    assert by_check(findings, "disk")[0]["level"] == "ok"
    assert by_check(findings, "clock")[0]["level"] in ("ok", "warn")


def test_an_unreachable_server_is_named_with_the_fix(kiosk):
    code, findings, _ = doctor(kiosk.config, "--user", "root")
    assert code == 1
    [server] = by_check(findings, "server")
    assert server["level"] == "problem"
    assert kiosk.server_url in server["message"] and "cannot be reached" in server["message"]
    assert "Connection refused" in server["message"]
    assert "network" in server["fix"] and "server_url" in server["fix"]


def test_a_damaged_journal_says_stop_and_repair(kiosk, listening):
    use_server(kiosk, listening)
    segment = list_segments(kiosk.root / "journal")[-1][1]
    lines = segment.read_bytes().split(b"\n")
    lines[3] = lines[3][:30] + b"X" + lines[3][31:]
    segment.write_bytes(b"\n".join(lines))
    code, findings, _ = doctor(kiosk.config, "--user", "root")
    assert code == 1
    [journal] = by_check(findings, "journal")
    assert journal["level"] == "problem" and "damaged" in journal["message"] and segment.name in journal["message"]
    assert "bookcorner journal repair" in journal["fix"] and "systemctl stop" in journal["fix"]


def test_a_reader_the_kiosk_user_may_not_open_names_the_missing_group(kiosk, listening, tmp_path):
    use_server(kiosk, listening)
    port = tmp_path / "ttyUSB0"  # stands for the device node: same owner, group and mode checks
    port.write_bytes(b"")
    os.chown(port, 0, 20)  # root:dialout, as udev makes serial ports
    port.chmod(0o660)
    kiosk.config.write_text(kiosk.config.read_text() + f'\n[devices.reader]\nprotocol = "rdm6300"\nport = "{port}"\n')
    if os.getuid() != 0:
        pytest.skip("giving the file to the dialout group needs root")
    code, findings, _ = doctor(kiosk.config, "--user", "nobody")
    assert code == 1
    [permission] = by_check(findings, "permissions")
    assert "nobody" in permission["message"] and "dialout" in permission["message"]
    assert permission["fix"].startswith("sudo usermod -aG dialout nobody")
    # once the user is in the group, nothing is wrong with the reader
    code, findings, _ = doctor(kiosk.config, "--user", "root")
    assert by_check(findings, "permissions") == []
    assert by_check(findings, "devices")[0]["level"] == "ok"


def test_a_missing_scanner_and_a_scanner_only_udev_could_open(kiosk, listening, tmp_path):
    use_server(kiosk, listening)
    scanner = tmp_path / "event7"
    kiosk.config.write_text(kiosk.config.read_text() + f'\n[devices.scanner]\npath = "{scanner}"\n')
    code, findings, _ = doctor(kiosk.config, "--user", "root")
    [device] = by_check(findings, "devices")
    assert device["level"] == "problem" and "not there" in device["message"]
    scanner.write_bytes(b"")
    os.chown(scanner, 0, 111 if os.getuid() == 0 else os.getgid())
    scanner.chmod(0o660)
    code, findings, _ = doctor(kiosk.config, "--user", "nobody")
    [permission] = by_check(findings, "permissions")
    assert "udev-rules" in permission["fix"]  # not "join input": that would open every keyboard


@pytest.fixture
def small_tmpfs(tmp_path):
    target = tmp_path / "small"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(target)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()}): the free-space check "
                    "reads the filesystem's real numbers, which a file-size limit cannot fake")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_a_full_data_partition(small_tmpfs, listening):
    kiosk = TestKiosk(small_tmpfs / "data", "corner-1", listening, "token")
    kiosk.record(kiosk.loans_and_returns(1, 2))
    filler = use_up_space(small_tmpfs)
    code, findings, _ = doctor(kiosk.config, "--user", "root")
    assert code == 1
    [disk] = by_check(findings, "disk")
    assert disk["level"] == "problem"
    assert "No space left on device" in disk["message"]
    assert "free some space" in disk["fix"]
    filler.unlink()
    # room again, but less than asked for: still said
    code, findings, _ = doctor(kiosk.config, "--user", "root", "--min-free-mb", "1")
    [disk] = by_check(findings, "disk")
    assert disk["level"] == "problem" and "almost full" in disk["message"]


def test_the_advice_is_given_in_chinese_too(kiosk):
    code, findings, _ = doctor(kiosk.config, "--user", "root", language="zh_CN")
    [server] = by_check(findings, "server")
    assert "无法连接" in server["message"]


def test_the_text_report_ends_with_the_count(kiosk):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    done = subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(kiosk.config), "doctor", "--user",
                           "root"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "[PROBLEM] the central server" in done.stdout
    assert "    fix: check the network" in done.stdout
    assert done.stdout.rstrip().endswith("1 problem(s) found")


# -- the services, as systemd reports them --------------------------------------------------------

FAKE_SYSTEMCTL = """#!/bin/sh
# answers `systemctl show --property=... UNIT` as systemctl does, from {states}/UNIT
[ "$1" = show ] || exit 1
for unit; do :; done
if [ -f "{states}/$unit" ]; then cat "{states}/$unit"
else printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\nUnitFileState=\\nResult=success\\nNRestarts=0\\n'
fi
"""


@pytest.fixture
def systemd(tmp_path, monkeypatch):
    """A `systemctl` on PATH reporting the states written with the returned function."""
    states, tools = tmp_path / "states", tmp_path / "bin"
    states.mkdir()
    tools.mkdir()
    (tools / "systemctl").write_text(FAKE_SYSTEMCTL.format(states=states))
    os.chmod(tools / "systemctl", 0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")

    def unit(name: str, active: str, sub: str, enabled: str = "enabled", restarts: int = 0,
             result: str = "success") -> None:
        (states / name).write_text(f"LoadState=loaded\nActiveState={active}\nSubState={sub}\n"
                                   f"UnitFileState={enabled}\nResult={result}\nNRestarts={restarts}\n")
    return unit


def services(tmp_path: Path) -> list[dict]:
    from bookcorner.ops.doctor import Context, check_services

    ctx = Context(data_dir=tmp_path, user="root", server_url="", devices=None, systemd=True)
    return [finding.as_dict() for finding in check_services(ctx)]


def test_a_failed_service_names_its_log_and_a_running_one_is_fine(systemd, tmp_path):
    systemd("bookcorner-kiosk.service", "active", "running")
    systemd("bookcorner-syncd.service", "failed", "failed", restarts=5, result="watchdog")
    systemd("bookcorner-central.service", "inactive", "dead", enabled="disabled")  # installed, not used here
    kiosk, syncd = services(tmp_path)
    assert kiosk == {"check": "services", "level": "ok", "message": "bookcorner-kiosk.service runs", "fix": ""}
    assert syncd["level"] == "problem"
    assert syncd["message"] == ("bookcorner-syncd.service has stopped after an error (watchdog; restarted 5 time(s) "
                                "before)")
    assert syncd["fix"] == ("see why: sudo journalctl -b -u bookcorner-syncd.service -n 50; then: sudo systemctl "
                            "restart bookcorner-syncd.service")


def test_restarts_and_a_service_that_does_not_run(systemd, tmp_path):
    systemd("bookcorner-kiosk-wayland.service", "activating", "auto-restart", restarts=3)
    systemd("bookcorner-syncd.service", "inactive", "dead")
    systemd("bookcorner-central.service", "active", "running", restarts=2)
    wayland, syncd, central = services(tmp_path)
    assert wayland["level"] == "warn" and "starting again (3 restart(s) so far)" in wayland["message"]
    assert "journalctl -b -u bookcorner-kiosk-wayland.service" in wayland["fix"]
    assert syncd["level"] == "problem" and syncd["message"].endswith("set to start at boot but is not running")
    assert syncd["fix"].startswith("sudo systemctl start bookcorner-syncd.service; if it stops again, see why")
    assert central["level"] == "warn" and "restart it 2 time(s)" in central["message"]


def test_no_service_set_up(systemd, tmp_path):
    [finding] = services(tmp_path)
    assert finding["level"] == "warn" and "scripts/install" in finding["fix"]


def test_without_systemd_the_services_are_not_checked(kiosk):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs this machine: its real services would be checked")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    done = subprocess.run([sys.executable, "-m", "bookcorner", "--config", str(kiosk.config), "doctor", "--user",
                           "root"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "[not checked] the services were not checked: systemd does not run this system\n" in done.stdout
    assert done.stdout.rstrip().endswith("1 problem(s) found")  # the unreachable server alone
