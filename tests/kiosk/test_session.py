"""The session controller without a screen: words in both languages at once, from its
own thread, without touching the screen's language."""

from __future__ import annotations

import threading

from bookcorner import i18n
from bookcorner.kiosk.wording import not_saved


def test_a_thread_words_in_another_language_without_changing_the_screens():
    i18n.use_language("en")
    seen: dict[str, str] = {}

    def worker() -> None:
        with i18n.in_language("zh_CN"):
            seen["worker"] = not_saved(True).headline
            seen["worker_language"] = i18n.current_language()
        seen["after"] = i18n.current_language()

    try:
        with i18n.in_language("zh_CN"):
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()
            assert i18n.current_language() == "zh_CN"
        assert i18n.current_language() == "en" and i18n._("Borrowed!") == "Borrowed!"
        assert seen == {"worker": "没有保存：请告诉图书管理员", "worker_language": "zh_CN", "after": "en"}
    finally:
        i18n.use_language("en")
