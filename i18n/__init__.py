"""The translation layer: every user-facing string goes through here.

Strings are marked with ``_()`` (translated now, in the active language) or ``N_()``
(marked for extraction, translated later with ``_()``/``translate()``). Catalogues are
ordinary gettext ``.po`` files, one per area of the program (``core``, ``devices``,
``kiosk``...), compiled to ``.mo`` by ``scripts/i18n``. English is the source language;
Chinese (zh_CN) ships with every release, and ``tests/test_i18n.py`` fails when a marked
string has no Chinese translation.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "zh_CN")


class UnknownLanguage(ValueError):
    pass


@cache
def translations_for(language: str) -> gettext.NullTranslations:
    """All catalogues of one language chained together (English: the source strings)."""
    if language not in LANGUAGES:
        raise UnknownLanguage(language)
    chain: gettext.NullTranslations = gettext.NullTranslations()
    if language == SOURCE_LANGUAGE:
        return chain
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    first: gettext.NullTranslations | None = None
    for mo in sorted(folder.glob("*.mo")):
        with mo.open("rb") as fp:
            catalogue = gettext.GNUTranslations(fp)
        if first is None:
            first = catalogue
        else:
            first.add_fallback(catalogue)
    if first is None:
        return chain
    return first


class _Active:
    """The program-wide language (one kiosk, one screen, one language at a time)."""

    language: str = SOURCE_LANGUAGE


#: a language for one thread or task only (``in_language``), over the program-wide one
_override: ContextVar[str | None] = ContextVar("bookcorner_language", default=None)


def use_language(language: str) -> None:
    translations_for(language)  # fail early on an unknown language
    _Active.language = language


def current_language() -> str:
    return _override.get() or _Active.language


@contextmanager
def in_language(language: str) -> Iterator[None]:
    """Words in ``language`` inside the block, for this thread only (the screen's own
    language is untouched): how a child's banner is worded in Chinese and English at once."""
    translations_for(language)
    token = _override.set(language)
    try:
        yield
    finally:
        _override.reset(token)


def translate(message: str, language: str) -> str:
    return translations_for(language).gettext(message)


def _(message: str) -> str:
    """Translate into the active language."""
    return translations_for(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations_for(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a string for translation without translating it yet."""
    return message


def bilingual(message: str) -> tuple[str, str]:
    """The message in Chinese and in English, for screens a young child reads."""
    return translate(message, "zh_CN"), translate(message, "en")
