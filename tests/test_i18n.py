"""Chinese and English both ship: every marked string has a Chinese translation with the
same placeholders, and the compiled catalogues match their sources: by what they say, not
by which Babel release compiled them (its version is in the header, and changes by itself)."""

from __future__ import annotations

import shutil
from pathlib import Path

import babel
import pytest

from bookcorner import i18n
from bookcorner.i18n import catalogues

PO = "zh_CN/LC_MESSAGES/devices.po"
MESSAGE = 'msgid "card reader {port}: not connected, waiting for it"\nmsgstr "读卡器 {port}：未连接，正在等待"\n'


def test_every_user_facing_string_has_a_chinese_translation():
    assert catalogues.problems() == []


def test_a_string_in_two_areas_has_one_translation():
    """All areas' catalogues are chained into one: a msgid translated two ways would show one
    area's words on another's screen (a kiosk's "Done" as the dashboard's column header)."""
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, object]] = {}
    clashes = []
    for po in sorted((catalogues.LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fp:
            for message in read_po(fp):
                if not message.id or not message.string or message.context:
                    continue
                key = str(message.id)
                if key in seen and seen[key][1] != message.string:
                    clashes.append(f"{key!r}: {seen[key][0]} {seen[key][1]!r}, {po.stem} {message.string!r}")
                seen.setdefault(key, (po.stem, message.string))
    assert not clashes, "translated differently in two areas:\n" + "\n".join(clashes)


def test_the_language_can_be_switched_and_both_are_available_at_once():
    try:
        i18n.use_language("zh_CN")
        assert i18n._("Borrowed!") == "借好了！"
        i18n.use_language("en")
        assert i18n._("Borrowed!") == "Borrowed!"
        assert i18n.bilingual("Tap your card first") == ("请先刷卡", "Tap your card first")
    finally:
        i18n.use_language("en")


@pytest.fixture
def locale(tmp_path, monkeypatch) -> Path:
    """A copy of the catalogues that the checks read instead of the real ones."""
    copy = tmp_path / "locale"
    shutil.copytree(catalogues.LOCALE_DIR, copy)
    monkeypatch.setattr(catalogues, "LOCALE_DIR", copy)
    return copy


def test_a_catalogue_compiled_by_another_babel_release_is_the_same_catalogue(locale):
    mo = (locale / PO).with_suffix(".mo")
    installed = f"Generated-By: Babel {babel.__version__}".encode()
    data = catalogues.compiled(catalogues.read_catalogue(locale / PO, "zh_CN", "devices"))
    assert installed in data  # the installed Babel writes its own version, whatever the committed file says
    elsewhere = data.replace(installed, b"Generated-By: Babel 99.1.0")
    mo.write_bytes(elsewhere)
    assert catalogues.mo_content(elsewhere) == catalogues.mo_content(data)
    assert catalogues.problems(["devices"]) == []


def test_a_mo_that_translates_differently_from_its_po_is_stale(locale):
    po = locale / PO
    po.write_text(po.read_text(encoding="utf-8").replace(MESSAGE, MESSAGE.replace("正在等待", "等待中")), encoding="utf-8")
    assert catalogues.problems(["devices"]) == ["zh_CN/devices: devices.mo is stale, run scripts/i18n"]


def test_a_header_that_gettext_reads_still_counts(locale):
    po = locale / PO
    po.write_text(po.read_text(encoding="utf-8").replace("nplurals=1; plural=0;", "nplurals=2; plural=(n != 1);"), encoding="utf-8")
    assert catalogues.problems(["devices"]) == ["zh_CN/devices: devices.mo is stale, run scripts/i18n"]


def test_a_missing_translation_and_an_entry_no_code_asks_for_are_reported(locale):
    po = locale / PO
    text = po.read_text(encoding="utf-8")
    po.write_text(text.replace(MESSAGE, 'msgid "card reader {port}: not connected, waiting for it"\nmsgstr ""\n')
                  + '\nmsgid "a string the code no longer has"\nmsgstr "代码里已没有的字符串"\n', encoding="utf-8")
    found = catalogues.problems(["devices"])
    assert "zh_CN/devices: no translation for 'card reader {port}: not connected, waiting for it'" in found[0]
    assert found[1].startswith("zh_CN/devices: stale entry 'a string the code no longer has'")
    assert found[2] == "zh_CN/devices: devices.mo is stale, run scripts/i18n"


def test_updating_with_another_babel_release_rewrites_nothing(locale):
    before = {path.name: path.read_bytes() for path in (locale / PO).parent.iterdir()}
    catalogues.update(["devices"])
    assert {path.name: path.read_bytes() for path in (locale / PO).parent.iterdir()} == before


def test_a_file_that_is_no_mo_is_stale(locale):
    (locale / PO).with_suffix(".mo").write_bytes(b"not a catalogue")
    assert catalogues.problems(["devices"]) == ["zh_CN/devices: devices.mo is stale, run scripts/i18n"]
