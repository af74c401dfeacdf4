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

Everything works on a *root* other than ``/`` (a test's throwaway directory, an SD card's
mounted root filesystem): ``useradd --root`` and ``systemctl --root`` do the same there.
``uninstall`` removes the program, units and rules and keeps the data, the settings and
the user that owns them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from i18n import _
from ops.udev import RULE_FILE, devices_from_config, render_rules
from ops.units import DEFAULT, FOOT_INI, KIOSK_UNITS, POLKIT_RULES, SOURCE_DIR, UNITS, Layout, render

REPO = SOURCE_DIR.parent
LOCK_FILE = REPO / "deploy" / "requirements-kiosk.txt"
BUILD_LOCK_FILE = REPO / "deploy" / "requirements-build.txt"
EXAMPLE_CONFIG = REPO / "config" / "kiosk.example.toml"
STAMP = ".bookcorner-install"
POLKIT_PATH = "/etc/polkit-1/rules.d/50-bookcorner.rules"


class InstallError(Exception):
    """A step that failed; the message names it, for a person."""


@dataclass(frozen=True)
class Step:
    what: str
    changed: bool


class Installer:
    def __init__(self, root: Path = Path("/"), layout: Layout = DEFAULT, *, python: str = sys.executable,
                 install_deps: bool = True, wheelhouse: Path | None = None, reader_usb: str | None = None,
                 source: Path = REPO) -> None:
        self.root, self.layout, self.python = root, layout, python
        self.install_deps, self.wheelhouse, self.reader_usb, self.source = install_deps, wheelhouse, reader_usb, source

    def at(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def in_place(self) -> bool:
        return self.root.resolve() == Path("/")

    def _run(self, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(command, capture_output=True, text=True, env=env)
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
        members = self._members("dialout")
        if members is not None and user not in members:
            self._run("usermod", *self._root_args(), "--append", "--groups", "dialout", user)
            changed = True
        return Step(_("the user {user} (group dialout)").format(user=user), changed)

    def _ids(self) -> tuple[int, int]:
        return self._passwd()[self.layout.user]

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

    def config(self) -> list[Step]:
        config = self.at(f"{self.layout.config_dir}/kiosk.toml")
        _uid, gid = self._ids()
        changed = False
        if not config.exists():  # never overwrite the school's settings
            text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
                'data_dir = "~/.local/share/bookcorner"', f'data_dir = "{self.layout.data_dir}"', 1)
            changed = self._write(config, text, 0o640, (0, gid))
        foot = self._write(self.at(f"{self.layout.config_dir}/foot.ini"),
                           (SOURCE_DIR / FOOT_INI).read_text(encoding="utf-8"), 0o644)
        return [Step(_("the settings {path}").format(path=f"{self.layout.config_dir}/kiosk.toml"), changed),
                Step(_("the Chinese screen's terminal settings"), foot)]

    # -- the program -------------------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        """What the venv was made from: the pinned dependencies and bookcorner's own files."""
        digest = hashlib.sha256()
        digest.update(LOCK_FILE.read_bytes() if self.install_deps else b"no-deps")
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

    def venv(self) -> Step:
        venv = self.at(f"{self.layout.prefix}/venv")
        stamp = venv / STAMP
        fingerprint = self._fingerprint()
        if stamp.is_file() and stamp.read_text() == fingerprint and (venv / "bin" / "bookcorner").exists():
            return Step(_("the program in {path}").format(path=f"{self.layout.prefix}/venv"), False)
        self._run(self.python, "-m", "venv", str(venv))
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input", "install",
               "--quiet"]
        if self.wheelhouse is not None:
            pip += ["--no-index", "--find-links", str(self.wheelhouse)]
        if self.install_deps:
            # the lock is the whole closure: exactly these versions, nothing resolved afresh
            self._run(*pip, "--require-virtualenv", "--no-deps", "-r", str(LOCK_FILE))
        # bookcorner itself, built as a wheel; its build environment gets the pinned setuptools
        # (PIP_CONSTRAINT reaches pip's isolated build environment, a command-line option does not)
        index = ["--no-index", "--find-links", str(self.wheelhouse)] if self.wheelhouse is not None else []
        with tempfile.TemporaryDirectory(prefix="bookcorner-wheel-") as built:
            self._run(str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input", "wheel",
                      "--quiet", "--no-deps", *index, "--wheel-dir", built, str(self.source),
                      env={**os.environ, "PIP_CONSTRAINT": str(BUILD_LOCK_FILE)})
            self._run(*pip, "--no-deps", "--force-reinstall", *map(str, Path(built).glob("bookcorner-*.whl")))
        # bytecode now: a read-only root cannot write it later, and the kiosk starts faster
        self._run(str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(venv / "lib"))
        stamp.write_text(fingerprint)
        return Step(_("the program in {path}").format(path=f"{self.layout.prefix}/venv"), True)

    # -- systemd and udev -------------------------------------------------------------------------------

    def units(self) -> list[Step]:
        steps = []
        for name in UNITS:
            text = render((SOURCE_DIR / name).read_text(encoding="utf-8"), self.layout)
            changed = self._write(self.at(f"/etc/systemd/system/{name}"), text, 0o644)
            steps.append(Step(_("the unit {name}").format(name=name), changed))
        # the librarian's "Shut down" (systemctl poweroff as the kiosk's user)
        text = (SOURCE_DIR / POLKIT_RULES).read_text(encoding="utf-8").replace(
            'subject.user == "bookcorner"', f'subject.user == "{self.layout.user}"')
        steps.append(Step(_("the permission to power off {path}").format(path=POLKIT_PATH),
                          self._write(self.at(POLKIT_PATH), text, 0o644)))
        return steps

    def udev(self) -> Step:
        import config

        settings = config.load(self.at(f"{self.layout.config_dir}/kiosk.toml"))
        inputs, serial = devices_from_config(settings.devices, self.reader_usb)
        text = render_rules(inputs, serial, self.layout.user)
        return Step(_("the udev rules {path}").format(path=f"/etc/udev/rules.d/{RULE_FILE}"),
                    self._write(self.at(f"/etc/udev/rules.d/{RULE_FILE}"), text, 0o644))

    def _systemctl(self, *words: str) -> subprocess.CompletedProcess:
        return subprocess.run(["systemctl", *([] if self.in_place else [f"--root={self.root}"]), *words],
                              capture_output=True, text=True)

    def enable(self) -> Step:
        missing = [unit for unit in KIOSK_UNITS if self._systemctl("is-enabled", "--quiet", unit).returncode != 0]
        if missing:
            done = self._systemctl("enable", *missing)
            if done.returncode != 0:
                raise InstallError(_("systemctl enable failed: {error}").format(error=done.stderr.strip()))
        if self.in_place and Path("/run/systemd/system").is_dir():
            self._systemctl("daemon-reload")
            subprocess.run(["udevadm", "control", "--reload"], capture_output=True)
        return Step(_("started at boot: {units}").format(units=", ".join(KIOSK_UNITS)), bool(missing))

    def install(self) -> list[Step]:
        steps = [self.user(), self.data_dir(), *self.config(), self.venv(), *self.units(), self.udev(), self.enable()]
        return steps

    def uninstall(self) -> list[Step]:
        steps = []
        enabled = [unit for unit in UNITS if self._systemctl("is-enabled", "--quiet", unit).returncode == 0]
        if enabled:
            self._systemctl("disable", *enabled)
        steps.append(Step(_("not started at boot any more"), bool(enabled)))
        installed = [*(f"/etc/systemd/system/{name}" for name in UNITS), f"/etc/udev/rules.d/{RULE_FILE}", POLKIT_PATH]
        for path in installed:
            target = self.at(path)
            steps.append(Step(_("removed {path}").format(path=path), target.exists()))
            target.unlink(missing_ok=True)
        venv = self.at(f"{self.layout.prefix}/venv")
        steps.append(Step(_("removed {path}").format(path=f"{self.layout.prefix}/venv"), venv.exists()))
        shutil.rmtree(venv, ignore_errors=True)
        return steps
