"""The kiosk runs unattended all day: no way out for a child, nothing said "done" that is
not on disk, errors logged (never on the screen's stderr) with a friendly screen and an
exit status that makes systemd restart it, a screen that keeps answering while the disk
is slow, and input from devices taken the way the device layer delivers it."""

from __future__ import annotations

import logging
import re
import threading
import time

from bookcorner.circulation.codes import Source
from bookcorner.devices import DeviceStatus, Text
from bookcorner.i18n import N_
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.crash import EXIT_CRASH, log_path, setup_logging
from bookcorner.kiosk.desk import DataPaths
from bookcorner.kiosk.run import run
from bookcorner.kiosk.screens.dialogs import ProblemScreen
from bookcorner.kiosk.screens.idle import IdleScreen
from bookcorner.kiosk.screens.visit import VisitScreen
from bookcorner.kiosk.wording import Tone
from tests.kiosk.corner import school_reference
from tests.kiosk.ui.conftest import (banner, desk_for, make_app, scan, scan_on_a_full_disk, screen_text, settings,
                                     settle, started, tap, type_fast, until)
from tests.school import ANDERSEN, CARDS, HONGLOUMENG, XIAOHONG, XIAOMING, XIYOUJI


async def test_a_full_disk_is_said_clearly_and_the_child_is_not_told_done(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        desk = app.controller.desk
        await scan_on_a_full_disk(pilot, app, XIYOUJI.barcode)
        shown = banner(app)
        assert shown.tone is Tone.ERROR and shown.code == "not_saved" and shown.recorded == 0
        text = screen_text(app)
        assert "Not saved: please tell the librarian" in text and "memory is full" in text
        assert "Borrowed" not in text and "西游记" not in text
        assert desk.state.loan_of(XIYOUJI.item_id) is None and list(app.sounds.played) == ["refusal"]
        await scan(pilot, XIYOUJI.barcode)  # room again: the same scan works
        assert banner(app).code == "borrowed"


def test_an_unhandled_error_shows_a_friendly_screen_is_logged_and_exits_non_zero(data_dir, capfd):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging(data_dir)
    try:
        def boom(command):
            raise RuntimeError("a bug in the kiosk")

        app = make_app(data_dir, on_ready=lambda: app.devices.simulate_scan(XIYOUJI.barcode))
        app.controller._dispatch = boom
        started_at = time.monotonic()
        status = run(app, headless=True, crash_screen_s=0.3)
        assert status == EXIT_CRASH and time.monotonic() - started_at < 10
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    logged = log_path(data_dir).read_text()
    assert "unhandled error, the kiosk stops" in logged and "RuntimeError: a bug in the kiosk" in logged
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "a bug in the kiosk" not in err + out
    with desk_for(data_dir):  # the journal's lock was released on the way out
        pass


async def test_a_child_has_no_key_to_quit_and_no_command_palette(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        for key in ("ctrl+q", "ctrl+c", "ctrl+p", "escape", "f1"):
            await pilot.press(key)
        await pilot.pause(0.1)
        assert app.is_running and isinstance(app.screen, IdleScreen) and app.return_code is None
        await tap(pilot, CARDS[XIAOMING])
        for key in ("ctrl+q", "ctrl+c", "ctrl+p"):
            await pilot.press(key)
        await pilot.pause(0.1)
        assert app.is_running and isinstance(app.screen, VisitScreen)


async def test_keystrokes_as_fast_as_a_reader_are_a_card_and_a_persons_typing_is_not(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        for digit in "12345":  # a person at a keyboard
            await pilot.press(digit)
            await pilot.pause(0.07)
        await pilot.press("enter")
        await pilot.pause(0.1)
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen) and banner(app) is None
        await type_fast(pilot, CARDS[XIAOMING])  # a keyboard-style card reader: a burst
        assert isinstance(app.screen, VisitScreen) and "小明" in screen_text(app)
        await type_fast(pilot, XIYOUJI.barcode)  # a scanner that types
        assert banner(app).code == "borrowed"


async def test_an_unplugged_scanner_shows_in_the_top_bar_until_it_is_back(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        source = "scanner:/dev/input/by-id/usb-Scanner-event-kbd"
        app.device_sink(DeviceStatus(source, "disconnected", Text.of("scanner unplugged")))
        await pilot.pause()
        assert "scanner unplugged" in screen_text(app)
        app.device_sink(DeviceStatus(source, "connected", Text.of("scanner connected")))
        await pilot.pause()
        assert "scanner" not in screen_text(app)


async def _top_bar_with_the_reader_unplugged(data_dir, bilingual: bool) -> str:
    app = make_app(data_dir, config_=settings(screen={"bilingual": bilingual}))
    async with app.run_test(size=(160, 30)) as pilot:
        await started(pilot)
        app.device_sink(DeviceStatus("reader:/dev/bookcorner-reader", "disconnected", Text.of(
            N_("card reader {port}: not connected, waiting for it"), port="/dev/bookcorner-reader")))
        await pilot.pause()
        return screen_text(app)


async def test_an_unplugged_device_is_said_in_both_languages_on_a_bilingual_screen(data_dir):
    """As everything else on a bilingual screen (found in the lab's scenario 2: the top bar
    said a reader was gone in the screen's language alone)."""
    top = (await _top_bar_with_the_reader_unplugged(data_dir, bilingual=True)).splitlines()[0]
    assert "card reader /dev/bookcorner-reader: not connected" in top
    assert "读卡器 /dev/bookcorner-reader" in top
    alone = await _top_bar_with_the_reader_unplugged(data_dir, bilingual=False)
    assert "not connected" in alone and "读卡器" not in alone


async def test_a_shared_barcode_at_the_idle_screen_waits_for_the_card_to_say_whose(data_dir):
    with desk_for(data_dir) as desk:
        desk.checkout(desk.identify(CARDS[XIAOMING], Source.CARD_READER), ANDERSEN[0].isbn13)
        desk.checkout(desk.identify(CARDS[XIAOHONG], Source.CARD_READER), ANDERSEN[0].isbn13)
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await scan(pilot, ANDERSEN[0].isbn13)
        assert banner(app).code == "ambiguous_copy" and "Tap your card first" in screen_text(app)
        await tap(pilot, CARDS[XIAOHONG])
        assert isinstance(app.screen, VisitScreen) and banner(app).code == "returned"
        assert "Thank you, 小红!" in screen_text(app)
        assert app.controller.desk.state.loans_of(XIAOHONG.patron_id) == []
        assert len(app.controller.desk.state.loans_of(XIAOMING.patron_id)) == 1


async def test_the_screen_keeps_answering_while_a_write_is_slow(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        journal = app.controller.desk.journal
        append = journal.append

        writing, disk_back = threading.Event(), threading.Event()

        def slow_append(drafts):  # an SD card having a bad moment: the write waits until the test lets it go
            writing.set()
            disk_back.wait(30)
            return append(drafts)

        journal.append = slow_append
        app.devices.simulate_scan(XIYOUJI.barcode)
        await until(pilot, writing.is_set)
        assert app.desk_busy
        for _ in range(10):
            await pilot.pause()  # the screen's loop turns while the disk is still held (no clock: load-proof)
        assert app.desk_busy and not disk_back.is_set()
        disk_back.set()
        await until(pilot, lambda: not app.desk_busy)
        await settle(pilot)
        assert banner(app).code == "borrowed"


async def test_a_kiosk_without_its_data_says_so_and_starts_once_the_data_is_there(tmp_path):
    root = tmp_path / "data"
    app = make_app(root)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProblemScreen))
        await pilot.pause()
        assert "The book corner is not working right now" in screen_text(app)
        assert "图书角暂时不能使用" in screen_text(app) and "借阅机每30秒会自动重试。" in screen_text(app)
        # the command wraps where the directory's length puts it (longer under pytest-xdist's worker folders)
        words = " ".join(re.sub("[█▀▄]", " ", screen_text(app)).split())
        assert "bookcorner demo --load-only --data-dir" in words
        assert f"--data-dir {root}`" in app.screen.message  # this kiosk's directory, not ./demo-data
        ReferenceStore(DataPaths(root).reference).save(school_reference(), "test-1", "Test school")
        from bookcorner.kiosk.session import OpenDesk

        app.submit(OpenDesk())  # what the kiosk does by itself every 30 seconds
        await until(pilot, lambda: app.desk_ready)
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, HONGLOUMENG.barcode)
        assert banner(app).code == "borrowed"


def test_the_kiosk_overrides_no_textual_method_with_another_signature():
    """Textual calls its own methods (its ``action_switch_mode`` calls ``switch_mode``): a
    kiosk method of the same name must take what Textual passes."""
    import inspect

    from textual.app import App

    from bookcorner.kiosk.app import DemoKioskApp, KioskApp

    def parameters(function) -> list[tuple[str, object]]:
        return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]

    for kind in (KioskApp, DemoKioskApp):
        for name, value in vars(kind).items():
            if name != "__init__" and callable(value) and callable(getattr(App, name, None)):
                assert parameters(value) == parameters(getattr(App, name)), f"{kind.__name__}.{name}"
    assert KioskApp.switch_mode is App.switch_mode


