"""Kiosk configuration: one TOML file, validated at start with messages that name the field.

``config/kiosk.example.toml`` documents every option. Missing sections and options take
the built-in defaults (the demo school's), so a kiosk with no file at all still starts.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from devices.config import DevicesConfig
from i18n import _

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


class KioskConfig(_Section):
    kiosk: KioskSection = msgspec.field(default_factory=KioskSection)
    journal: JournalSection = msgspec.field(default_factory=JournalSection)
    devices: DevicesConfig = msgspec.field(default_factory=DevicesConfig)

    @property
    def data_dir(self) -> Path:
        return Path(os.path.expanduser(self.kiosk.data_dir))


def _explain(error: msgspec.ValidationError, source: str) -> ConfigError:
    text = str(error)
    where = ""
    if " - at `$." in text:
        text, where = text.rsplit(" - at `$.", 1)
        where = where.rstrip("`")
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
    try:
        config = msgspec.convert(raw, KioskConfig, strict=True)
    except msgspec.ValidationError as error:
        raise _explain(error, source) from None
    _check_timezone(config, source)
    return config


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
