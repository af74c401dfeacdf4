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

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.config.zones import known_zone, machine_zone_name, zone_named

#: the ``settings`` row that holds the zone's name (a JSON string)
SETTING = "timezone"


def stored_name(conn: Connection) -> str | None:
    """The zone the school set (None: never set)."""
    data = conn.execute(select(db.settings.c.data).where(db.settings.c.name == SETTING)).scalar()
    if data is None:
        return None
    try:
        name = msgspec.json.decode(data, type=str)
    except msgspec.DecodeError:
        return None
    return known_zone(name)


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
