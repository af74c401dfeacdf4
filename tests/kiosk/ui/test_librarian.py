"""The librarian at the kiosk: card plus PIN (locked after wrong tries), a card enrolled by
tapping it, a new book registered by scanning it, sync now, the language switched."""

from __future__ import annotations

from pathlib import Path

from bookcorner.kiosk.screens.dialogs import PinScreen
from bookcorner.kiosk.screens.idle import IdleScreen
from bookcorner.kiosk.screens.librarian import LibrarianScreen
from bookcorner.kiosk.screens.visit import VisitScreen
from bookcorner.sync.status import Phase, SyncStatus, write_status
from tests.kiosk.corner import LIBRARIAN_CARD, PIN, UNKNOWN_CARD, UNKNOWN_ISBN
from tests.kiosk.ui.conftest import banner, make_app, scan, screen_text, settings, settle, started, tap, until
from tests.school import CARDS, XIAOHONG, XIAOMING, XIYOUJI


async def type_pin(pilot, pin: str, *, keypad: bool = False) -> None:
    """As a finger does it on the keypad, or (quicker) as the keypad reports it."""
    from bookcorner.kiosk.widgets.keypad import PinPad

    if keypad:
        for digit in pin:
            await pilot.click(f"#key-{digit}")
        await pilot.click("#key-ok")
    else:
        pilot.app.screen.query_one(PinPad).post_message(PinPad.Entered(pin))
    await settle(pilot)


async def open_librarian_mode(pilot) -> None:
    await tap(pilot, LIBRARIAN_CARD)
    await type_pin(pilot, PIN)
    assert isinstance(pilot.app.screen, LibrarianScreen)


async def test_the_librarians_card_asks_for_the_pin_and_wrong_pins_lock_the_mode(data_dir):
    app = make_app(data_dir, config_=settings(librarian={"max_tries": 3, "lockout_s": 300}))
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, LIBRARIAN_CARD)
        assert isinstance(app.screen, PinScreen) and "薛老师: enter your PIN" in screen_text(app)
        await scan(pilot, XIYOUJI.barcode)  # nothing happens behind the PIN dialog
        assert app.controller.desk.state.loans == {}
        await type_pin(pilot, "1111", keypad=True)
        assert "Wrong PIN. 2 more tries before the lock-out." in screen_text(app)
        await type_pin(pilot, "2222")
        await type_pin(pilot, "3333")
        assert "Too many wrong PINs: locked until 12:10." in screen_text(app)
        await type_pin(pilot, PIN)  # even the right PIN waits for the lock-out
        assert isinstance(app.screen, PinScreen) and "locked until" in screen_text(app)
        await pilot.click("#cancel")
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)
    # pulling the plug does not lift the lock-out
    app = make_app(data_dir, config_=settings(librarian={"max_tries": 3, "lockout_s": 300}))
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, LIBRARIAN_CARD)
        assert "locked until 12:10" in screen_text(app)
    assert PIN not in (data_dir / "state" / "librarian-pin.json").read_text()


async def test_the_pin_typed_on_a_keyboard_opens_the_librarians_mode(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, LIBRARIAN_CARD)
        for key in (*PIN, "enter"):  # a person's keys: slower than a scanner, so not a scan
            await pilot.press(key)
            await pilot.pause(0.08)
        await settle(pilot)
        assert isinstance(app.screen, LibrarianScreen)
        await tap(pilot, LIBRARIAN_CARD)  # the same card again: the mode closes
        assert isinstance(app.screen, IdleScreen)


async def test_without_a_pin_set_the_librarians_mode_stays_closed(data_dir):
    app = make_app(data_dir, config_=settings(librarian={"pin_hash": ""}))
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, LIBRARIAN_CARD)
        assert isinstance(app.screen, IdleScreen) and "bookcorner librarian set-pin" in screen_text(app)


