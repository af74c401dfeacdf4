"""The school's time zone: one IANA zone (Asia/Shanghai, Europe/London...), never a fixed
UTC offset, so that day boundaries, report periods, the end of day, export times and due
dates stay right across a daylight-saving change.

The zone is a setting of the central database (``settings`` row ``timezone``), so every
server process, every command and every kiosk (it comes with the reference data) uses the
same one. ``bookcorner central --timezone ZONE`` sets it; until it is set, the library
computer's own zone name is used (``$TZ``, ``/etc/timezone`` or the target of the
``/etc/localtime`` link), else Asia/Shanghai.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.i18n import _

#: the ``settings`` row that holds the zone's name (a JSON string)
SETTING = "timezone"
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


def _known(name: str | None) -> str | None:
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
    return next((name for name in candidates if _known(name)), FALLBACK)


def stored_name(conn: Connection) -> str | None:
    """The zone the school set (None: never set)."""
    data = conn.execute(select(db.settings.c.data).where(db.settings.c.name == SETTING)).scalar()
    if data is None:
        return None
    try:
        name = msgspec.json.decode(data, type=str)
    except msgspec.DecodeError:
        return None
    return _known(name)


def school_zone_name(conn: Connection) -> str:
    return stored_name(conn) or machine_zone_name()


def school_zone(store: db.Store) -> ZoneInfo:
    """The school's zone, read from the database (the computer's own when it cannot be read)."""
    try:
        with store.reading() as conn:
            return ZoneInfo(school_zone_name(conn))
    except Exception:  # noqa: BLE001  (a database not migrated yet: the computer's own zone)
        return ZoneInfo(machine_zone_name())


def set_school_zone(store: db.Store, name: str, who: str) -> bool:
    """Make ``name`` the school's zone (UnknownZone when it is not one), audited; the kiosks
    get it with their next reference pull. False when it was that already."""
    from bookcorner.central.ingest import next_revision, upsert

    zone_named(name)
    text = msgspec.json.encode(name).decode()
    with store.writing() as conn:
        before = stored_name(conn)
        if before == name:
            return False
        upsert(conn, db.settings, ["name"], [{"name": SETTING, "data": text, "rev": next_revision(conn)}])
        conn.execute(db.audit_log.insert().values(
            at=db.now(), who=who, action="timezone.edit", target=SETTING,
            detail=msgspec.json.encode({"before": before, "after": name}).decode()))
    return True


def local_day(moment: datetime, zone: ZoneInfo):
    """The school's calendar day at ``moment`` (an aware time)."""
    return moment.astimezone(zone).date()
