"""Kiosk configuration: one TOML file, validated at start with messages that name the field.

``config/kiosk.example.toml`` documents every option. Missing sections and options take
the built-in defaults (the demo school's), so a kiosk with no file at all still starts.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from bookcorner.config.screen import LibrarianConfig, ScreenConfig
from bookcorner.devices.config import DevicesConfig
from bookcorner.i18n import _

ENV_CONFIG = "BOOKCORNER_CONFIG"
EXAMPLE = Path(__file__).parent / "kiosk.example.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which field and why."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class KioskSection(_Section):
    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = "demo-corner"
    name: str = "Demo corner"
    language: Literal["en", "zh_CN"] = "en"
    timezone: str = "Asia/Shanghai"
    data_dir: str = "~/.local/share/bookcorner"


class JournalSection(_Section):
    segment_events: Annotated[int, msgspec.Meta(ge=16, le=100_000)] = 256


Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]


class SyncSection(_Section):
    """The sync daemon (``bookcorner syncd``): where the central server is and how to reach it."""

    #: e.g. "https://library.example-school.cn:8443"; empty: no server (a corner synced by USB stick)
    server_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://\S+)?$")] = ""
    #: the file holding this kiosk's credential (``bookcorner central add-kiosk`` prints it);
    #: empty: ``<data_dir>/sync/credential``
    credential_file: str = ""
    #: PEM file of the certificate authority that signed the server's certificate; empty: the system's
    ca_bundle: str = ""
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=5_000)] = 500
    connect_timeout_s: Seconds = 5.0
    read_timeout_s: Seconds = 30.0
    #: a round every this often when nobody asks for one
    interval_s: Seconds = 300.0
    #: new events are pushed this long after they are recorded (while the server answers)
    push_after_s: Seconds = 2.0
    #: after a failure: wait a random time up to retry_initial_s, doubling per failure up to retry_max_s
    retry_initial_s: Seconds = 2.0
    retry_max_s: Seconds = 600.0
    #: the longest a server's Retry-After is honoured
    retry_after_max_s: Seconds = 3600.0
    #: after a 429 (too busy; the server says when it will have room): its Retry-After, at
    #: most this, plus a random share of it (far below retry_max_s: the server said when)
    busy_retry_max_s: Seconds = 120.0


RoleName = Literal["student", "student_librarian", "teacher", "librarian"]
ItemTypeName = Literal["circulating", "reference", "periodical"]
WeekdayName = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Count = Annotated[int, msgspec.Meta(ge=0, le=1000)]


class RoleRules(_Section):
    max_loans: Count | None = None
    block_when_overdue: bool | None = None
    holiday_loans: bool | None = None


class ItemRules(_Section):
    loanable: bool | None = None
    loan_days: Count | None = None
    renewals: Count | None = None
    max_loans: Count | None = None


class PolicyCell(ItemRules, kw_only=True):
    role: RoleName
    item_type: ItemTypeName


class PolicySection(_Section):
    """Changes to the built-in policy (../shared/DOMAIN.md defaults); only what is named changes."""

    roles: dict[RoleName, RoleRules] = msgspec.field(default_factory=dict)
    items: dict[ItemTypeName, ItemRules] = msgspec.field(default_factory=dict)
    overrides: list[PolicyCell] = msgspec.field(default_factory=list)


class DateRange(_Section):
    start: date
    end: date


class TermSection(_Section):
    name: str
    start: date
    end: date


class HolidayLoanSection(_Section):
    name: str
    checkout_from: date
    checkout_until: date
    due: date


class CalendarSection(_Section):
    closed_weekdays: list[WeekdayName] = msgspec.field(default_factory=lambda: ["saturday", "sunday"])
    closed_dates: list[date] = msgspec.field(default_factory=list)
    closed_ranges: list[DateRange] = msgspec.field(default_factory=list)
    #: make-up working days (调休) on a weekday that is otherwise closed
    open_dates: list[date] = msgspec.field(default_factory=list)
    terms: list[TermSection] = msgspec.field(default_factory=list)
    holiday_loans: list[HolidayLoanSection] = msgspec.field(default_factory=list)


class KioskConfig(_Section):
    kiosk: KioskSection = msgspec.field(default_factory=KioskSection)
    journal: JournalSection = msgspec.field(default_factory=JournalSection)
    sync: SyncSection = msgspec.field(default_factory=SyncSection)
    #: when present, these replace the policy and calendar the reference snapshot carries
    #: (a corner with no central server keeps its rules here)
    policy: PolicySection | None = None
    calendar: CalendarSection | None = None
    devices: DevicesConfig = msgspec.field(default_factory=DevicesConfig)
    screen: ScreenConfig = msgspec.field(default_factory=ScreenConfig)
    librarian: LibrarianConfig = msgspec.field(default_factory=LibrarianConfig)

    @property
    def data_dir(self) -> Path:
        return Path(os.path.expanduser(self.kiosk.data_dir))

    @property
    def credential_file(self) -> Path:
        if self.sync.credential_file:
            return Path(os.path.expanduser(self.sync.credential_file))
        return self.data_dir / "sync" / "credential"


_LOCATION = re.compile(r" - at `(key` in `)?\$\.?([^`]*)`$")


def _explain(error: msgspec.ValidationError, source: str) -> ConfigError:
    text, where = str(error), ""
    found = _LOCATION.search(text)
    if found:
        text, where = text[: found.start()], found.group(2)
        if found.group(1):
            text = _("{problem} (a section name)").format(problem=text)
    if text.startswith("Object contains unknown field"):
        field = text.split("`")[1]
        where = f"{where}.{field}" if where else field
        text = _("unknown option (is it misspelt or in the wrong section?)")
    location = f"{source}: {where}" if where else source
    return ConfigError(f"{location}: {text}")


def parse(text: str, source: str = "<config>") -> KioskConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(_("{source}: not valid TOML: {error}").format(source=source, error=error)) from None
    _accept_old_keys(raw, source)
    try:
        config = msgspec.convert(raw, KioskConfig, strict=True)
    except msgspec.ValidationError as error:
        raise _explain(error, source) from None
    _check_timezone(config, source)
    _check_calendar(config, source)
    return config


#: option names of earlier releases, still read (the example and the docs name the new ones)
OLD_KEYS = {"lendable": "loanable", "lend_from": "checkout_from", "lend_until": "checkout_until"}


def _tables(raw: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The tables an old option name may sit in, with where they are (for a message)."""
    policy, calendar = raw.get("policy"), raw.get("calendar")
    found: list[tuple[str, Any]] = []
    if isinstance(policy, dict):
        items = policy.get("items")
        if isinstance(items, dict):
            found += [(f"policy.items.{name}", table) for name, table in items.items()]
        overrides = policy.get("overrides")
        if isinstance(overrides, list):
            found += [(f"policy.overrides[{n}]", table) for n, table in enumerate(overrides)]
    if isinstance(calendar, dict) and isinstance(calendar.get("holiday_loans"), list):
        found += [(f"calendar.holiday_loans[{n}]", table) for n, table in enumerate(calendar["holiday_loans"])]
    return [(where, table) for where, table in found if isinstance(table, dict)]


