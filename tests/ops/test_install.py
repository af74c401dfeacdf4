"""`bookcorner install` in a throwaway root directory made here (real useradd --root,
systemctl --root, a real venv with the pinned dependencies from a wheelhouse): the
second run reports no change, the installed program runs, and uninstall keeps the data."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from bookcorner.ops.install import LOCK_FILE
from bookcorner.ops.units import KIOSK_UNITS, ROLES, UNITS
from tests.ops.conftest import bookcorner as run_release
from tests.ops.conftest import ROOT, release

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("systemctl"),
                                reason="installing needs root, useradd and systemctl")


@pytest.fixture
def checkout(tmp_path) -> Path:
    return release(tmp_path / "release")


def test_install_twice_then_uninstall_keeps_the_data(system, wheelhouse, checkout):
    def bookcorner(*words: str) -> subprocess.CompletedProcess:
        return run_release(checkout, *words)

    first = bookcorner("install", "--root", str(system), "--wheelhouse", str(wheelhouse), "--reader-usb", "10c4:ea60")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed: the user bookcorner" in first.stdout
    second = bookcorner("install", "--root", str(system), "--wheelhouse", str(wheelhouse), "--reader-usb",
                        "10c4:ea60")
    assert second.returncode == 0, second.stderr
    assert "changed:" not in second.stdout
    assert second.stdout.rstrip().endswith("nothing to change")

    # the user, in dialout and not in input
    passwd = {line.split(":")[0]: line.split(":") for line in (system / "etc/passwd").read_text().splitlines()}
    assert passwd["bookcorner"][5] == "/var/lib/bookcorner" and passwd["bookcorner"][6] == "/usr/sbin/nologin"
    groups = {line.split(":")[0]: line.split(":")[3].split(",") for line in (system / "etc/group").read_text().splitlines()}
    assert "bookcorner" in groups["dialout"] and "bookcorner" not in groups.get("input", [])
    uid, gid = int(passwd["bookcorner"][2]), int(passwd["bookcorner"][3])
    data = system / "var/lib/bookcorner"
    assert (data.stat().st_uid, data.stat().st_gid, data.stat().st_mode & 0o777) == (uid, gid, 0o750)
    config = (system / "etc/bookcorner/kiosk.toml").read_text()
    assert 'data_dir = "/var/lib/bookcorner"' in config
    assert "Noto Sans Mono CJK" in (system / "etc/bookcorner/foot.ini").read_text()
    kiosk_units, _boot = ROLES["kiosk"]
    for unit in UNITS:  # a kiosk: no central server
        assert (system / "etc/systemd/system" / unit).is_file() == (unit in kiosk_units)
    for unit in KIOSK_UNITS:
        assert (system / "etc/systemd/system/multi-user.target.wants" / unit).is_symlink()
    assert 'ATTRS{idVendor}=="10c4"' in (system / "etc/udev/rules.d/70-bookcorner.rules").read_text()
    polkit = (system / "etc/polkit-1/rules.d/50-bookcorner.rules").read_text()
    assert 'subject.user == "bookcorner"' in polkit and "org.freedesktop.login1.power-off" in polkit

    # the units as installed, against the installed program (ExecStart must exist for verify)
    analyze = shutil.which("systemd-analyze")
    if analyze:
        for unit in KIOSK_UNITS:
            verified = subprocess.run([analyze, "verify", "--man=no", f"--root={system}",
                                       f"/etc/systemd/system/{unit}"], capture_output=True, text=True, timeout=60)
            assert verified.returncode == 0, verified.stderr

    # the venv: exactly the pinned versions, bytecode already there, and the program runs
    venv = system / "opt/bookcorner/venv"
    frozen = subprocess.run([str(venv / "bin/python"), "-m", "pip", "freeze", "--exclude", "bookcorner"],
                            capture_output=True, text=True).stdout
    pinned = {line.lower() for line in LOCK_FILE.read_text().splitlines() if line and not line.startswith("#")}
    assert {line.lower().replace("_", "-") for line in frozen.splitlines()} == pinned
    assert list((venv / "lib").glob("python3*/site-packages/bookcorner/ops/__pycache__/doctor.*.pyc"))
    assert list((venv / "lib").glob("python3*/site-packages/textual/__pycache__/app.*.pyc"))
    ran = subprocess.run([str(venv / "bin/bookcorner"), "--config", str(system / "etc/bookcorner/kiosk.toml"),
                          "doctor", "--data-dir", str(data), "--user", "root", "--json"], capture_output=True,
                         text=True, timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": str(data)})
    assert ran.returncode == 0, ran.stderr

    # a teacher's settings survive a re-install; the kiosk's data survives an uninstall
    (system / "etc/bookcorner/kiosk.toml").write_text(config.replace('id = "demo-corner"', 'id = "room-3"'))
    (data / "journal").mkdir()
    (data / "journal" / "seg-000000000001.log").write_text("events\n")
    again = bookcorner("install", "--root", str(system), "--wheelhouse", str(wheelhouse), "--reader-usb", "10c4:ea60")
    assert again.returncode == 0 and 'id = "room-3"' in (system / "etc/bookcorner/kiosk.toml").read_text()
    gone = bookcorner("uninstall", "--root", str(system))
    assert gone.returncode == 0, gone.stderr
    assert not venv.exists()
    assert not any((system / "etc/systemd/system" / unit).exists() for unit in UNITS)
    assert not (system / "etc/systemd/system/multi-user.target.wants" / KIOSK_UNITS[0]).exists()
    assert not (system / "etc/udev/rules.d/70-bookcorner.rules").exists()
    assert not (system / "etc/polkit-1/rules.d/50-bookcorner.rules").exists()
    assert (data / "journal" / "seg-000000000001.log").read_text() == "events\n"
    assert 'id = "room-3"' in (system / "etc/bookcorner/kiosk.toml").read_text()
    assert "bookcorner:" in (system / "etc/passwd").read_text()
    assert bookcorner("uninstall", "--root", str(system)).stdout.count("nothing to change") == 1


def test_install_needs_a_system_root(tmp_path):
    done = run_release(ROOT, "install", "--root", str(tmp_path))
    assert done.returncode == 2 and "etc/passwd" in done.stderr


def test_the_library_computer_gets_the_central_unit_alone(system):
    from bookcorner.ops.install import Installer

    installer = Installer(system, role="central")
    steps = [installer.user(), *installer.units(), installer.enable()]
    assert all(step.changed for step in steps), steps
    installed = {path.name for path in (system / "etc/systemd/system").iterdir() if path.is_file()}
    assert installed == {"bookcorner-central.service"}
    assert (system / "etc/systemd/system/multi-user.target.wants/bookcorner-central.service").is_symlink()
    assert not (system / "etc/polkit-1").exists() and not (system / "var/lib/bookcorner").exists()
    groups = {line.split(":")[0]: line.split(":")[3].split(",") for line in (system / "etc/group").read_text().splitlines()}
    assert "bookcorner" not in groups.get("dialout", [])  # the server opens no device
    again = Installer(system, role="central")
    assert not any(step.changed for step in [again.user(), *again.units(), again.enable()])


def test_an_upgrade_keeps_every_school_of_a_sqlite_district_and_puts_them_all_back(system):
    """A SQLite district is ``central.db`` (the first school) and ``schools/<slug>.db`` (each
    other school): the copy taken before an upgrade holds them all, and a failed migration
    puts them all back as they were."""
    from sqlalchemy import func, select

    from bookcorner.central import db
    from bookcorner.central.reference import load_document
    from bookcorner.central.schools import Schools
    from bookcorner.ops.install import Installer
    from bookcorner.protocol.messages import PatronRecord, ReferenceDocument

    installer = Installer(system, role="central")
    installer.user()
    installer.units()
    central = system / "var/lib/bookcorner-central"
    central.mkdir(parents=True)

    def pupils(slug: str) -> int:
        root = db.Store(f"sqlite:///{central / 'central.db'}")
        schools = Schools(root)
        try:
            with schools.store(slug).reading() as conn:
                return conn.execute(select(func.count()).select_from(db.patrons)).scalar_one()
        finally:
            schools.dispose()
            root.dispose()

    root = db.Store(f"sqlite:///{central / 'central.db'}")
    schools = Schools(root)
    try:
        root.migrate()
        for slug, count in (("", 1), ("east-lake", 2), ("west-hill", 3)):
            if slug:
                schools.add(slug, slug.title())
            load_document(schools.store(slug), ReferenceDocument(patrons=[
                PatronRecord(patron_id=f"P{n}", name=f"Pupil {n}", role="student", class_name="3.1")
                for n in range(count)]))
    finally:
        schools.dispose()
        root.dispose()

    steps = installer.backup()
    said = [step.what for step in steps]
    assert any(what.startswith("a copy of the central database: /var/backups/bookcorner/central-") for what in said)
    [other] = [what for what in said if what.startswith("a copy of the district's other schools (2): ")]
    kept = system / other.rpartition(": ")[2].lstrip("/")
    assert sorted(path.name for path in kept.iterdir()) == ["east-lake.db", "west-hill.db"]

    # a migration that went wrong half-way: the schools' files as it left them
    for name in ("central.db", "schools/east-lake.db", "schools/west-hill.db"):
        with sqlite3.connect(central / name) as conn:
            conn.execute("DELETE FROM patrons")
    assert [pupils(slug) for slug in ("", "east-lake", "west-hill")] == [0, 0, 0]
    done = installer.restore_data()
    assert any(line.startswith("the district's other schools were restored from /var/backups/bookcorner/central-")
               for line in done), done
    assert [pupils(slug) for slug in ("", "east-lake", "west-hill")] == [1, 2, 3]
    owner = installer._ids()
    assert {(path.stat().st_uid, path.stat().st_gid) for path in (central / "schools").glob("*.db")} == {owner}


def test_a_new_role_retires_what_the_old_one_installed(system):
    """A corner's computer made the library's server: the kiosk's units (stopped and disabled
    first), udev and polkit rules go; its data, settings and user stay; a second run has
    nothing left to retire."""
    from bookcorner.ops.install import Installer

    kiosk = Installer(system, role="kiosk", reader_usb="10c4:ea60")
    for step in [kiosk.user(), kiosk.data_dir(), *kiosk.config(), *kiosk.units(), kiosk.udev(), kiosk.enable()]:
        assert step.changed, step
    (system / "var/lib/bookcorner/journal").mkdir()
    (system / "var/lib/bookcorner/journal/seg-000000000001.log").write_text("events\n")
    settings = (system / "etc/bookcorner/kiosk.toml").read_text()

    central = Installer(system, role="central")
    steps = [*central.retire(), *central.units(), central.enable()]
    assert [(step.what, step.changed) for step in steps] == [
        ("not started at boot any more: bookcorner-kiosk.service, bookcorner-syncd.service", True),
        *((f"removed /etc/systemd/system/{unit} (the role central does not use it)", True)
          for unit in ROLES["kiosk"][0]),
        ("removed /etc/udev/rules.d/70-bookcorner.rules (the role central does not use it)", True),
        ("removed /etc/polkit-1/rules.d/50-bookcorner.rules (the role central does not use it)", True),
        ("the unit bookcorner-central.service", True),
        ("started at boot: bookcorner-central.service", True)]
    assert {path.name for path in (system / "etc/systemd/system").iterdir() if path.is_file()} == {
        "bookcorner-central.service"}
    assert {path.name for path in (system / "etc/systemd/system/multi-user.target.wants").iterdir()} == {
        "bookcorner-central.service"}
    assert not (system / "etc/udev/rules.d/70-bookcorner.rules").exists()
    assert not (system / "etc/polkit-1/rules.d/50-bookcorner.rules").exists()
    assert (system / "var/lib/bookcorner/journal/seg-000000000001.log").read_text() == "events\n"
    assert (system / "etc/bookcorner/kiosk.toml").read_text() == settings
    assert (system / "etc/bookcorner/foot.ini").is_file() and "bookcorner:" in (system / "etc/passwd").read_text()

    again = Installer(system, role="central")
    assert again.retire() == []
    assert not any(step.changed for step in [*again.units(), again.enable()])


# records each call, then answers is-active/is-enabled from {states}/UNIT.active|.enabled
FAKE_SYSTEMCTL = """#!/bin/sh
[ "${{1#--root=}}" = "$1" ] || shift
echo "$*" >> "{log}"
verb=$1; shift
[ "$1" = --quiet ] && shift
case $verb in
  is-active) [ -f "{states}/$1.active" ] ;;
  is-enabled) [ -f "{states}/$1.enabled" ] ;;
  stop) for unit; do rm -f "{states}/$unit.active"; done ;;
  disable) for unit; do rm -f "{states}/$unit.enabled"; done ;;
