"""The kiosk's widgets; each owns its DEFAULT_CSS and says what it is for."""

from __future__ import annotations

from collections.abc import Callable

from bookcorner.i18n import LANGUAGES, current_language, in_language, translate


def languages(bilingual: bool) -> tuple[str, ...]:
    """The screen's language first, then (on bilingual screens) the other one."""
    main = current_language()
    if not bilingual:
        return (main,)
    return (main, *(language for language in LANGUAGES if language != main))


def pair(msgid: str, bilingual: bool) -> list[str]:
    """A message marked with ``N_()`` in each language shown, the screen's language first."""
    return [translate(msgid, language) for language in languages(bilingual)]


def in_each_language(bilingual: bool, words: Callable[[], str]) -> list[str]:
    """``words()`` (which calls ``_()``) worded in each language shown, the screen's first:
    for messages with values in them, which ``pair`` cannot translate."""
    worded = []
    for language in languages(bilingual):
        with in_language(language):
            worded.append(words())
    return worded