def _accept_old_keys(raw: dict[str, Any], source: str) -> None:
    """A file written for an earlier release names options by their old names
    (``lendable``, ``lend_from``, ``lend_until``): read them under the new ones."""
    for where, table in _tables(raw):
        for old, new in OLD_KEYS.items():
            if old not in table:
                continue
            if new in table:
                raise ConfigError(_("{source}: {where}: both {old} and {new} are given; keep only {new} "
                                    "(the new name of {old})").format(source=source, where=where, old=old, new=new))
            table[new] = table.pop(old)


def _check_calendar(config: KioskConfig, source: str) -> None:
    calendar = config.calendar
    if calendar is None:
        return
    spans = [("calendar.closed_ranges", r.start, r.end) for r in calendar.closed_ranges]
    spans += [(f"calendar.terms ({t.name})", t.start, t.end) for t in calendar.terms]
    spans += [(f"calendar.holiday_loans ({h.name})", h.checkout_from, h.checkout_until) for h in calendar.holiday_loans]
    for where, start, end in spans:
        if end < start:
            raise ConfigError(_("{source}: {where}: ends ({end}) before it starts ({start})").format(
                source=source, where=where, start=start, end=end))
    for holiday in calendar.holiday_loans:
        if holiday.due < holiday.checkout_until:
            raise ConfigError(_("{source}: calendar.holiday_loans ({name}): due ({due}) is before lending ends").format(
                source=source, name=holiday.name, due=holiday.due))
    if len(set(calendar.closed_weekdays)) == 7:
        raise ConfigError(_("{source}: calendar.closed_weekdays: every day is closed").format(source=source))