esac
"""


@pytest.fixture
def systemd(tmp_path, monkeypatch):
    """A `systemctl` (and `udevadm`) on PATH standing for a running systemd: the units
    named to the returned function run and start at boot; it returns the calls since
    it was last called, in order."""
    states, tools, log = tmp_path / "states", tmp_path / "bin", tmp_path / "calls"
    states.mkdir()
    tools.mkdir()
    log.touch()
    (tools / "systemctl").write_text(FAKE_SYSTEMCTL.format(states=states, log=log))
    (tools / "udevadm").write_text(f'#!/bin/sh\necho "udevadm $*" >> "{log}"\n')
    for tool in tools.iterdir():
        os.chmod(tool, 0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")

    def running(*units: str) -> list[str]:
        for unit in units:
            (states / f"{unit}.active").touch()
            (states / f"{unit}.enabled").touch()
        calls = log.read_text().splitlines()
        log.write_text("")
        return calls
    return running


def test_where_systemd_runs_services_are_stopped_before_they_are_disabled(system, systemd):
    from bookcorner.ops.install import Installer

    Installer(system, role="both", systemd=True).units()
    systemd(*ROLES["both"][1])
    kiosk = Installer(system, role="kiosk", systemd=True)
    assert [(step.what, step.changed) for step in kiosk.retire()] == [
        ("stopped: bookcorner-central.service", True),
        ("not started at boot any more: bookcorner-central.service", True),
        ("removed /etc/systemd/system/bookcorner-central.service (the role kiosk does not use it)", True)]
    calls = systemd()
    assert calls.index("stop bookcorner-central.service") < calls.index("disable bookcorner-central.service")
    assert not any("kiosk" in call or "syncd" in call for call in calls if not call.startswith("is-"))

    steps = kiosk.uninstall()
    assert [(step.what, step.changed) for step in steps[:2]] == [
        ("stopped: bookcorner-kiosk.service, bookcorner-syncd.service", True),
        ("not started at boot any more: bookcorner-kiosk.service, bookcorner-syncd.service", True)]
    calls = systemd()
    stop = calls.index("stop bookcorner-kiosk.service bookcorner-syncd.service")
    assert stop < calls.index("disable bookcorner-kiosk.service bookcorner-syncd.service")
    assert calls[-2:] == ["daemon-reload", "udevadm control --reload"]
    assert not any((system / "etc/systemd/system" / unit).exists() for unit in UNITS)

    # a root systemd does not run (an SD card's, this test's): nothing to stop, and it says so
    quiet = Installer(system, systemd=False).uninstall()
    assert quiet[0].what == "no service to stop: systemd does not run this system" and not quiet[0].changed
    assert not any(call.startswith("stop") for call in systemd())


def test_a_kiosk_starting_on_the_console_gets_settings_the_console_can_draw(system):
    """Found by the lab (issue 16): a fresh install started the kiosk on tty1 with the example's
    settings, and the bare console drew every Chinese line as a row of squares."""
    from bookcorner.config import parse
    from bookcorner.ops.install import Installer

    for role in ("kiosk", "both"):
        installer = Installer(system, role=role)
        installer.user()
        settings = system / "etc/bookcorner/kiosk.toml"
        settings.unlink(missing_ok=True)
        installer.config()
        config = parse(settings.read_text(), str(settings))
        assert (config.screen.bilingual, config.screen.theme, config.kiosk.language) == (False, "ansi-dark", "en")
        assert str(config.kiosk.data_dir) == "/var/lib/bookcorner"


def test_the_settings_a_school_wrote_are_never_changed(system):
    from bookcorner.ops.install import Installer

    installer = Installer(system, role="kiosk")
    installer.user()
    settings = system / "etc/bookcorner/kiosk.toml"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('[screen]\nbilingual = true\ntheme = "textual-dark"\n')
    installer.config()
    assert settings.read_text() == '[screen]\nbilingual = true\ntheme = "textual-dark"\n'


def _accepted(database: Path, token: str) -> str | None:
    """The kiosk the central server takes ``token`` for (its own lookup: the hash, not revoked)."""
    import sqlite3

    from bookcorner.protocol.credentials import token_hash

    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT kiosk_id FROM credentials WHERE token_hash = ? AND revoked_at IS NULL",
                                 (token_hash(token),)).fetchone()
    return row[0] if row else None


def test_one_machine_pairs_its_kiosk_with_its_own_central_server(system, wheelhouse, checkout):
    """Found by the lab (issue 16): with --role both the kiosk had no server address and no
    credential, and said "sync problem" on its first morning."""
    import tomllib

    python = Path("/usr/bin/python3")  # the program runs as the kiosk's user: a Python it may run
    if not python.exists():
        pytest.skip("no /usr/bin/python3 to make the program's venv with")

    def install(*more: str) -> subprocess.CompletedProcess:
        done = run_release(checkout, "install", "--root", str(system), "--wheelhouse", str(wheelhouse), "--role",
                           "both", "--python", str(python), *more)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    first = install()
    assert "* changed: the kiosk's server: http://127.0.0.1:8443, the central server on this machine" in first.stdout
    assert ("* changed: the kiosk demo-corner's credential from the central server on this machine, in "
            "/var/lib/bookcorner/sync/credential") in first.stdout
    settings = system / "etc/bookcorner/kiosk.toml"
    assert tomllib.loads(settings.read_text())["sync"]["server_url"] == "http://127.0.0.1:8443"
    passwd = {line.split(":")[0]: line.split(":") for line in (system / "etc/passwd").read_text().splitlines()}
    owner = (int(passwd["bookcorner"][2]), int(passwd["bookcorner"][3]))
    credential = system / "var/lib/bookcorner/sync/credential"
    for path, mode in ((credential, 0o600), (credential.parent, 0o700)):
        info = path.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (*owner, mode), path
    database = system / "var/lib/bookcorner-central/central.db"
    assert database.stat().st_uid == owner[0]
    token = credential.read_text().strip()
    assert _accepted(database, token) == "demo-corner"

    # again: nothing changes, the same credential
    second = install()
    assert "changed:" not in second.stdout, second.stdout
    assert credential.read_text().strip() == token

    # the credential lost (a restored card): a new one, the old one revoked on the server
    credential.unlink()
    third = install()
    renewed = credential.read_text().strip()
    assert "* changed: the kiosk demo-corner's credential" in third.stdout
    assert renewed != token and _accepted(database, renewed) == "demo-corner" and _accepted(database, token) is None

    # a school that points the kiosk at another server keeps it
    settings.write_text(settings.read_text().replace('server_url = "http://127.0.0.1:8443"',
                                                     'server_url = "https://library.school.lan:8443"'))
    fourth = install()
    assert ("already so: the kiosk syncs with https://library.school.lan:8443, as its settings say (the central "
            "server on this machine is http://127.0.0.1:8443)") in fourth.stdout
    assert "changed:" not in fourth.stdout and credential.read_text().strip() == renewed

    # a district on this machine: the technician pairs the kiosk with its own school, east-lake
    settings.write_text(settings.read_text().replace('server_url = "https://library.school.lan:8443"',
                                                     'server_url = "http://127.0.0.1:8443"'))
    program = system / "opt/bookcorner/venv/bin/bookcorner"
    added = subprocess.run([str(program), "central", "add-school", "east-lake", "--name", "东湖小学", "--db",
                            str(database)], capture_output=True, text=True, user=owner[0], group=owner[1], cwd="/")
    assert added.returncode == 0, added.stderr
    fifth = install("--school", "east-lake")
    assert ("* changed: the kiosk demo-corner's credential for the school east-lake from the central server on this "
            "machine, in /var/lib/bookcorner/sync/credential") in fifth.stdout, fifth.stdout
    east = credential.read_text().strip()
    assert east.startswith("east-lake.") and _accepted(database.parent / "schools/east-lake.db", east) == "demo-corner"
    # and a later run (an upgrade) keeps the school its credential names
    sixth = install()
    assert "changed:" not in sixth.stdout and credential.read_text().strip() == east
    assert ("already so: the kiosk demo-corner's credential for the school east-lake in "
            "/var/lib/bookcorner/sync/credential") in sixth.stdout


def _display_and_packages(system: Path, display: bool, packages: tuple[str, ...]) -> None:
    """The machine as ``install`` looks at it: a DRM device, and dpkg's list of installed packages."""
    shutil.rmtree(system / "dev", ignore_errors=True)
    if display:
        (system / "dev/dri").mkdir(parents=True)
        (system / "dev/dri/card0").touch()
    status = system / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("".join(f"Package: {name}\nStatus: install ok installed\nVersion: 1\n\n" for name in packages)
                      + "Package: sl\nStatus: deinstall ok config-files\n")


