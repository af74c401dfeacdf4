"""The systemd units and udev rules shipped in ``systemd/``, and how they are rendered
for an install prefix other than the default ``/opt/bookcorner``.

The files in ``systemd/`` are written for the default layout, so they can be read and
copied as they are; :func:`render` substitutes the paths for another layout (a test's
throwaway root, a different prefix).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bookcorner

#: where the files live in a source checkout (or a release unpacked from one): beside the bookcorner
#: package, whose parts (ops among them) may be links into the checkout or copies
SOURCE_DIR = Path(bookcorner.__file__).resolve().parent.parent / "systemd"

UNITS = ("bookcorner-kiosk.service", "bookcorner-kiosk-wayland.service", "bookcorner-syncd.service",
         "bookcorner-central.service")
#: the kiosk's units started at boot (the Chinese screen's unit replaces the first by hand)
KIOSK_UNITS = ("bookcorner-kiosk.service", "bookcorner-syncd.service")
CENTRAL_UNITS = ("bookcorner-central.service",)
#: what each kind of machine gets: (the units installed, those of them started at boot).
#: A corner is a "kiosk", the library computer "central", a one-machine school "both".
ROLES = {"kiosk": (UNITS[:3], KIOSK_UNITS), "central": (CENTRAL_UNITS, CENTRAL_UNITS),
         "both": (UNITS, KIOSK_UNITS + CENTRAL_UNITS)}
UDEV_RULES = "70-bookcorner.rules"
FOOT_INI = "bookcorner-foot.ini"
POLKIT_RULES = "bookcorner-polkit.rules"


@dataclass(frozen=True)
class Layout:
    """Where an install puts things (the defaults are what the shipped files say)."""

    prefix: str = "/opt/bookcorner"
    data_dir: str = "/var/lib/bookcorner"
    config_dir: str = "/etc/bookcorner"
    cage: str = "/usr/bin/cage"
    user: str = "bookcorner"
    #: where an upgrade keeps the data as it was (root's own, not on the data partition)
    backups: str = "/var/backups/bookcorner"

    @property
    def bookcorner(self) -> str:
        return f"{self.prefix}/venv/bin/bookcorner"


DEFAULT = Layout()


def render(text: str, layout: Layout = DEFAULT) -> str:
    """``text`` (a shipped unit or rule) with the default paths replaced by ``layout``'s."""
    pairs = [(DEFAULT.bookcorner, layout.bookcorner), (DEFAULT.cage, layout.cage),
             (DEFAULT.config_dir + "/", layout.config_dir + "/"), (DEFAULT.prefix + "/", layout.prefix + "/")]
    if layout.data_dir != DEFAULT.data_dir:
        pairs.append((DEFAULT.data_dir, layout.data_dir))
    # placeholders first, so that a replacement is never replaced again
    for number, (old, _new) in enumerate(pairs):
        text = text.replace(old, f"\0{number}\0")
    for number, (_old, new) in enumerate(pairs):
        text = text.replace(f"\0{number}\0", new)
    return text


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) lists in order (keys may repeat, as
    ``After=`` and ``Environment=`` do); continuation lines are joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    """Every value of ``key`` in ``section``, each split on white space (as list settings are)."""
    found: list[str] = []
    for name, value in unit.get(section, []):
        if name == key and value:
            found.extend(value.split())
        elif name == key:  # an empty assignment resets the list
            found.clear()
    return found


def value(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str | None:
    """The last value of ``key`` in ``section`` (a later assignment wins)."""
    last = None
    for name, setting in unit.get(section, []):
        if name == key:
            last = setting
    return last
