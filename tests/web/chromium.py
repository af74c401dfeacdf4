"""The browser the web tests drive: Debian's /usr/bin/chromium (or $BOOKCORNER_CHROMIUM),
headless, and where its screenshots go (artifacts/, not committed). The browser itself is
the ``browser`` fixture in tests/web/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("BOOKCORNER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def sign_in_as(page, url: str, name: str, token: str, language: str | None = None) -> None:
    """The dashboard's sign-in form filled in and sent (in ``language``, else the browser's);
    returns once the end-of-day page is open."""
    page.goto(f"{url}/dashboard/sign-in" + (f"?lang={language}" if language else ""))
    page.fill("input[name=name]", name)
    page.fill("input[name=credential]", token)
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url("**/dashboard/end-of-day")