def _screen_steps(system: Path, **options) -> tuple[list, str]:
    from bookcorner.ops.install import Installer

    installer = Installer(system, role="kiosk", **options)
    steps = [installer.user(), installer.screen(), installer.data_dir(), *installer.config(), *installer.units(),
             installer.enable()]
    return steps, (system / "etc/bookcorner/kiosk.toml").read_text()


def test_a_kiosk_with_a_display_and_cage_gets_the_chinese_screen_and_keeps_it(system):
    """cage + foot (which draws Chinese) is the default wherever it can run; the console is the
    fallback, each said with how to switch; a later run keeps the screen installed."""
    from bookcorner.config import parse
    from bookcorner.ops.screen import PACKAGES

    wants = system / "etc/systemd/system"
    _display_and_packages(system, True, PACKAGES)
    steps, settings = _screen_steps(system)
    assert steps[1].what == ("the kiosk's screen: cage + foot, which shows Chinese (bookcorner-kiosk-wayland.service); "
                             "the bare console instead: run the installer again with --screen console")
    assert steps[1].changed
    assert (wants / "graphical.target.wants/bookcorner-kiosk-wayland.service").is_symlink()
    assert not (wants / "multi-user.target.wants/bookcorner-kiosk.service").exists()
    assert (wants / "multi-user.target.wants/bookcorner-syncd.service").is_symlink()
    config = parse(settings, "kiosk.toml")
    assert (config.screen.bilingual, config.screen.theme) == (True, "textual-dark")  # the example's, Chinese beside

    _display_and_packages(system, False, ())  # the display gone: what is installed stays, nothing changes
    again, _settings = _screen_steps(system)
    assert "cage + foot" in again[1].what and not any(step.changed for step in again)

    # switched by hand: the console on, cage + foot off (never both on tty1), and it says how back
    console, _settings = _screen_steps(system, screen="console")
    assert console[1].changed and console[1].what.startswith("the kiosk's screen: the bare console, English alone "
                                                             "(bookcorner-kiosk.service); for Chinese: sudo apt-get "
                                                             "install cage foot fonts-noto-cjk libpam-systemd")
    assert (wants / "multi-user.target.wants/bookcorner-kiosk.service").is_symlink()
    assert not (wants / "graphical.target.wants/bookcorner-kiosk-wayland.service").exists()


