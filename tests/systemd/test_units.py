"""The shipped systemd units: `systemd-analyze verify` accepts every one (rendered with
this test's own executables in place of the install prefix), and the settings the kiosk
depends on are there: Textual on the tty, restarts that match the exit statuses, the
sync daemon's watchdog, hardening, and command lines the real CLI accepts."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from bookcorner.cli import build_parser
from bookcorner.kiosk.crash import EXIT_CRASH, EXIT_RESTART
from bookcorner.ops.units import DEFAULT, FOOT_INI, SOURCE_DIR, UNITS, Layout, parse_unit, render, value, values
from bookcorner.sync.daemon import DaemonSettings

ANALYZE = shutil.which("systemd-analyze")


def unit(name: str) -> dict:
    return parse_unit((SOURCE_DIR / name).read_text(encoding="utf-8"))


def stub(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (scripts/test installs the "
                                            "`systemd` package when it runs as root)")
@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_accepts_the_unit(name, tmp_path):
    # verify insists that ExecStart's program exists: render the unit for a prefix of our own
    prefix = tmp_path / "opt" / "bookcorner"
    stub(prefix / "venv" / "bin" / "bookcorner")
    layout = Layout(prefix=str(prefix), cage=stub(tmp_path / "usr" / "bin" / "cage"))
    units = tmp_path / "units"
    units.mkdir()
    for other in UNITS:  # the units name each other (Conflicts=)
        (units / other).write_text(render((SOURCE_DIR / other).read_text(encoding="utf-8"), layout))
    done = subprocess.run([ANALYZE, "verify", "--man=no", str(units / name)], capture_output=True, text=True,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"}, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if name in line or "Unknown" in line or "Failed" in line]
    assert done.returncode == 0, done.stdout + done.stderr
    assert complaints == [], complaints


def test_render_swaps_the_install_paths_and_nothing_else():
    text = (SOURCE_DIR / "bookcorner-kiosk.service").read_text(encoding="utf-8")
    assert render(text) == text
    other = render(text, Layout(prefix="/srv/bc", data_dir="/data/bc", config_dir="/srv/etc"))
    assert "ExecStart=/srv/bc/venv/bin/bookcorner kiosk" in other
    assert "BOOKCORNER_CONFIG=/srv/etc/kiosk.toml" in other
    assert "ReadWritePaths=/data/bc" in other
    assert "/opt/bookcorner/venv" not in other and "/var/lib/bookcorner" not in other


@pytest.mark.parametrize("name", ["bookcorner-kiosk.service", "bookcorner-kiosk-wayland.service"])
def test_the_kiosk_owns_tty1_and_comes_back_after_a_crash(name):
    kiosk = unit(name)
    assert value(kiosk, "Service", "TTYPath") == "/dev/tty1"
    assert "getty@tty1.service" in values(kiosk, "Unit", "Conflicts")
    assert "getty@tty1.service" in values(kiosk, "Unit", "After")
    assert value(kiosk, "Service", "Restart") == "always"
    assert value(kiosk, "Unit", "StartLimitIntervalSec") == "0"  # never gives up
    # a crash (70) and a restart asked for (75) are both restarted; only the librarian's stop (0) is not
    prevented = values(kiosk, "Service", "RestartPreventExitStatus")
    assert str(EXIT_CRASH) not in prevented and str(EXIT_RESTART) not in prevented
    assert prevented == ["0"]
    assert "BOOKCORNER_CONFIG=/etc/bookcorner/kiosk.toml" in values(kiosk, "Service", "Environment")
    # the serial reader; never `input` (every keyboard): the udev rules give it the configured devices
    # and ALSA's sound card, for the spoken banners (the bare console has no login session to give it)
    assert values(kiosk, "Service", "SupplementaryGroups") == ["dialout", "audio"]


def test_textual_on_the_bare_console_has_the_tty_on_all_three_streams():
    kiosk = unit("bookcorner-kiosk.service")
    # Textual reads stdin and draws on stderr (PLATFORM.md): none of them may go to the journal
    for stream in ("StandardInput", "StandardOutput", "StandardError"):
        assert value(kiosk, "Service", stream) == "tty", stream
    assert value(kiosk, "Service", "ExecStart") == f"{DEFAULT.bookcorner} kiosk"
    assert "TERM=linux" in values(kiosk, "Service", "Environment")


def test_the_wayland_variant_runs_the_kiosk_in_foot_under_cage_with_a_cjk_font():
    kiosk = unit("bookcorner-kiosk-wayland.service")
    command = shlex.split(value(kiosk, "Service", "ExecStart"))
    assert command[0] == DEFAULT.cage
    foot = command.index("/usr/bin/foot")
    assert command[foot + 1] == "--config=/etc/bookcorner/foot.ini"
    assert command[foot + 2:] == [DEFAULT.bookcorner, "kiosk"]
    assert value(kiosk, "Service", "PAMName")  # cage needs a logind session on the seat
    assert "bookcorner-kiosk.service" in values(kiosk, "Unit", "Conflicts")
    assert "bookcorner-kiosk-wayland.service" in values(unit("bookcorner-kiosk.service"), "Unit", "Conflicts")
    font = (SOURCE_DIR / FOOT_INI).read_text(encoding="utf-8")
    assert "font=Noto Sans Mono CJK SC" in font


def test_the_console_kiosk_has_a_watchdog_its_screen_pings():
    """Found by the lab (issue 16): a frozen kiosk (SIGSTOP) stayed frozen. Its main process is the
    kiosk itself, which pings (NotifyAccess=main). Not under cage: there the main process is cage,
    and systemd would take only cage's pings (WATCHDOG_PID), so that unit has none."""
    kiosk = unit("bookcorner-kiosk.service")
    assert int(value(kiosk, "Service", "WatchdogSec")) >= 30  # a slow start-up is not a freeze
    assert value(kiosk, "Service", "NotifyAccess") == "main"
    assert value(kiosk, "Service", "Restart") == "always"
    assert value(unit("bookcorner-kiosk-wayland.service"), "Service", "WatchdogSec") is None