async def test_an_unknown_card_is_enrolled_by_tapping_it_and_choosing_the_child(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, UNKNOWN_CARD)
        assert banner(app).code == "card_unknown"
        await open_librarian_mode(pilot)
        await tap(pilot, UNKNOWN_CARD)
        screen = app.screen
        assert isinstance(screen, LibrarianScreen) and screen.active_tab == "tab-enrol"
        assert f"Card {UNKNOWN_CARD}: choose the class" in screen_text(app)
        classes = screen.query_one("#enrol-classes")
        classes.highlighted = 0  # class 3-2
        await pilot.pause()
        people = screen.query_one("#enrol-people")
        index = next(i for i in range(people.option_count) if people.get_option_at_index(i).id == XIAOHONG.patron_id)
        people.highlighted = index
        await pilot.pause()
        assert "李小红  S02  (has a card)" in screen_text(app)
        await pilot.click("#enrol")
        await settle(pilot)
        assert banner(app).code == "card_enrolled" and "This card now belongs to 小红." in screen_text(app)
        await pilot.click("#done")
        await settle(pilot)
        await tap(pilot, UNKNOWN_CARD)
        assert isinstance(app.screen, VisitScreen) and "Hello, 小红!" in screen_text(app)
        await tap(pilot, CARDS[XIAOHONG])  # the old card still works too (not a replacement)
        assert isinstance(app.screen, IdleScreen)