async def test_the_screen_pings_systemds_watchdog_from_its_event_loop_and_stops_when_it_freezes(data_dir, tmp_path,
                                                                                                monkeypatch):
    """Found by the lab (issue 16): a SIGSTOPped kiosk stayed frozen, systemd had no way to know.
    The pings come from the event loop, so a loop that stops (here: blocked) stops them."""
    import socket

    def received(systemd: socket.socket) -> list[bytes]:
        got = []
        while True:
            try:
                got.append(systemd.recv(64))
            except BlockingIOError:
                return got

    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2: a ping at least every 0.1 s
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        app = make_app(data_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot)
            await pilot.pause(0.5)
            pings = received(systemd)
            # first the unit's own interval back (the command held it off while it started), then pings
            assert pings[0] == b"WATCHDOG_USEC=200000", pings
            pings = pings[1:]
            assert len(pings) >= 3 and set(pings) == {b"WATCHDOG=1"}, pings
            time.sleep(0.5)  # the event loop blocked (no await): no ping
            assert received(systemd) == []
            await pilot.pause(0.3)
            assert b"WATCHDOG=1" in received(systemd)  # the loop turns again


async def test_without_systemds_watchdog_the_screen_sends_nothing(data_dir, tmp_path, monkeypatch):
    import socket

    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        app = make_app(data_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot)
            await pilot.pause(0.3)
            try:
                sent = systemd.recv(64)
            except BlockingIOError:
                sent = None
            assert sent is None
