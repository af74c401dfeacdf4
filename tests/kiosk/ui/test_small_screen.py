"""The smallest screen the kiosk is made for, 80x24, with the demo's codes panel along the
bottom as a newcomer first sees it: every answer shows in both languages, whole, above
the buttons, and the screens that say more than one answer keep both languages too."""

from __future__ import annotations

import pytest

from bookcorner.kiosk.widgets.banner import Banner
from tests.kiosk.ui import scenes
from tests.kiosk.ui.conftest import screen_text

SMALLEST = (80, 24)


@pytest.mark.parametrize("language", ["en", "zh_CN"])
@pytest.mark.parametrize("name", ["returned", "borrowed", "overdue", "helper", "librarian_takes_back"])
async def test_an_answer_shows_whole_in_both_languages_on_the_smallest_screen(tmp_path, name, language):
    app = scenes.app_for(name, tmp_path / "data", language, codes_panel=True)
    async with app.run_test(size=SMALLEST) as pilot:
        await scenes.SCENES[name](pilot)
        await pilot.pause()
        banner = app.screen.query_one(Banner)
        text = screen_text(app)
        assert [words.language for words in banner.feedback.words] == [language, *({"en", "zh_CN"} - {language})]
        for words in banner.feedback.words:
            assert words.headline in text and words.detail in text, (words, text)
        assert "Demo:" in text or "演示：" in text  # the codes panel is there
        for button in app.screen.query("#actions Button"):
            assert not button.region.overlaps(banner.region), button
        assert banner.region.bottom <= app.screen.query_one("DemoPanel").region.y
