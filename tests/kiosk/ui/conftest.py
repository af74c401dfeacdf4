"""The kiosk's screen driven as people use it: App.run_test + Pilot, a real data
directory (the test school, a real journal on disk), device events delivered the way the
device layer delivers them (the Devices hub's sink, or keystrokes through the wedge)."""

from __future__ import annotations

import asyncio
import inspect
import io
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from bookcorner import config
from bookcorner import i18n
from bookcorner.journal.clock import FixedClock
from bookcorner.kiosk.app import KioskApp, build_app
from bookcorner.kiosk.desk import CirculationDesk
from tests.kiosk.corner import PIN_HASH, Ticker
from tests.school import MONDAY


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Scenarios are coroutines (Pilot is async): run each in a fresh event loop."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**arguments))
        return True
    return None


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n.use_language("en")
    yield
    i18n.use_language("en")


def settings(**sections) -> config.KioskConfig:
    """The default configuration with some options changed: settings(screen={"banner_s": 1})."""
    base = config.parse("")
    base = msgspec.structs.replace(base, librarian=msgspec.structs.replace(
        base.librarian, pin_hash=PIN_HASH, shutdown_command=[]))
    changes = {name: msgspec.structs.replace(getattr(base, name), **values) for name, values in sections.items()}
    return msgspec.structs.replace(base, **changes)


def make_app(data_dir: Path, *, clock: FixedClock | None = None, ticker: Ticker | None = None,
             config_: config.KioskConfig | None = None, **kwargs) -> KioskApp:
    return build_app(config_ or settings(), data_dir=data_dir, clock=clock or FixedClock(MONDAY),
                     monotonic=ticker or Ticker(), **kwargs)


def desk_for(data_dir: Path, clock: FixedClock | None = None) -> CirculationDesk:
    """The desk itself, for setting the scene before the kiosk starts (it takes the journal's lock)."""
    return CirculationDesk(data_dir, "demo-corner", clock or FixedClock(MONDAY))


async def until(pilot, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the kiosk")
        await pilot.pause(0.01)


async def settle(pilot) -> None:
    """Every device event and command so far handled, and their answers drawn."""
    app: KioskApp = pilot.app
    await pilot.pause()
    await until(pilot, lambda: app.desk_ready and not app.desk_busy)
    await pilot.pause()


async def started(pilot) -> None:
    """The kiosk is up: the desk open and the sync badge showing the status file."""
    app: KioskApp = pilot.app
    await until(pilot, lambda: app.desk_ready and app.sync_state is not None
                and app.sync_state[1] == app.controller.desk.journal.last_seq)
    await settle(pilot)


async def tap(pilot, card: str) -> None:
    pilot.app.devices.simulate_tap(card)
    await settle(pilot)


async def scan(pilot, code: str) -> None:
    pilot.app.devices.simulate_scan(code)
    await settle(pilot)


async def type_fast(pilot, text: str) -> None:
    """Keystrokes as a keyboard-style scanner or card reader sends them into the terminal:
    a few milliseconds apart, then Enter (the keyboard wedge makes them a scan or a tap)."""
    from bench.feedback import type_keys

    await asyncio.to_thread(type_keys, pilot.app, text)  # as the terminal driver's input thread does
    await pilot.pause(0.05)
    await settle(pilot)


def screen_text(app: KioskApp) -> str:
    """What a person sees on the screen, as plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def banner(app: KioskApp):
    from bookcorner.kiosk.widgets.banner import Banner

    return app.screen.query_one(Banner).feedback


async def wait_a_moment(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def scan_on_a_full_disk(pilot, app: KioskApp, code: str) -> None:
    """A scan while the journal's disk takes not one more byte (the hot segment's file may
    not grow: RLIMIT_FSIZE, with SIGXFSZ ignored so the write fails instead of killing us)."""
    hot = max(app.controller.desk.paths.journal.glob("seg-*.log"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hot.stat().st_size, hard))
        await scan(pilot, code)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
