"""Which screen a kiosk starts on tty1: cage + foot, which draws Chinese (the children's
answers in both languages), or the bare Linux console, which cannot (English alone).

``bookcorner install`` picks cage + foot when the machine has a display cage can drive (a DRM
device, ``/dev/dri/card*``: a Pi's HDMI, a virtual GPU) and its Debian packages are there or
can be installed; else the console, saying why and how to switch (``--screen``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bookcorner.i18n import _

CONSOLE, WAYLAND = "console", "wayland"
#: the unit each screen is
UNITS = {CONSOLE: "bookcorner-kiosk.service", WAYLAND: "bookcorner-kiosk-wayland.service"}
#: what cage + foot need: the compositor, the terminal, a font with Chinese glyphs, and the
#: logind session the unit opens (PAMName=login) for cage to take the seat
PACKAGES = ("cage", "foot", "fonts-noto-cjk", "libpam-systemd")


def displays(root: Path) -> list[Path]:
    """The DRM devices (``/dev/dri/card*``) of the system at ``root``."""
    return sorted((root / "dev" / "dri").glob("card*"))


def installed_packages(root: Path) -> set[str]:
    """The Debian packages installed in the system at ``root`` (dpkg's own status file)."""
    try:
        text = (root / "var" / "lib" / "dpkg" / "status").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return set()
    found = set()
    for paragraph in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in paragraph.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found.add(fields["Package"])
    return found


def missing_packages(root: Path) -> list[str]:
    have = installed_packages(root)
    return [package for package in PACKAGES if package not in have]


def apt_install(packages: list[str]) -> str | None:
    """Install ``packages`` on this system with apt-get (the package lists refreshed if the
    first try fails); None when done, else apt-get's last words."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    error = ""
    for refresh in (False, True):
        try:
            if refresh:
                subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, check=False)
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        except FileNotFoundError:
            return _("apt-get is not on this system")
        if done.returncode == 0:
            return None
        error = apt_error(done.stderr or done.stdout) or f"exit {done.returncode}"
    return error


def apt_error(output: str) -> str:
    """The line of apt-get's output that says what went wrong: its first error (the one that
    names the cause, e.g. a name that does not resolve), not its closing advice."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or [""])[0 if errors else -1]


def choose(root: Path, in_place: bool) -> tuple[str, str]:
    """The screen for a kiosk installed at ``root`` when nobody said (``--screen auto``), and
    why, in words; installs cage + foot's packages where it runs on the system itself."""
    if not displays(root):
        return CONSOLE, _("no display cage can drive here (no /dev/dri/card*)")
    missing = missing_packages(root)
    if missing and not in_place:
        return CONSOLE, _("{packages} not installed in {root}").format(packages=", ".join(missing), root=root)
    if missing:
        error = apt_install(missing)
        if error is not None:
            return CONSOLE, _("{packages} could not be installed ({error})").format(packages=", ".join(missing),
                                                                                  error=error)
    return WAYLAND, ""
