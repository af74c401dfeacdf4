"""IANA time zones by name, and this computer's own (``$TZ``, ``/etc/timezone`` or the target of the
``/etc/localtime`` link): the central server's default school zone (central/zone.py) and the zone
``bookcorner install --role both`` gives the kiosk beside it, so that the two count the same days.
Standard library only: the installer runs it before the central server's libraries are installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bookcorner.i18n import _

FALLBACK = "Asia/Shanghai"


class UnknownZone(ValueError):
    """Not the name of an IANA time zone this computer knows."""

    def __init__(self, name: str) -> None:
        super().__init__(_("unknown time zone {zone!r}: give an IANA zone name, for example Asia/Shanghai or "
                           "Europe/London").format(zone=name))
        self.name = name


def zone_named(name: str) -> ZoneInfo:
    """The zone called ``name`` (UnknownZone when there is none: a typo, an offset like +08:00)."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or text != name or len(text) > 64 or text.startswith(("/", ".")) or ".." in text:
        raise UnknownZone(str(name))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZone(text) from None


def known_zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        zone_named(name)
    except UnknownZone:
        return None
    return name


def machine_zone_name(env: dict[str, str] | None = None, etc: Path = Path("/etc")) -> str:
    """This computer's own IANA zone name: $TZ, /etc/timezone, the /etc/localtime link's
    target (…/zoneinfo/Area/City); Asia/Shanghai when none names a known zone."""
    environ = os.environ if env is None else env
    tz = environ.get("TZ", "").strip().removeprefix(":")
    if tz and "/zoneinfo/" in tz:  # TZ=:/usr/share/zoneinfo/Europe/London
        tz = tz.split("/zoneinfo/", 1)[1]
    candidates = [tz]
    try:
        candidates.append((etc / "timezone").read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        pass
    try:
        target = os.readlink(etc / "localtime")
        if "/zoneinfo/" in target:
            candidates.append(target.split("/zoneinfo/", 1)[1])
    except OSError:
        pass
    return next((name for name in candidates if known_zone(name)), FALLBACK)