def test_the_sync_daemon_has_a_watchdog_and_does_not_depend_on_the_network():
    syncd = unit("bookcorner-syncd.service")
    assert value(syncd, "Service", "Type") == "notify"
    assert value(syncd, "Service", "NotifyAccess") == "main"
    assert value(syncd, "Service", "Restart") == "always"
    assert values(syncd, "Service", "RestartPreventExitStatus") == []
    watchdog_s = int(value(syncd, "Service", "WatchdogSec"))
    # pinged after every batch: a batch takes at most connect + read timeouts
    defaults = DaemonSettings("", Path("credential"))
    assert watchdog_s / 2 > defaults.connect_timeout_s + defaults.read_timeout_s
    after = values(syncd, "Unit", "After")
    assert "network-online.target" in after and "time-sync.target" in after
    assert values(syncd, "Unit", "Requires") == [] and values(syncd, "Unit", "Requisite") == []
    assert values(syncd, "Unit", "BindsTo") == []
    assert "time-sync.target" not in values(syncd, "Unit", "Wants")  # a passive target: only its providers pull it
    assert values(syncd, "Service", "SupplementaryGroups") == []  # no device, no group
    assert value(syncd, "Service", "PrivateDevices") == "yes"


@pytest.mark.parametrize("name", UNITS)
def test_every_unit_is_hardened(name):
    service = unit(name)
    assert value(service, "Service", "User") == "bookcorner"
    assert value(service, "Service", "ProtectSystem") == "strict"
    assert value(service, "Service", "PrivateTmp") == "yes"
    assert value(service, "Service", "NoNewPrivileges") == "yes"
    state = value(service, "Service", "StateDirectory")
    writable = values(service, "Service", "ReadWritePaths")
    assert writable[0] == f"/var/lib/{state}"
    # beyond the data, only the Wayland session's runtime directory (the compositor's socket)
    assert writable[1:] == (["-/run/user"] if name == "bookcorner-kiosk-wayland.service" else [])
    assert value(service, "Install", "WantedBy")


@pytest.mark.parametrize("name", UNITS)
def test_the_command_line_is_one_the_cli_accepts(name):
    command = shlex.split(value(unit(name), "Service", "ExecStart"))
    words = command[command.index(DEFAULT.bookcorner) + 1:]
    words = [word for word in words if not word.startswith("$")]  # the central server's settings file
    args = build_parser().parse_args(words)
    assert callable(args.handler)
