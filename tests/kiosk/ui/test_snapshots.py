"""SVG snapshots of the main screens in both languages (Textual is pinned exactly in
pyproject.toml: a new Textual draws differently). After a deliberate change to a screen:
``pytest tests/kiosk/ui/test_snapshots.py --snapshot-update``, and look at the report.
CJK text takes two cells per character: these catch a layout that cuts it or misaligns it."""

from __future__ import annotations

import pytest

from bookcorner.kiosk.crash import CrashApp
from tests.kiosk.ui import scenes

SIZE = (100, 30)


@pytest.mark.parametrize("language", ["en", "zh_CN"])
@pytest.mark.parametrize("name", ["idle", "borrowed", "overdue", "returned", "helper", "pin", "librarian"])
def test_main_screens(snap_compare, tmp_path, name, language):
    app = scenes.app_for(name, tmp_path / "data", language)
    assert snap_compare(app, terminal_size=SIZE, run_before=scenes.SCENES[name])


@pytest.mark.parametrize("language", ["en", "zh_CN"])
@pytest.mark.parametrize("name", ["suggested", "picks"])
def test_what_to_read_next_after_a_borrow_and_this_weeks_picks(snap_compare, tmp_path, name, language):
    app = scenes.app_for(name, tmp_path / "data", language)
    assert snap_compare(app, terminal_size=SIZE, run_before=scenes.SCENES[name])


def test_a_childs_session_fits_the_smallest_terminal(snap_compare, tmp_path):
    app = scenes.app_for("borrowed", tmp_path / "data", "zh_CN")
    assert snap_compare(app, terminal_size=(80, 24), run_before=scenes.SCENES["borrowed"])


@pytest.mark.parametrize("name,language", [("borrowed", "en"), ("returned", "zh_CN"), ("helper", "zh_CN")])
def test_the_smallest_terminal_with_the_demos_codes_panel(snap_compare, tmp_path, name, language):
    app = scenes.app_for(name, tmp_path / "data", language, codes_panel=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=scenes.SCENES[name])


def test_the_crash_screen(snap_compare):
    assert snap_compare(CrashApp(60.0), terminal_size=(80, 24))
