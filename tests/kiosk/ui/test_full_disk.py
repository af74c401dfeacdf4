"""The lab's full-disk case (scenario 4, lab/full_disk.py) at the screen: a child's first book
borrowed, the visit over, then the disk full and the child back with a second book. The card
tapped on the full disk opens the visit (a tap writes nothing), the book scanned ends in "Not
saved" in both languages with nothing kept and nothing said "done", and once the space is
back the same card and book make the loan, nothing restarted.

The disk is full to the byte: the journal's hot segment may not grow (RLIMIT_FSIZE, as
scan_on_a_full_disk). A file system filled by another file still takes a few records into the
last block the segment already has (a real tmpfs did: the loan was kept and said "Borrowed",
truthfully), which is why the lab may see a loan kept on a "full" disk."""

from __future__ import annotations

import resource
import signal

from bookcorner.kiosk.screens.idle import IdleScreen
from bookcorner.kiosk.screens.visit import VisitScreen
from bookcorner.kiosk.wording import Tone
from tests.kiosk.ui.conftest import banner, make_app, scan, screen_text, started, tap
from tests.school import CARDS, HONGLOUMENG, XIAOMING, XIYOUJI


async def test_a_card_and_a_book_on_a_full_disk_say_not_saved_and_lend_once_the_space_is_back(data_dir):
    app = make_app(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        card = CARDS[XIAOMING]
        await tap(pilot, card)
        await scan(pilot, XIYOUJI.barcode)
        assert banner(app).code == "borrowed"
        await tap(pilot, card)  # the second tap ends the visit
        assert isinstance(app.screen, IdleScreen)
        desk = app.controller.desk
        hot = max(desk.paths.journal.glob("seg-*.log"))
        size = hot.stat().st_size
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
            await tap(pilot, card)
            assert isinstance(app.screen, VisitScreen) and "Hello, 小明!" in screen_text(app)
            await scan(pilot, HONGLOUMENG.barcode)
            shown, text = banner(app), screen_text(app)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)
        assert shown.tone is Tone.ERROR and shown.code == "not_saved" and shown.recorded == 0
        assert "Not saved: please tell the librarian" in text and "没有保存：请告诉图书管理员" in text
        assert "Borrowed" not in text and "借好了" not in text
        assert desk.state.loan_of(HONGLOUMENG.item_id) is None and hot.stat().st_size == size

        # the space back: the visit is still open, so the same book scanned again is lent
        assert isinstance(app.screen, VisitScreen)
        await scan(pilot, HONGLOUMENG.barcode)
        assert banner(app).code == "borrowed" and "You have 2 books" in screen_text(app)
        assert desk.state.loan_of(HONGLOUMENG.item_id) is not None and hot.stat().st_size > size
