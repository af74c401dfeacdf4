"""The kiosk's main screens as scenes: a data directory, a fixed clock, a few steps.
Shared by the SVG snapshot tests and the screenshot tool."""

from __future__ import annotations

from pathlib import Path

from bookcorner.circulation.codes import Source
from bookcorner.demo.school import build_demo_school
from bookcorner.journal.clock import FixedClock
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.app import KioskApp
from bookcorner.kiosk.demo import panel_hints
from bookcorner.kiosk.desk import DataPaths
from bookcorner.sync.status import Phase, SyncStatus, write_status
from tests.kiosk.corner import LIBRARIAN_CARD, PIN, reading_reference, school_reference
from tests.kiosk.ui.conftest import desk_for, make_app, scan, settings, started, tap
from tests.school import CARDS, DICTIONARY, HONGLOUMENG, MEIMEI, MONDAY, SHUIHU, XIAOHONG, XIAOMING, XIYOUJI


def prepare(root: Path, reading: bool = False) -> FixedClock:
    """The test school with some history: loans, one overdue, a sync an hour ago (and,
    with ``reading``, its reading lists and co-reading counts)."""
    ReferenceStore(DataPaths(root).reference).save(reading_reference() if reading else school_reference(), "test-1",
                                                   "Test school")
    clock = FixedClock(MONDAY)
    clock.advance(days=-7)
    with desk_for(root, clock) as desk:
        desk.checkout(desk.identify(CARDS[XIAOHONG], Source.CARD_READER), SHUIHU.barcode)
    clock.advance(days=7)
    with desk_for(root, clock) as desk:
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), HONGLOUMENG.barcode)
    write_status(root, SyncStatus(phase=Phase.IDLE, acked_seq=1, last_success="2026-11-30T11:05:00+08:00",
                                  last_attempt="2026-11-30T11:05:00+08:00", reference_version="test-1"))
    # the next Monday, in class 3-2's slot: 水浒传 is overdue, 红楼梦 due today
    return FixedClock(MONDAY.replace(day=30, hour=12, minute=10))


def app_for(name: str, root: Path, language: str, codes_panel: bool = False) -> KioskApp:
    """``codes_panel``: with the codes the demo lists along the bottom of its screen."""
    clock = prepare(root, reading=name in READING_SCENES)
    hints = panel_hints(build_demo_school(clock.now().date()).hints) if codes_panel else ()
    return make_app(root, clock=clock, config_=settings(kiosk={"language": language, "name": "三年级二班 3-2"}),
                    demo_hints=hints)


async def idle(pilot) -> None:
    await started(pilot)


async def borrowed(pilot) -> None:
    await started(pilot)
    await tap(pilot, CARDS[XIAOMING])
    await scan(pilot, XIYOUJI.barcode)


async def refused(pilot) -> None:
    await started(pilot)
    await tap(pilot, CARDS[XIAOMING])
    await scan(pilot, DICTIONARY.barcode)


async def overdue(pilot) -> None:
    await started(pilot)
    await tap(pilot, CARDS[XIAOHONG])
    await scan(pilot, XIYOUJI.barcode)


async def returned(pilot) -> None:
    await started(pilot)
    await scan(pilot, HONGLOUMENG.barcode)


async def helper(pilot) -> None:
    await started(pilot)
    await tap(pilot, CARDS[MEIMEI])
    await scan(pilot, HONGLOUMENG.barcode)
    await scan(pilot, XIYOUJI.barcode)


async def pin(pilot) -> None:
    await started(pilot)
    await tap(pilot, LIBRARIAN_CARD)


async def librarian(pilot) -> None:
    from tests.kiosk.ui.conftest import settle

    await started(pilot)
    await tap(pilot, LIBRARIAN_CARD)
    pilot.app.enter_pin(PIN)
    await settle(pilot)


async def librarian_takes_back(pilot) -> None:
    await librarian(pilot)
    await scan(pilot, HONGLOUMENG.barcode)


#: scenes on the test school with its reading lists
READING_SCENES = frozenset({"suggested", "picks"})

SCENES = {
    "suggested": borrowed,
    "picks": idle,
    "idle": idle,
    "borrowed": borrowed,
    "refused": refused,
    "overdue": overdue,
    "returned": returned,
    "helper": helper,
    "pin": pin,
    "librarian": librarian,
    "librarian_takes_back": librarian_takes_back,
}
