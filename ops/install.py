"""``bookcorner install`` / ``uninstall`` for Raspberry Pi OS Bookworm.

Puts in place, each step only if it is not already so (a second run reports no change):

1. the ``bookcorner`` system user (in ``dialout`` for the serial reader; not in ``input``:
   the udev rules give it the configured scanner alone);
2. the data directory ``/var/lib/bookcorner`` (0750, the user's; mount the data partition
   there on a read-only root);
3. ``/etc/bookcorner/kiosk.toml`` from the example (only if absent: a teacher's settings
   are never overwritten) and foot's settings for the Chinese screen;
4. a virtual environment in ``/opt/bookcorner/venv`` with the pinned dependencies
   (``deploy/requirements-kiosk.txt``, from PyPI or an offline wheelhouse), bookcorner
   itself, and precompiled bytecode (a read-only root cannot write it later);
5. the systemd units and the udev rules, the kiosk and the sync daemon enabled.

``--role`` picks the machine: ``kiosk`` (all of the above, no central libraries),
``central`` (the library computer: the central server's unit and libraries
``deploy/requirements-central.txt``, no kiosk, no devices) or ``both``. A later run keeps
the role installed unless told otherwise; told another role, it stops, disables and removes
the units (and a kiosk's udev and polkit rules) the new role does not use.

Run again from a newer release, it upgrades in place: it stops the running services, keeps
a backup of the kiosk's data (and of a SQLite central database) in ``/var/backups/bookcorner``,
puts the new program beside the old one, migrates the kiosk's journal (``bookcorner journal
migrate``) and the central database (``bookcorner central migrate``) as the service's user,
and starts the services again. If any of that fails, the old program and the data as they
were are put back and started, and the error says what to do. A journal of an older schema
is backed up before it is migrated on every run, an upgrade or not (a reinstall after
``uninstall`` finds the data kept and no program).

Everything works on a *root* other than ``/`` (a test's throwaway directory, an SD card's
mounted root filesystem): ``useradd --root`` and ``systemctl --root`` do the same there.
``uninstall`` stops the services (where systemd runs), disables them, removes the program,
units and rules and keeps the data, the settings and the user that owns them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bookcorner.config.zones import machine_zone_name
from bookcorner.i18n import _
from bookcorner.ops.doctor import systemd_running
from bookcorner.ops.screen import CONSOLE, WAYLAND
from bookcorner.ops.screen import UNITS as SCREEN_UNITS
from bookcorner.ops.udev import RULE_FILE, devices_from_config, render_rules
from bookcorner.ops.units import DEFAULT, FOOT_INI, POLKIT_RULES, ROLES, SOURCE_DIR, UNITS, Layout, parse_unit, render

#: Debian's packages that speak the kiosk's banners: the synthesiser, and ALSA's aplay
SPEECH_PACKAGES = ("espeak-ng", "alsa-utils")

REPO = SOURCE_DIR.parent
LOCK_FILE = REPO / "deploy" / "requirements-kiosk.txt"
CENTRAL_LOCK_FILE = REPO / "deploy" / "requirements-central.txt"
BUILD_LOCK_FILE = REPO / "deploy" / "requirements-build.txt"
#: the pinned dependencies each role installs (the central server uses the shared core too)
LOCKS = {"kiosk": (LOCK_FILE,), "central": (LOCK_FILE, CENTRAL_LOCK_FILE), "both": (LOCK_FILE, CENTRAL_LOCK_FILE)}
CENTRAL_UNIT = "bookcorner-central.service"
CENTRAL_DB_DEFAULT = "/var/lib/bookcorner-central/central.db"
EXAMPLE_CONFIG = REPO / "config" / "kiosk.example.toml"
#: the kiosk's screen on the bare Linux console (tty1), which draws neither Chinese nor more than 16 colours
CONSOLE_UNIT = "bookcorner-kiosk.service"
STAMP = ".bookcorner-install"
POLKIT_PATH = "/etc/polkit-1/rules.d/50-bookcorner.rules"


def console_screen(example: str) -> str:
    """The example settings made for the console, as bookcorner-kiosk.service asks: English alone,
    the 16-colour theme (the Chinese screen is bookcorner-kiosk-wayland.service: ``--screen``)."""
    return (example.replace("\nbilingual = true\n", "\nbilingual = false\n", 1)
            .replace('\ntheme = "textual-dark"\n', '\ntheme = "ansi-dark"\n', 1))


def wayland_screen(settings: str) -> str:
    """The settings :func:`console_screen` made, as the Chinese screen (cage + foot) asks: both
    languages, the full-colour theme. Lines a school changed by hand are left as they are."""
    return (settings.replace("\nbilingual = false\n", "\nbilingual = true\n", 1)
            .replace('\ntheme = "ansi-dark"\n', '\ntheme = "textual-dark"\n', 1))


def with_zone(example: str, zone: str) -> str:
    """The example settings with ``[kiosk] timezone`` set to ``zone`` (found by the lab: on a
    one-machine school the server counted days in the machine's zone, Etc/UTC, the kiosk in the
    example's Asia/Shanghai, and every sync warned of it)."""
    return example.replace('\ntimezone = "Asia/Shanghai"\n', f'\ntimezone = "{zone}"\n', 1)


class InstallError(Exception):
    """A step that failed; the message names it, for a person."""


@dataclass(frozen=True)
class Step:
    what: str
    changed: bool


@dataclass(frozen=True)
class Installed:
    """What the venv's stamp says it was made from, and for which role; ``dependencies``
    fingerprints the pinned dependencies alone (empty in the stamps of older releases)."""

    fingerprint: str
    role: str
    dependencies: str = ""

    @classmethod
    def read(cls, stamp: Path) -> Installed | None:
        try:
            text = stamp.read_text()
        except FileNotFoundError:
            return None
        try:
            fields = json.loads(text)
            return cls(fields["fingerprint"], fields["role"], str(fields.get("dependencies", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(text.strip(), "kiosk")  # the first releases wrote the bare fingerprint, kiosks only


def central_database(root: Path = Path("/"), layout: Layout = DEFAULT) -> str | None:
    """The database of the central server installed on this machine (the central or both
    role), as its unit and central.env name it: a file or a URL; None without one."""
    found = Installer(root, layout, install_deps=False, systemd=False)._central_db()
    return None if found is None else str(found)


class Installer:
    def __init__(self, root: Path = Path("/"), layout: Layout = DEFAULT, *, python: str = sys.executable,
                 install_deps: bool = True, wheelhouse: Path | None = None, reader_usb: str | None = None,
                 source: Path = REPO, role: str | None = None, systemd: bool | None = None,
                 screen: str | None = None, school: str | None = None) -> None:
        self.root, self.layout, self.python = root, layout, python
        #: ``--role both`` in a district: the school whose kiosk this is (``central.schools``; None:
        #: the school its credential already names, else the first school)
        self.school = school
        self.install_deps, self.wheelhouse, self.reader_usb, self.source = install_deps, wheelhouse, reader_usb, source
        self.installed = Installed.read(self._venv / STAMP)
        self.role = role or (self.installed.role if self.installed else "kiosk")
        if self.role not in ROLES:
            raise ValueError(_("{role}: the role is kiosk, central or both").format(role=self.role))
        self.unit_files, self.boot_units = ROLES[self.role]
        self.kiosk = self.role in ("kiosk", "both")
        if screen not in (None, "auto", *SCREEN_UNITS):
            raise ValueError(_("{screen}: the screen is console, wayland or auto").format(screen=screen))
        #: the screen asked for (None: the one installed, else chosen as "auto" does)
        self.screen_asked = screen
        #: the screen this run switches to from another one installed before (None: no switch)
        self.switched_to: str | None = None
        self.central = self.role in ("central", "both")
        #: set by an upgrade: whether this run replaces a program, and the backups it kept
        self.upgrading_now = False
        self.kept: Path | None = None
        self.kept_db: tuple[Path, Path] | None = None
        #: a SQLite district's other schools (``schools/<slug>.db`` beside the first): each file and its copy
        self.kept_schools: list[tuple[Path, Path]] = []
        #: whether systemd runs the system installed to (its services are stopped and started)
        self.systemd = self.in_place and systemd_running() if systemd is None else systemd

    def at(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def in_place(self) -> bool:
        return self.root.resolve() == Path("/")

    @property
    def _venv(self) -> Path:
        return self.at(f"{self.layout.prefix}/venv")

    def _run(self, *command: str, env: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, **options)
        if done.returncode != 0:
            raise InstallError(_("{command} failed: {error}").format(command=" ".join(command[:3]),
                                                                      error=(done.stderr or done.stdout).strip()))
        return done

    def _root_args(self) -> list[str]:
        return [] if self.in_place else ["--root", str(self.root)]

    # -- the user --------------------------------------------------------------------------------

    def _passwd(self) -> dict[str, tuple[int, int]]:
        users = {}
        for line in self.at("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if len(fields) >= 4:
                users[fields[0]] = (int(fields[2]), int(fields[3]))
        return users

    def _members(self, group: str) -> list[str] | None:
        for line in self.at("/etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == group and len(fields) >= 4:
                return [name for name in fields[3].split(",") if name]
        return None

    def user(self) -> Step:
        user = self.layout.user
        changed = False
        if user not in self._passwd():
            self._run("useradd", *self._root_args(), "--system", "--user-group", "--home-dir", self.layout.data_dir,
                      "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "bookcorner kiosk", user)
            changed = True
        if not self.kiosk:  # the central server opens no device
            return Step(_("the user {user}").format(user=user), changed)
        members = self._members("dialout")
        if members is not None and user not in members:
            self._run("usermod", *self._root_args(), "--append", "--groups", "dialout", user)
            changed = True
        return Step(_("the user {user} (group dialout)").format(user=user), changed)

    def _ids(self) -> tuple[int, int]:
        return self._passwd()[self.layout.user]

    def _as_user(self) -> dict:
        """subprocess options running a command as the service's user (its files stay its
        own; PostgreSQL's peer login knows it), wherever the root is."""
        uid, gid = self._ids()
        return {"user": uid, "group": gid, "extra_groups": [], "cwd": "/",
                "env": {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}}

    # -- the screen ----------------------------------------------------------------------------------

    def _screen_enabled(self) -> str | None:
        """The screen a kiosk installed before starts at boot (None: neither, or not a kiosk yet)."""
        wants = [self.at(f"/etc/systemd/system/{target}.wants") for target in ("multi-user.target", "graphical.target")]
        for screen, unit in SCREEN_UNITS.items():
            if any((folder / unit).is_symlink() for folder in wants):
                return screen
        return None

    def screen(self) -> Step:
        """The kiosk's screen on tty1: cage + foot (Chinese) where the machine has a display for
        it and its packages are there or can be installed, else the bare console (English
        alone); ``--screen`` chooses, and a later run keeps what is installed."""
        from bookcorner.ops import screen as screens

        before = self._screen_enabled()
        why = ""
        if self.screen_asked in SCREEN_UNITS:
            chosen = self.screen_asked
        elif self.screen_asked is None and before is not None:
            chosen = before
        else:
            chosen, why = screens.choose(self.root, self.in_place)
        if chosen == WAYLAND and self.screen_asked == WAYLAND:
            missing = screens.missing_packages(self.root)
            error = (screens.apt_install(missing) if self.in_place else _("not installed")) if missing else None
            if error is not None:
                raise InstallError(_("--screen wayland needs {packages} ({error}): install them (sudo apt-get install "
                                     "{packages}) and run the installer again").format(
                    packages=" ".join(missing), error=error))
        self.boot_units = tuple(SCREEN_UNITS[chosen] if unit == CONSOLE_UNIT else unit
                                for unit in ROLES[self.role][1])
        self.switched_to = chosen if before is not None and before != chosen else None
        if chosen == WAYLAND:
            what = _("the kiosk's screen: cage + foot, which shows Chinese ({unit}); the bare console instead: run the "
                     "installer again with --screen console").format(unit=SCREEN_UNITS[WAYLAND])
        elif missing := screens.missing_packages(self.root):
            what = _("the kiosk's screen: the bare console, English alone ({unit}){why}; for Chinese: sudo apt-get "
                     "install {packages}, then run the installer again with --screen wayland").format(
                unit=SCREEN_UNITS[CONSOLE], why=f": {why}" if why else "", packages=" ".join(missing))
        else:  # (found by the lab: it told a machine with cage + foot installed to apt-get install them)
            what = _("the kiosk's screen: the bare console, English alone ({unit}){why}; for Chinese (cage + foot "
                     "are installed): run the installer again with --screen wayland").format(
                unit=SCREEN_UNITS[CONSOLE], why=f": {why}" if why else "")
        return Step(what, before != chosen)

    # -- files -----------------------------------------------------------------------------------------

    def _write(self, path: Path, text: str, mode: int, owner: tuple[int, int] = (0, 0)) -> bool:
        """Write ``text`` unless the file already holds it (and has this mode and owner)."""
        data = text.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            info = path.stat()
            if (info.st_mode & 0o777, info.st_uid, info.st_gid) == (mode, *owner):
                return False
            os.chmod(path, mode)
            os.chown(path, *owner)
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        part.write_bytes(data)
        os.chmod(part, mode)
        os.chown(part, *owner)
        os.replace(part, path)
        return True

    def data_dir(self) -> Step:
        path = self.at(self.layout.data_dir)
        uid, gid = self._ids()
        changed = not path.is_dir()
        path.mkdir(parents=True, exist_ok=True)
        info = path.stat()
        if (info.st_mode & 0o777, info.st_uid, info.st_gid) != (0o750, uid, gid):
            os.chmod(path, 0o750)
            os.chown(path, uid, gid)
            changed = True
        return Step(_("the data directory {path}").format(path=self.layout.data_dir), changed)

    @property
    def _config(self) -> Path:
        return self.at(f"{self.layout.config_dir}/kiosk.toml")

    def config(self) -> list[Step]:
        _uid, gid = self._ids()
        changed = False
        settings: Step | None = None
        if not self._config.exists():  # never overwrite the school's settings
            text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
                'data_dir = "~/.local/share/bookcorner"', f'data_dir = "{self.layout.data_dir}"', 1)
            if CONSOLE_UNIT in self.boot_units:  # the screen starts on the bare console (found by the lab:
                text = console_screen(text)      # the example's Chinese showed there as rows of squares)
            if self.central:  # the server beside it counts days in this machine's zone: so does the kiosk
                text = with_zone(text, machine_zone_name({}, self.at("/etc")))
            changed = self._write(self._config, text, 0o640, (0, gid))
        elif self.switched_to is not None:
            # (found by the lab: a console kiosk switched to cage + foot kept the console's English
            # alone and 16 colours, so the Chinese screen showed no Chinese answers)
            text = self._config.read_text(encoding="utf-8")
            made = console_screen(text) if self.switched_to == CONSOLE else wayland_screen(text)
            if made != text:
                info = self._config.stat()
                self._write(self._config, made, info.st_mode & 0o777, (info.st_uid, info.st_gid))
                what = (_("the settings {path}: English alone and the 16-colour theme, for the bare console")
                        if self.switched_to == CONSOLE else
                        _("the settings {path}: Chinese and English, and the full-colour theme, for cage + foot"))
                settings = Step(what.format(path=f"{self.layout.config_dir}/kiosk.toml"), True)
        foot = self._write(self.at(f"{self.layout.config_dir}/foot.ini"),
                           (SOURCE_DIR / FOOT_INI).read_text(encoding="utf-8"), 0o644)
        if settings is None:
            settings = Step(_("the settings {path}").format(path=f"{self.layout.config_dir}/kiosk.toml"), changed)
        return [settings, Step(_("the Chinese screen's terminal settings"), foot)]

    # -- the program -------------------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        """What the venv was made from: the pinned dependencies and bookcorner's own files."""
        digest = hashlib.sha256()
        for lock in LOCKS[self.role]:
            digest.update(lock.read_bytes() if self.install_deps else b"no-deps")
        digest.update(str(self.wheelhouse).encode())
        for package in sorted(self._packages()):
            for path in sorted(package.rglob("*.py")):
                digest.update(path.relative_to(self.source).as_posix().encode())
                digest.update(path.read_bytes())
        digest.update((self.source / "pyproject.toml").read_bytes())
        return digest.hexdigest()

    def _packages(self) -> list[Path]:
        return [path.parent for path in self.source.glob("*/__init__.py")
                if path.parent.name not in ("tests", "bench")]

    def _dependencies(self) -> str:
        """What the venv's dependencies were installed from: the locks of the role, and the
        Python the venv was made with."""
        digest = hashlib.sha256(os.path.realpath(self.python).encode())
        for lock in LOCKS[self.role]:
            digest.update(lock.read_bytes() if self.install_deps else b"no-deps")
        return digest.hexdigest()

    def _stamp(self) -> Installed:
        return Installed(self._fingerprint(), self.role, self._dependencies())

    @property
    def upgrading(self) -> bool:
        """An older program (or one for another role) is installed: this run replaces it."""
        return self.installed is not None and not self._same(self.installed, self._stamp())

    @staticmethod
    def _same(installed: Installed, wanted: Installed) -> bool:
        """The same program for the same role (a stamp of an older release has no ``dependencies``)."""
        return (installed.fingerprint, installed.role) == (wanted.fingerprint, wanted.role)

    def venv(self) -> Step:
        """The program, built beside the one it replaces (kept as ``venv.previous`` until
        the upgrade is through: :meth:`roll_back` puts it back)."""
        venv, what = self._venv, _("the program in {path}").format(path=f"{self.layout.prefix}/venv")
        stamp, installed = self._stamp(), Installed.read(venv / STAMP)
        if installed is not None and self._same(installed, stamp) and (venv / "bin" / "bookcorner").exists():
            return Step(what, False)
        previous = venv.with_name("venv.previous")
        shutil.rmtree(previous, ignore_errors=True)
        if venv.exists():
            os.replace(venv, previous)
        # only bookcorner changed: its dependencies are copied from the program it replaces
        # (the same path, so the scripts' #! lines hold) rather than installed again
        same_dependencies = (installed is not None and installed.dependencies == stamp.dependencies
                             and (previous / "bin" / "python").exists())
        try:
            if same_dependencies:
                shutil.copytree(previous, venv, symlinks=True)
            self._build(venv, dependencies=not same_dependencies)
        except BaseException:
            if not self.roll_back():
                shutil.rmtree(venv, ignore_errors=True)
            raise
        (venv / STAMP).write_text(json.dumps({"fingerprint": stamp.fingerprint, "role": stamp.role,
                                              "dependencies": stamp.dependencies}))
        return Step(what, True)

    def _build(self, venv: Path, *, dependencies: bool = True) -> None:
        """The venv with the pinned dependencies (unless ``dependencies`` is false: they are
        there already) and bookcorner itself."""
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input", "install", "--quiet"]
        index = ["--no-index", "--find-links", str(self.wheelhouse)] if self.wheelhouse is not None else []
        if dependencies:
            self._run(self.python, "-m", "venv", str(venv))
        if dependencies and self.install_deps:
            # the locks are the whole closure: exactly these versions, nothing resolved afresh
            locks = [word for lock in LOCKS[self.role] for word in ("-r", str(lock))]
            self._run(*pip, *index, "--require-virtualenv", "--no-deps", *locks)
        # bookcorner itself, built as a wheel from a clean copy of its packages (a checkout's
        # build/ folder could add stale modules, and the checkout may be read-only); its build
        # environment gets the pinned setuptools (PIP_CONSTRAINT reaches pip's isolated build
        # environment, a command-line option does not)
        with tempfile.TemporaryDirectory(prefix="bookcorner-wheel-") as scratch:
            tree, built = Path(scratch) / "source", Path(scratch) / "wheel"
            tree.mkdir()
            for name in ("pyproject.toml", "README.md"):
                shutil.copy2(self.source / name, tree / name)
            for package in self._packages():
                shutil.copytree(package, tree / package.name, ignore=shutil.ignore_patterns("__pycache__"))
            self._run(python, "-m", "pip", "--disable-pip-version-check", "--no-input", "wheel", "--quiet",
                      "--no-deps", *index, "--wheel-dir", str(built), str(tree),
                      env={**os.environ, "PIP_CONSTRAINT": str(BUILD_LOCK_FILE)})
            self._run(*pip, "--no-deps", "--force-reinstall", *map(str, built.glob("bookcorner-*.whl")))
        # bytecode now: a read-only root cannot write it later, and the kiosk starts faster
        self._run(python, "-m", "compileall", "-q", "-j", "0", str(venv / "lib"))

    def roll_back(self) -> bool:
        """The previous program back in place of a new one; whether there was one."""
        previous = self._venv.with_name("venv.previous")
        if not previous.is_dir():
            return False
        shutil.rmtree(self._venv, ignore_errors=True)
        os.replace(previous, self._venv)
        return True

    # -- an upgrade: stop, keep a backup, migrate, start ---------------------------------------------

    def stop(self) -> tuple[Step, list[str]]:
        """Stop this role's running services (their files are about to change); which ran."""
        if not self.systemd:
            return Step(_("no service to stop: systemd does not run this system"), False), []
        ours = {*self.unit_files, *(ROLES[self.installed.role][0] if self.installed else ())}
        running = self._stop([unit for unit in UNITS if unit in ours])
        stopped = Step(_("stopped for the upgrade: {units}").format(units=", ".join(running) or "-"), bool(running))
        return stopped, running

    def _stop(self, units: list[str]) -> list[str]:
        """Stop those of ``units`` that run; which ran."""
        running = [unit for unit in units if self._systemctl("is-active", "--quiet", unit).returncode == 0]
        if running:
            done = self._systemctl("stop", *running)
            if done.returncode != 0:
                raise InstallError(_("systemctl stop failed: {error}").format(error=done.stderr.strip()))
        return running

    def _disable(self, units: list[str]) -> list[str]:
        """No longer start those of ``units`` at boot that were; which were."""
        enabled = [unit for unit in units if self._systemctl("is-enabled", "--quiet", unit).returncode == 0]
        if enabled:
            done = self._systemctl("disable", *enabled)
            if done.returncode != 0:
                raise InstallError(_("systemctl disable failed: {error}").format(error=done.stderr.strip()))
        return enabled

    def start(self, units: list[str]) -> Step:
        if units:
            self._systemctl("daemon-reload")
            done = self._systemctl("start", *units)
            if done.returncode != 0:
                raise InstallError(_("systemctl start failed: {error}; see why with: journalctl -b -u {unit}").format(
                    error=done.stderr.strip(), unit=units[0]))
        return Step(_("started again: {units}").format(units=", ".join(units) or "-"), bool(units))

    def backup(self) -> list[Step]:
        """The kiosk's data (and a SQLite central database) as they are before the upgrade."""
        from bookcorner.ops.backup import BackupError, make_backup

        folder = self.at(self.layout.backups)
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # a kiosk's backup holds its credential
        steps = []
        data = self.at(self.layout.data_dir)
        if self.kiosk and ((data / "journal").is_dir() or (data / "reference").is_dir()):
            try:
                self.kept = make_backup(data, folder).path
            except (BackupError, OSError) as error:
                raise InstallError(_("cannot keep a backup of the data before upgrading: {error}").format(
                    error=error)) from None
            steps.append(Step(_("a backup of the data: {path}").format(path=self._shown(self.kept)), True))
        database = self._central_db() if self.central else None
        if isinstance(database, Path) and database.is_file():
            stamp = time.strftime('%Y%m%d-%H%M%S')
            copy = folder / f"central-{stamp}.db"
            _sqlite_copy(database, copy)
            self.kept_db = (database, copy)
            steps.append(Step(_("a copy of the central database: {path}").format(path=self._shown(copy)), True))
            schools = _school_files(database)
            if schools:  # a district: its other schools are files of their own, migrated with the first
                beside = folder / f"central-{stamp}-schools"
                beside.mkdir(exist_ok=True)
                for school in schools:
                    _sqlite_copy(school, beside / school.name)
                    self.kept_schools.append((school, beside / school.name))
                steps.append(Step(_("a copy of the district's other schools ({count}): {path}").format(
                    count=len(schools), path=self._shown(beside)), True))
        elif database is not None and not isinstance(database, Path):
            steps.append(Step(_("the central database is on PostgreSQL: the installer does not copy it (keep your "
                                "own pg_dump backups)"), False))
        return steps

    def _shown(self, path: Path) -> str:
        return "/" + path.relative_to(self.root).as_posix()

    def _central_env(self) -> dict[str, str] | None:
        """The central server's environment as its unit and central.env set it (the database,
        its arguments); None when the central unit is not installed."""
        unit = self.at(f"/etc/systemd/system/{CENTRAL_UNIT}")
        if not unit.is_file():
            return None
        found = {"BOOKCORNER_CENTRAL_DB": CENTRAL_DB_DEFAULT}
        for key, assignments in parse_unit(unit.read_text(encoding="utf-8")).get("Service", []):
            for word in shlex.split(assignments) if key == "Environment" else []:
                name, _equals, setting = word.partition("=")
                found[name] = setting
        env = self.at(f"{self.layout.config_dir}/central.env")
        if env.is_file():  # EnvironmentFile= wins over Environment=
            for line in env.read_text(encoding="utf-8").splitlines():
                line = line.strip()  # as systemd reads it: the rest of the line, quotes around it dropped
                if line and line[0] not in "#;" and "=" in line:
                    name, _equals, setting = line.partition("=")
                    setting = setting.strip()
                    if len(setting) >= 2 and setting[0] == setting[-1] and setting[0] in "\"'":
                        setting = setting[1:-1]
                    found[name.strip()] = setting
        return found

    def _central_db(self) -> Path | str | None:
        """The central server's database as its unit and central.env name it: a file (in
        this root), or a URL; None when the central unit is not installed."""
        env = self._central_env()
        if env is None:
            return None
        setting = env["BOOKCORNER_CENTRAL_DB"]
        if "://" in setting and not setting.startswith("sqlite:"):
            return setting
        return self.at(setting.removeprefix("sqlite:///").removeprefix("sqlite://") if "://" in setting
                       else setting)

    def migrate(self) -> list[Step]:
        """The kiosk's journal and the central database brought to the new program's schema,
        each by the new program, as the service's user."""
        from bookcorner.journal import schema

        steps = []
        bookcorner = str(self._venv / "bin" / "bookcorner")
        journal = self.at(self.layout.data_dir) / "journal"
        outdated = self._outdated_journal()
        if outdated:
            done = subprocess.run([bookcorner, "--config", str(self._config), "journal", "migrate", "--data-dir",
                                   str(journal.parent)], capture_output=True, text=True, check=False, **self._as_user())
            if done.returncode != 0:
                raise InstallError(_("the journal could not be migrated: {error}").format(
                    error=(done.stderr or done.stdout).strip()))
            steps.append(Step(_("the journal migrated to schema {schema} ({count} segment(s))").format(
                schema=schema.SCHEMA, count=len(outdated)), True))
        elif self.kiosk and journal.is_dir():
            steps.append(Step(_("the journal at schema {schema}").format(schema=schema.SCHEMA), False))
        database = self._central_db() if self.central else None
        if database is not None and self.upgrading_now:
            if isinstance(database, Path) and not database.is_file():
                steps.append(Step(_("no central database yet: the server makes it when it first starts"), False))
            else:
                done = subprocess.run([bookcorner, "central", "migrate", "--db", str(database)], capture_output=True,
                                      text=True, check=False, **self._as_user())
                if done.returncode != 0:
                    raise InstallError(_("the central database could not be migrated: {error}").format(
                        error=(done.stderr or done.stdout).strip()))
                steps.append(Step(_("the central database's schema brought up to date"), True))
        return steps

    def _outdated_journal(self) -> list[tuple[Path, int]]:
        """The kiosk's journal segments of an older schema than this release's."""
        from bookcorner.journal.journal import outdated_segments

        journal = self.at(self.layout.data_dir) / "journal"
        return outdated_segments(journal) if self.kiosk and journal.is_dir() else []

    def restore_data(self) -> list[str]:
        """After a failed migration: the data as the backup kept it; what was done, in words."""
        from bookcorner.ops.backup import BackupError, hand_over, restore_backup

        done = []
        data = self.at(self.layout.data_dir)
        if self.kept is not None and (data / "journal").is_dir():
            aside = data / f".journal-failed-upgrade-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(data / "journal", aside)
            try:
                restore_backup(self.kept, data, owner=self._ids())
            except BackupError as error:
                return [_("the data could not be restored ({error}): restore {path} by hand").format(
                    error=error, path=self._shown(self.kept))]
            hand_over(aside, self._ids())
            done.append(_("the data was restored from {path} (the journal as the failed migration left it is in "
                          "{aside})").format(path=self._shown(self.kept), aside=self._shown(aside)))
        if self.kept_db is not None:
            database, copy = self.kept_db
            _sqlite_copy(copy, database)
            os.chown(database, *self._ids())
            done.append(_("the central database was restored from {path}").format(path=self._shown(copy)))
        for school, copy in self.kept_schools:
            _sqlite_copy(copy, school)
            os.chown(school, *self._ids())
        if self.kept_schools:
            done.append(_("the district's other schools were restored from {path}").format(
                path=self._shown(self.kept_schools[0][1].parent)))
        return done

    # -- systemd and udev -------------------------------------------------------------------------------

    def units(self) -> list[Step]:
        steps = []
        for name in self.unit_files:
            text = render((SOURCE_DIR / name).read_text(encoding="utf-8"), self.layout)
            changed = self._write(self.at(f"/etc/systemd/system/{name}"), text, 0o644)
            steps.append(Step(_("the unit {name}").format(name=name), changed))
        if self.kiosk:
            # the librarian's "Shut down" (systemctl poweroff as the kiosk's user)
            text = (SOURCE_DIR / POLKIT_RULES).read_text(encoding="utf-8").replace(
                'subject.user == "bookcorner"', f'subject.user == "{self.layout.user}"')
            steps.append(Step(_("the permission to power off {path}").format(path=POLKIT_PATH),
                              self._write(self.at(POLKIT_PATH), text, 0o644)))
        return steps

    def retire(self) -> list[Step]:
        """What another role installed and this one does not use: its units stopped, no longer
        started at boot, removed; on a machine that is no longer a kiosk, the kiosk's udev
        and polkit rules removed too. The data, the settings and the user stay."""
        units = [unit for unit in UNITS
                 if unit not in self.unit_files and self.at(f"/etc/systemd/system/{unit}").is_file()]
        paths = [f"/etc/systemd/system/{unit}" for unit in units]
        if not self.kiosk:
            paths += [path for path in (f"/etc/udev/rules.d/{RULE_FILE}", POLKIT_PATH) if self.at(path).exists()]
        if not paths:
            return []
        steps = []
        stopped = self._stop(units) if self.systemd else []
        if stopped:
            steps.append(Step(_("stopped: {units}").format(units=", ".join(stopped)), True))
        disabled = self._disable(units)
        if disabled:
            steps.append(Step(_("not started at boot any more: {units}").format(units=", ".join(disabled)), True))
        for path in paths:  # after disabling: systemctl reads a unit's [Install] to undo it
            self.at(path).unlink()
            steps.append(Step(_("removed {path} (the role {role} does not use it)").format(path=path, role=self.role),
                              True))
        return steps

    def pair(self) -> list[Step]:
        """A one-machine school (``--role both``): the kiosk synced with the central server
        beside it, its address in ``[sync] server_url`` and its credential (``bookcorner
        central add-kiosk``) in the file the sync daemon reads. Kept as it is on a later run
        while the server knows the kiosk; a server_url the school set to another server is
        theirs, and a kiosk id the server lacks (a new database, a renamed kiosk) is added. In a
        district the kiosk is paired with the school ``--school`` names (a later run without it
        keeps the school the kiosk's credential names), else the first school."""
        from bookcorner import config
        from bookcorner.ops.pairing import PairingError, local_server_url, server_url_of, with_server_url

        central = self._central_env()
        if not (self.kiosk and self.central) or central is None:
            return []
        text = self._config.read_text(encoding="utf-8")
        try:
            url = local_server_url(central.get("BOOKCORNER_CENTRAL_ARGS", ""))
            current = server_url_of(text)
            if not current:
                self._write(self._config, with_server_url(text, url), 0o640, (0, self._ids()[1]))
        except PairingError as error:
            return [Step(_("the kiosk is not paired with the central server on this machine: {why}").format(
                why=error), False)]
        if current and current != url:
            return [Step(_("the kiosk syncs with {current}, as its settings say (the central server on this machine "
                           "is {url})").format(current=current, url=url), False)]
        settings = config.load(self._config)
        steps = [Step(_("the kiosk's server: {url}, the central server on this machine").format(url=url),
                      not current)]
        credential = self.at(str(settings.credential_file))
        held = credential.read_text(encoding="utf-8").strip() if credential.is_file() else ""
        held_school = held.partition(".")[0] if "." in held else ""  # (a school's credential starts "<slug>.")
        school = held_school if self.school is None else self.school
        where = ["--school", school] if school else []
        known = settings.kiosk.id in self._central_kiosks(*where)
        if known and held and held_school == school:
            return [*steps, Step((_("the kiosk {id}'s credential for the school {school} in {path}") if school else
                                  _("the kiosk {id}'s credential in {path}")).format(
                id=settings.kiosk.id, school=school, path=self._shown(credential)), False)]
        token = self._central("add-kiosk", settings.kiosk.id, "--name", settings.kiosk.name, *where,
                              *(["--reissue"] if known else [])).strip()
        folder = credential.parent
        folder.mkdir(parents=True, exist_ok=True)
        if folder == self.at(self.layout.data_dir) / "sync":  # the sync daemon's own folder
            os.chmod(folder, 0o700)
            os.chown(folder, *self._ids())
        self._write(credential, token + "\n", 0o600, self._ids())
        if school:
            return [*steps, Step(_("the kiosk {id}'s credential for the school {school} from the central server on "
                                   "this machine, in {path}").format(id=settings.kiosk.id, school=school,
                                                                     path=self._shown(credential)), True)]
        return [*steps, Step(_("the kiosk {id}'s credential from the central server on this machine, in {path}").format(
            id=settings.kiosk.id, path=self._shown(credential)), True)]

    def _central(self, *words: str) -> str:
        """``bookcorner central WORDS --db <the server's database>`` run by the new program as
        the service's user; what it printed."""
        database = self._central_db()
        if isinstance(database, Path):  # what the unit's StateDirectory= makes at its first start
            database.parent.mkdir(parents=True, exist_ok=True)
            if database.parent.name == "bookcorner-central":
                os.chmod(database.parent, 0o750)
                os.chown(database.parent, *self._ids())
        done = subprocess.run([str(self._venv / "bin" / "bookcorner"), "central", *words, "--db", str(database)],
                              capture_output=True, text=True, check=False, **self._as_user())
        if done.returncode != 0:
            raise InstallError(_("bookcorner central {action} failed: {error}").format(
                action=words[0], error=(done.stderr or done.stdout).strip()))
        return done.stdout

    def _central_kiosks(self, *where: str) -> set[str]:
        """The kiosks the central server on this machine knows (in the school ``where`` names)."""
        listing = json.loads(self._central("kiosks", "--json", *where))
        return {kiosk["kiosk_id"] for kiosk in listing.get("kiosks", [])}

    def udev(self) -> Step:
        from bookcorner import config

        settings = config.load(self._config)
        inputs, serial = devices_from_config(settings.devices, self.reader_usb)
        text = render_rules(inputs, serial, self.layout.user)
        return Step(_("the udev rules {path}").format(path=f"/etc/udev/rules.d/{RULE_FILE}"),
                    self._write(self.at(f"/etc/udev/rules.d/{RULE_FILE}"), text, 0o644))

    def _systemctl(self, *words: str) -> subprocess.CompletedProcess:
        return subprocess.run(["systemctl", *([] if self.in_place else [f"--root={self.root}"]), *words],
                              capture_output=True, text=True, check=False)

    def _reload(self) -> None:
        """Where systemd runs: it and udev read the units and rules as they now are."""
        if self.systemd:
            self._systemctl("daemon-reload")
            subprocess.run(["udevadm", "control", "--reload"], capture_output=True, check=False)

    def enable(self) -> Step:
        # the other screen off (never both on tty1): where it ran, the chosen one takes over
        other = [unit for unit in SCREEN_UNITS.values() if self.kiosk and unit not in self.boot_units]
        running = self._stop(other) if self.systemd else []
        self._disable(other)
        missing = [unit for unit in self.boot_units if self._systemctl("is-enabled", "--quiet", unit).returncode != 0]
        if missing:
            done = self._systemctl("enable", *missing)
            if done.returncode != 0:
                raise InstallError(_("systemctl enable failed: {error}").format(error=done.stderr.strip()))
        self._reload()
        if running:
            self.start([unit for unit in SCREEN_UNITS.values() if unit in self.boot_units])
        return Step(_("started at boot: {units}").format(units=", ".join(self.boot_units)), bool(missing))

    def install(self) -> Iterator[Step]:
        """Each step as it is done (an upgrade's failure is raised after the steps before it)."""
        yield self.user()
        if self.kiosk:
            yield self.screen()
            yield self.data_dir()
            yield from self.config()
        self.upgrading_now = self.upgrading
        running: list[str] = []
        if self.upgrading_now:
            stopped, running = self.stop()
            yield stopped
        # a journal of an older schema is backed up before it is migrated, an upgrade or not
        # (a reinstall after uninstall finds the data kept and no program)
        backing_up = self.upgrading_now or bool(self._outdated_journal())
        built = None
        try:
            if backing_up:
                yield from self.backup()
            built = self.venv()
            yield built
            yield from self.migrate()
        except InstallError as error:
            if not backing_up:
                raise
            undone = self.restore_data() if built is not None else []
            if not self.roll_back() and built is not None and built.changed:
                shutil.rmtree(self._venv, ignore_errors=True)  # nothing to go back to: no new program either
            raise InstallError(f"{error}\n{self._undone(running, undone)}") from None
        shutil.rmtree(self._venv.with_name("venv.previous"), ignore_errors=True)
        if self.kiosk:
            yield self.speech()
        yield from self.retire()
        yield from self.units()
        if self.kiosk:
            yield self.udev()
        yield from self.pair()
        yield self.enable()
        running = [unit for unit in running if unit in self.unit_files]  # not those the new role retired
        if running:
            yield self.start(running)

    def speech(self) -> Step:
        """The spoken banners' clips (``bookcorner speech build``) in DATA_DIR/speech, made by the
        new program as the service's user with Debian's eSpeak NG (installed here, with ALSA's
        aplay, where they are missing), again only when the banners' words changed. Never a
        failure of the install: a kiosk without its clips stays silent ([screen] speech)."""
        from bookcorner.ops import screen as screens

        clips = self.at(self.layout.data_dir) / "speech"
        have = screens.installed_packages(self.root)
        missing = [package for package in SPEECH_PACKAGES if package not in have]
        error = (screens.apt_install(missing) if self.in_place else _("not installed")) if missing else None
        if error is not None:
            return Step(_("the spoken banners: not made, {packages} missing ({error}); to have them: sudo apt-get "
                          "install {packages}, then run the installer again").format(
                packages=" ".join(missing), error=error), False)
        bookcorner = [str(self._venv / "bin" / "bookcorner"), "--config", str(self._config), "speech"]
        try:
            checked = subprocess.run([*bookcorner, "check", str(clips)], capture_output=True, text=True,
                                     check=False, **self._as_user())
            if checked.returncode == 0:
                return Step(_("the spoken banners' clips in {path}").format(path=self._shown(clips)), False)
            built = subprocess.run([*bookcorner, "build", "--to", str(clips)], capture_output=True, text=True,
                                   check=False, **self._as_user())
            error = (built.stderr or built.stdout).strip() if built.returncode != 0 else None
        except OSError as failed:
            error = str(failed)
        if error is not None:
            return Step(_("the spoken banners: not made ({error})").format(error=error), False)
        return Step(_("the spoken banners' clips in {path}").format(path=self._shown(clips)), True)

    def _undone(self, running: list[str], undone: list[str]) -> str:
        """What a failed upgrade put back, and what to do now, for the person at the terminal."""
        started = []
        if running:
            try:
                self.start(running)
            except InstallError as error:
                started.append(str(error))
        if not self.upgrading_now:
            first = _("Nothing was lost: the program is as it was before this run.")
        elif running and not started:
            first = _("Nothing was lost: the previous program is back in place and running again.")
        else:
            first = _("Nothing was lost: the previous program is back in place.")
        lines = [first, *started, *undone]
        if self.kept is not None:
            lines.append(_("The data as it was before the upgrade is kept in {path}.").format(
                path=self._shown(self.kept)))
        lines.append(_("Fix the error above (or bring this output to whoever looks after the corners) and run the "
                       "installer again."))
        return "\n".join(lines)

    def uninstall(self) -> list[Step]:
        """Stopped first (a service whose program is removed under it fails), then disabled,
        then removed."""
        if self.systemd:
            stopped = self._stop(list(UNITS))
            steps = [Step(_("stopped: {units}").format(units=", ".join(stopped) or "-"), bool(stopped))]
        else:
            steps = [Step(_("no service to stop: systemd does not run this system"), False)]
        disabled = self._disable(list(UNITS))
        steps.append(Step(_("not started at boot any more: {units}").format(units=", ".join(disabled) or "-"),
                          bool(disabled)))
        installed = [*(f"/etc/systemd/system/{name}" for name in UNITS), f"/etc/udev/rules.d/{RULE_FILE}", POLKIT_PATH]
        for path in installed:
            target = self.at(path)
            steps.append(Step(_("removed {path}").format(path=path), target.exists()))
            target.unlink(missing_ok=True)
        venv = self._venv
        steps.append(Step(_("removed {path}").format(path=f"{self.layout.prefix}/venv"), venv.exists()))
        shutil.rmtree(venv, ignore_errors=True)
        shutil.rmtree(venv.with_name("venv.previous"), ignore_errors=True)
        self._reload()
        return steps


def _school_files(database: Path) -> list[Path]:
    """A SQLite district's schools but the first (``central.schools``: ``schools/<slug>.db``
    beside the first school's ``central.db``)."""
    folder = database.parent / "schools"
    return sorted(path for path in folder.glob("*.db") if path.is_file()) if folder.is_dir() else []


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its own backup API, not a file copy that
    could miss what waits in its write-ahead log)."""
    origin, copy = sqlite3.connect(source), sqlite3.connect(target)
    try:
        origin.backup(copy)
    finally:
        origin.close()
        copy.close()
