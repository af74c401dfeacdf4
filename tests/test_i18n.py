"""Chinese and English both ship: every marked string has a Chinese translation with the
same placeholders, and the compiled catalogues match their sources."""

from __future__ import annotations

import i18n
from i18n import catalogues


def test_every_user_facing_string_has_a_chinese_translation():
    assert catalogues.problems() == []


def test_the_language_can_be_switched_and_both_are_available_at_once():
    try:
        i18n.use_language("zh_CN")
        assert i18n._("Borrowed!") == "借好了！"
        i18n.use_language("en")
        assert i18n._("Borrowed!") == "Borrowed!"
        assert i18n.bilingual("Tap your card first") == ("请先刷卡", "Tap your card first")
    finally:
        i18n.use_language("en")