async def test_a_new_book_is_registered_by_scanning_it_and_can_be_borrowed_at_once(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        await scan(pilot, UNKNOWN_ISBN)
        screen = app.screen
        assert screen.active_tab == "tab-register" and f"Barcode {UNKNOWN_ISBN}" in screen_text(app)
        await pilot.click("#register")
        await settle(pilot)
        assert "A book needs at least its title." in screen_text(app)
        screen.query_one("#register-title").value = "活着"
        await pilot.pause(0.25)  # a button ignores a second press within 0.2 s
        await pilot.click("#register")
        await settle(pilot)
        assert banner(app).code == "item_registered" and "“活着” can be borrowed now." in screen_text(app)
        await pilot.click("#done")
        await settle(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, UNKNOWN_ISBN)
        assert banner(app).code == "borrowed" and "“活着” is yours" in screen_text(app)


async def test_sync_now_wakes_the_daemon_and_the_badge_follows_its_status(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        assert "not synced yet · 0 waiting" in screen_text(app)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)
        assert "1 waiting" in screen_text(app)  # at once, without waiting for the daemon
        await pilot.click("#done")
        await settle(pilot)
        await open_librarian_mode(pilot)
        await pilot.click("#sync-now")
        await until(pilot, lambda: (data_dir / "sync" / "wake").exists())
        assert "Asked the sync daemon to sync now" in screen_text(app)
        write_status(data_dir, SyncStatus(phase=Phase.SYNCING, acked_seq=0, sent=1, to_send=2,
                                          last_attempt="2026-11-23T12:05:00+08:00"))
        app.poll_sync()
        await until(pilot, lambda: "syncing 1/2" in screen_text(app))
        assert "Syncing: 1 of 2 events sent" in screen_text(app)
        write_status(data_dir, SyncStatus(phase=Phase.IDLE, acked_seq=2, needs_review=1,
                                          last_success="2026-11-23T12:05:30+08:00",
                                          last_attempt="2026-11-23T12:05:30+08:00"))
        app.poll_sync()
        await until(pilot, lambda: "online · 0 waiting · synced 12:05" in screen_text(app))
        assert "Done: 0 event(s) still waiting, 1 for your review." in screen_text(app)
        write_status(data_dir, SyncStatus(phase=Phase.OFFLINE, acked_seq=2, last_error="no network",
                                          last_success="2026-11-22T16:00:00+08:00"))
        app.poll_sync()
        await until(pilot, lambda: "offline · 0 waiting · synced Sun 22 Nov 16:00" in screen_text(app))
        await pilot.click("#show-unsent")
        await settle(pilot)
        assert "0 event(s) not yet on the server" in screen_text(app)


async def test_a_busy_server_shows_as_busy_and_retrying_not_as_a_problem(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        write_status(data_dir, SyncStatus(phase=Phase.BUSY, acked_seq=0, last_success="2026-11-22T16:00:00+08:00",
                                          last_error="the server is busy (429); it asked to come back in 2 s"))
        app.poll_sync()
        await until(pilot, lambda: "server busy, retrying · 0 waiting" in screen_text(app))
        assert "sync problem" not in screen_text(app)
        await open_librarian_mode(pilot)
        assert "server busy, retrying: every event stays here" in screen_text(app)


async def test_the_language_is_switched_in_the_librarians_mode(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        app.screen.show_tab("tab-language")
        await pilot.pause()
        await pilot.click("#lang-zh_CN")
        await settle(pilot)
        assert "图书管理员：薛老师" in screen_text(app) and "同步" in screen_text(app)
        await pilot.click("#done")
        await settle(pilot)
        text = screen_text(app)
        assert text.index("请刷卡") < text.index("Tap your card")  # Chinese first, English under it
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)
        text = screen_text(app)
        assert text.index("借好了！") < text.index("Borrowed!") and "小明，你好！（3-2班）" in text


def test_nothing_of_the_pin_is_kept_in_plain_text(tmp_path: Path):
    from bookcorner.kiosk.pin import verify_pin
    from tests.kiosk.corner import PIN_HASH

    assert PIN not in PIN_HASH and verify_pin(PIN, PIN_HASH) and not verify_pin("0000", PIN_HASH)


async def test_restart_and_shut_down_leave_with_the_status_systemd_expects(data_dir, tmp_path):
    from bookcorner.kiosk.crash import EXIT_RESTART

    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        app.screen.show_tab("tab-power")
        await pilot.pause()
        await pilot.click("#restart")
        await pilot.pause()
    assert app.return_code == EXIT_RESTART
    marker = tmp_path / "powered-off"
    app = make_app(data_dir, config_=settings(librarian={"shutdown_command": ["touch", str(marker)]}))
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        app.screen.show_tab("tab-power")
        await pilot.pause()
        await pilot.click("#shutdown")  # once: only armed
        await pilot.pause(0.25)
        assert app.is_running and "Press again to shut down" in screen_text(app)
        await pilot.click("#shutdown")
        await pilot.pause()
    assert app.return_code == 0
    await until_file(marker)


async def until_file(path, timeout: float = 5.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)


async def test_a_lost_card_closes_the_pin_dialog_but_is_only_answered_in_the_librarians_mode(data_dir):
    from tests.school import LOST_CARD

    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, LIBRARIAN_CARD)
        await tap(pilot, LOST_CARD.card_id)  # a child at the kiosk, not the librarian's PIN
        assert isinstance(app.screen, IdleScreen) and banner(app).code == "card_not_active"
        await open_librarian_mode(pilot)
        await tap(pilot, LOST_CARD.card_id)  # the librarian looking at a card someone found
        assert isinstance(app.screen, LibrarianScreen) and banner(app).code == "card_not_active"


async def test_a_pin_pasted_as_fast_as_a_scanner_goes_to_the_pin_field_and_a_card_is_still_a_tap(data_dir):
    from tests.kiosk.ui.conftest import type_fast

    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await tap(pilot, LIBRARIAN_CARD)
        await type_fast(pilot, XIYOUJI.barcode)  # a book, from a scanner that types: not a PIN
        assert isinstance(app.screen, PinScreen) and "Enter the PIN first" in screen_text(app)
        await type_fast(pilot, LIBRARIAN_CARD)  # the librarian's card on a reader that types: a second tap
        assert isinstance(app.screen, IdleScreen)
        await tap(pilot, LIBRARIAN_CARD)
        await type_fast(pilot, "9999")  # pasted: a wrong PIN, counted as one
        assert "Wrong PIN. 4 more tries" in screen_text(app)
        await type_fast(pilot, PIN)
        assert isinstance(app.screen, LibrarianScreen)


async def test_a_restored_kiosk_tells_the_librarian_until_they_have_seen_it(data_dir):
    from bookcorner.journal import incarnation
    from bookcorner.sync.journal_notice import unseen

    restored = incarnation.Incarnation.begin(incarnation.Reason.RESTORED, 41, "before-the-card-died",
                                             "2026-11-27T08:00:00+0800")
    incarnation.save(data_dir / "journal", restored)
    write_status(data_dir, SyncStatus(phase=Phase.IDLE, incarnation=restored.incarnation_id, incarnation_told=True,
                                      journal_notice="restored", events_not_here=3, loans_not_here=2))
    app = make_app(data_dir)
    async with app.run_test(size=(100, 34)) as pilot:
        await started(pilot)
        await open_librarian_mode(pilot)
        await until(pilot, lambda: "restored from a backup of 2026-11-27 08:00" in screen_text(app))
        shown = " ".join(str(app.screen.query_one("#journal-notice").content).split())
        assert "2 loan(s) (3 event(s)) were made after the backup" in shown
        await pilot.click("#journal-seen")
        await settle(pilot)
        assert "restored from a backup" not in screen_text(app)
    assert unseen(data_dir) is None  # doctor stops saying it too