def policy_of(config: KioskConfig):
    """The configured policy, or None to use the reference snapshot's. Only what the
    file names changes; the rest keeps the built-in defaults."""
    from dataclasses import replace

    from bookcorner.circulation.model import ItemType, Role
    from bookcorner.circulation.policy import DEFAULT_ITEMS, DEFAULT_OVERRIDES, DEFAULT_ROLES, build_policy

    section = config.policy
    if section is None:
        return None

    def given(rules: msgspec.Struct) -> dict:
        return {k: v for k, v in msgspec.structs.asdict(rules).items() if v is not None and k not in ("role", "item_type")}

    configured_roles = {Role(name): rules for name, rules in section.roles.items()}
    configured_items = {ItemType(name): rules for name, rules in section.items.items()}
    roles = {role: replace(rule, **given(configured_roles[role])) if role in configured_roles else rule
             for role, rule in DEFAULT_ROLES.items()}
    items = {kind: replace(rule, **given(configured_items[kind])) if kind in configured_items else rule
             for kind, rule in DEFAULT_ITEMS.items()}
    overrides = {key: dict(fields) for key, fields in DEFAULT_OVERRIDES.items()}
    for cell in section.overrides:
        key = (Role(cell.role), ItemType(cell.item_type))
        overrides[key] = {**overrides.get(key, {}), **given(cell)}
    return build_policy(roles, items, overrides)


def calendar_of(config: KioskConfig):
    """The configured calendar, or None to use the reference snapshot's."""
    from bookcorner.circulation.calendar import HolidayLoan, SchoolCalendar, Term

    section = config.calendar
    if section is None:
        return None
    closed = set(section.closed_dates)
    for span in section.closed_ranges:
        day = span.start
        while day <= span.end:
            closed.add(day)
            day += timedelta(days=1)
    return SchoolCalendar(
        closed_weekdays=frozenset(WEEKDAYS.index(d) for d in section.closed_weekdays),
        closed_dates=frozenset(closed),
        terms=tuple(Term(t.name, t.start, t.end) for t in section.terms),
        holiday_loans=tuple(HolidayLoan(h.name, h.checkout_from, h.checkout_until, h.due) for h in section.holiday_loans),
        open_dates=frozenset(section.open_dates),
    )


def _check_timezone(config: KioskConfig, source: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(config.kiosk.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            _("{source}: kiosk.timezone: unknown time zone {zone!r} (for example Asia/Shanghai)").format(
                source=source, zone=config.kiosk.timezone
            )
        ) from None


def load(path: str | os.PathLike[str] | None = None) -> KioskConfig:
    """The configuration at ``path``, else $BOOKCORNER_CONFIG, else the built-in defaults."""
    chosen = path or os.environ.get(ENV_CONFIG)
    if not chosen:
        return parse("", "<defaults>")
    file = Path(chosen)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(_("{path}: configuration file not found").format(path=file)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(_("{path}: cannot read configuration: {error}").format(path=file, error=error)) from None
    return parse(text, str(file))