def test_switching_the_screen_switches_its_languages_and_theme(system):
    """Found by the lab (issue 16, scenario 5): a kiosk installed on the console and switched to
    cage + foot (``--screen wayland``, as the installer tells a school that wants Chinese) kept the
    console's settings, English alone in 16 colours: the Chinese screen showed no Chinese answers.
    A switch now brings the two settings the screen decides along; a line changed by hand stays."""
    from bookcorner.config import parse
    from bookcorner.ops.screen import PACKAGES

    _display_and_packages(system, True, PACKAGES)
    steps, settings = _screen_steps(system, screen="console")
    assert steps[1].what == ("the kiosk's screen: the bare console, English alone (bookcorner-kiosk.service); for "
                             "Chinese (cage + foot are installed): run the installer again with --screen wayland")
    assert (parse(settings, "kiosk.toml").screen.bilingual, parse(settings, "kiosk.toml").screen.theme) == (
        False, "ansi-dark")

    steps, settings = _screen_steps(system, screen="wayland")
    assert steps[3].changed and steps[3].what == ("the settings /etc/bookcorner/kiosk.toml: Chinese and English, and "
                                                  "the full-colour theme, for cage + foot")
    config = parse(settings, "kiosk.toml")
    assert (config.screen.bilingual, config.screen.theme) == (True, "textual-dark")

    again, _settings = _screen_steps(system)  # the same screen kept: the settings stay as they are
    assert not again[3].changed and again[3].what == "the settings /etc/bookcorner/kiosk.toml"

    steps, settings = _screen_steps(system, screen="console")
    assert steps[3].changed and "English alone and the 16-colour theme, for the bare console" in steps[3].what
    config = parse(settings, "kiosk.toml")
    assert (config.screen.bilingual, config.screen.theme) == (False, "ansi-dark")

    # the school chose its own theme on the console: switching back leaves it, and its mode and owner
    path = system / "etc/bookcorner/kiosk.toml"
    mode = path.stat().st_mode & 0o777
    path.write_text(settings.replace('\ntheme = "ansi-dark"\n', '\ntheme = "textual-light"\n', 1))
    steps, settings = _screen_steps(system, screen="wayland")
    config = parse(settings, "kiosk.toml")
    assert (config.screen.bilingual, config.screen.theme) == (True, "textual-light")
    assert path.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize(("display", "packages", "why"), [
    (False, ("cage", "foot", "fonts-noto-cjk", "libpam-systemd"), "no display cage can drive here (no /dev/dri/card*)"),
    (True, ("cage",), "foot, fonts-noto-cjk, libpam-systemd not installed in "),
    (False, ("cage", "foot"), "no display cage can drive here (no /dev/dri/card*)"),
])
def test_without_a_display_or_the_packages_the_kiosk_gets_the_console_and_says_why(system, display, packages, why):
    from bookcorner.config import parse
    from bookcorner.ops.screen import PACKAGES

    _display_and_packages(system, display, packages)
    steps, settings = _screen_steps(system)
    assert steps[1].what.startswith(f"the kiosk's screen: the bare console, English alone (bookcorner-kiosk.service): "
                                    f"{why}"), steps[1].what
    assert steps[1].what.endswith("run the installer again with --screen wayland")
    # only what is missing is named to apt-get (found by the lab: a machine with them all was told to)
    missing = [name for name in PACKAGES if name not in packages]
    assert ("; for Chinese: sudo apt-get install " + " ".join(missing) + ", then" if missing else
            "; for Chinese (cage + foot are installed): run") in steps[1].what
    assert (system / "etc/systemd/system/multi-user.target.wants/bookcorner-kiosk.service").is_symlink()
    assert not (system / "etc/systemd/system/graphical.target.wants/bookcorner-kiosk-wayland.service").exists()
    config = parse(settings, "kiosk.toml")
    assert (config.screen.bilingual, config.screen.theme) == (False, "ansi-dark")


