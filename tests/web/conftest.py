"""A real headless Chromium for the web tests (skipped without Playwright or Chromium),
and a central server on SQLite for the modules that need no data of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.central.harness import CentralServer
from tests.web.chromium import CHROMIUM, FLAGS


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[CentralServer]:
    folder = tmp_path_factory.mktemp("dashboard-browser")
    central = CentralServer(f"sqlite:///{folder / 'central.db'}", folder / "server.log").start()
    try:
        yield central
    finally:
        central.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                   "(pip install --no-deps -r deploy/requirements-test.txt)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium "
                    "when run as root)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
