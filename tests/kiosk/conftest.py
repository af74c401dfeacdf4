"""A kiosk's corner of the test school on disk, for the screen's tests (tests/kiosk/ui) and
the session controller's, which drive the same kiosk without a screen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bookcorner import config, i18n
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import CirculationDesk, DataPaths
from bookcorner.kiosk.pin import PinGuard
from bookcorner.kiosk.session import SessionController
from tests.kiosk.corner import PIN_HASH, Ticker, school_reference
from tests.school import MONDAY


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """The corner's data directory: the test school's reference data, no journal yet."""
    root = tmp_path / "data"
    ReferenceStore(DataPaths(root).reference).save(school_reference(), "test-1", "Test school")
    return root


@pytest.fixture
def clock() -> FixedClock:
    """The school's clock: a Monday in term, during class 3-2's slot (12:00-12:50)."""
    return FixedClock(MONDAY)


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def controller(data_dir, clock, ticker) -> Iterator[SessionController]:
    """The kiosk's session controller without a screen, started on a real desk and journal,
    with the default configuration's PIN rules (the librarian's PIN: tests.kiosk.corner.PIN).
    The screen's language is English, and both languages are worded."""
    librarian = config.parse("").librarian
    i18n.use_language("en")
    controller = SessionController(
        open_desk=lambda: CirculationDesk(data_dir, "demo-corner", clock),
        pins=PinGuard(PIN_HASH, data_dir / "state" / "librarian-pin.json", librarian.max_tries,
                      timedelta(seconds=librarian.lockout_s)),
        exports=data_dir / "exports",
        monotonic=ticker,
    )
    try:
        yield controller
    finally:
        controller.close()
        i18n.use_language("en")