def test_the_chinese_screen_asked_for_without_its_packages_is_refused_in_words(system):
    from bookcorner.ops.install import InstallError, Installer

    _display_and_packages(system, True, ("cage", "foot"))
    installer = Installer(system, role="kiosk", screen="wayland")
    installer.user()
    with pytest.raises(InstallError, match=r"--screen wayland needs fonts-noto-cjk libpam-systemd \(not installed\): "
                                           r"install them \(sudo apt-get install fonts-noto-cjk libpam-systemd\)"):
        installer.screen()
    with pytest.raises(ValueError, match="the screen is console, wayland or auto"):
        Installer(system, screen="vga")


def test_one_machine_counts_days_in_one_zone(system):
    """Found by the lab (issue 16): with --role both the central server counted days in the
    machine's zone (Etc/UTC) and the kiosk in the example's Asia/Shanghai; every sync warned."""
    from bookcorner.config import parse
    from bookcorner.ops.install import Installer

    (system / "etc/timezone").write_text("Europe/London\n")
    for role, zone in (("both", "Europe/London"), ("kiosk", "Asia/Shanghai")):
        installer = Installer(system, role=role)
        installer.user()
        settings = system / "etc/bookcorner/kiosk.toml"
        settings.unlink(missing_ok=True)
        installer.config()
        assert parse(settings.read_text(), str(settings)).kiosk.timezone == zone, role


def test_a_kiosk_without_a_synthesiser_says_how_to_have_the_spoken_banners(system):
    """Speech is the corner's choice ([screen] speech): a kiosk whose system has no eSpeak NG
    installs all the same, and the installer says what to install for it."""
    from bookcorner.ops.install import Installer

    _display_and_packages(system, False, ("alsa-utils",))
    installer = Installer(system, role="kiosk")
    installer.user()
    installer.data_dir()
    step = installer.speech()
    assert step.what.startswith("the spoken banners: not made, espeak-ng missing (not installed); "
                                "to have them: sudo apt-get install espeak-ng, then run the installer again")
    assert not step.changed and not (system / "var/lib/bookcorner/speech").exists()
