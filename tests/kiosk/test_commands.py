"""`bookcorner circ` and `bookcorner demo` as a librarian or a script uses them: a real
process, a real data directory, exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk.desk import DataPaths
from tests.school import CARDS, DICTIONARY, MAGAZINE, XIAOMING, XIAOHONG, XIYOUJI, HONGLOUMENG, SHUIHU, reference

AT = "2026-11-23T12:05"


def bookcorner(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BOOKCORNER_CONFIG"}
    command = [sys.executable, "-m", "bookcorner"]
    if config:
        command += ["--config", str(config)]
    return subprocess.run(command + list(args), capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    ReferenceStore(DataPaths(tmp_path).reference).save(reference(), "test-1", "Test school")
    return tmp_path


def circ(data_dir: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    return bookcorner("circ", *args, "--data-dir", str(data_dir), "--at", AT, config=config)


def test_checkout_status_and_return_from_the_command_line(data_dir):
    card = CARDS[XIAOMING]
    lent = circ(data_dir, "checkout", card, XIYOUJI.barcode, "--json")
    assert lent.returncode == 0, lent.stderr
    body = json.loads(lent.stdout)
    assert body["ok"] and body["action"] == "borrowed" and body["due"] == "2026-11-30" and body["events"] == [1]
    status = json.loads(circ(data_dir, "status", card, "--json").stdout)
    assert [loan["item_id"] for loan in status["loans"]] == [XIYOUJI.item_id] and status["may_checkout"] == 1
    back = circ(data_dir, "return", XIYOUJI.barcode)
    assert back.returncode == 0 and "Thank you, 小明!" in back.stdout
    overview = json.loads(circ(data_dir, "status", "--json").stdout)
    assert overview["open_loans"] == 0 and overview["last_seq"] == 2


def test_checkin_takes_a_book_back_and_return_is_still_its_other_name(data_dir):
    card = CARDS[XIAOMING]
    assert circ(data_dir, "checkout", card, XIYOUJI.barcode).returncode == 0
    assert circ(data_dir, "checkout", card, HONGLOUMENG.barcode).returncode == 0
    back = circ(data_dir, "checkin", XIYOUJI.barcode, "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["action"] == "returned"
    old_name = circ(data_dir, "return", HONGLOUMENG.barcode)
    assert old_name.returncode == 0 and "Thank you, 小明!" in old_name.stdout
    assert json.loads(circ(data_dir, "status", "--json").stdout)["open_loans"] == 0
    # headline and detail on one line are two sentences
    again = circ(data_dir, "checkin", XIYOUJI.barcode)
    assert "This book was not borrowed. Please put it back on the shelf." in again.stdout + again.stderr
    listed = bookcorner("circ", "--help").stdout
    assert "checkin (return)" in listed and "check a book in" in listed and "borrow" not in listed


def test_a_refusal_exits_non_zero_with_the_reason(data_dir):
    card = CARDS[XIAOMING]
    assert circ(data_dir, "checkout", card, XIYOUJI.barcode).returncode == 0
    assert circ(data_dir, "checkout", card, HONGLOUMENG.barcode).returncode == 0
    third = circ(data_dir, "checkout", card, SHUIHU.barcode)
    assert third.returncode == 1
    assert "You have 2 books already" in third.stderr and "[limit_reached]" in third.stderr
    reference_book = circ(data_dir, "checkout", CARDS[XIAOHONG], DICTIONARY.barcode, "--json")
    assert reference_book.returncode == 1 and json.loads(reference_book.stdout)["reason"] == "reference_only"
    unknown_card = circ(data_dir, "checkout", "0009999999", XIYOUJI.barcode)
    assert unknown_card.returncode == 1 and "[card_unknown]" in unknown_card.stderr


def test_status_only_looks_so_it_works_while_the_kiosk_runs(data_dir):
    from bookcorner.circulation.codes import Source
    from bookcorner.journal.clock import FixedClock
    from bookcorner.kiosk.desk import CirculationDesk
    from tests.school import LOST_CARD, MONDAY

    with CirculationDesk(data_dir, "demo-corner", FixedClock(MONDAY)) as kiosk:  # holds the writer's lock
        kiosk.checkout(kiosk.identify(CARDS[XIAOMING], Source.CARD_READER), XIYOUJI.barcode)
        overview = circ(data_dir, "status", "--json")
        assert overview.returncode == 0, overview.stderr
        assert json.loads(overview.stdout)["open_loans"] == 1 and json.loads(overview.stdout)["last_seq"] == 1
        mine = circ(data_dir, "status", CARDS[XIAOMING])
        assert mine.returncode == 0 and "“西游记”  due Mon 30 Nov" in mine.stdout
        lost = circ(data_dir, "status", LOST_CARD.card_id)  # said, and not recorded: looking is not a tap
        assert lost.returncode == 1 and "[card_not_active]" in lost.stderr and kiosk.journal.last_seq == 1
        writing = circ(data_dir, "checkout", CARDS[XIAOHONG], HONGLOUMENG.barcode)  # writing still waits
        assert writing.returncode == 3 and kiosk.state.loan_of(HONGLOUMENG.item_id) is None


def test_the_answer_comes_in_the_configured_language(data_dir, tmp_path):
    settings = tmp_path / "kiosk.toml"
    settings.write_text('[kiosk]\nlanguage = "zh_CN"\n')
    lent = circ(data_dir, "checkout", CARDS[XIAOMING], MAGAZINE.barcode, config=settings)
    assert lent.returncode == 0 and "借好了！" in lent.stdout and "《儿童文学》" in lent.stdout
    assert circ(data_dir, "checkin", MAGAZINE.barcode, config=settings).returncode == 0
    again = circ(data_dir, "checkin", MAGAZINE.barcode, config=settings)  # a full-width stop, no space
    assert "这本书没有被借出。请把它放回书架。" in again.stdout + again.stderr


def test_a_wrong_configuration_stops_with_the_field_named(data_dir, tmp_path):
    settings = tmp_path / "kiosk.toml"
    settings.write_text("[journal]\nsegment_events = 2\n")
    result = circ(data_dir, "status", config=settings)
    assert result.returncode == 2 and "journal.segment_events" in result.stderr


def test_no_reference_data_is_a_clear_error_and_the_command_it_suggests_works(tmp_path):
    import re
    import shlex

    data_dir = tmp_path / "my corner"
    result = circ(data_dir, "status")
    assert result.returncode == 3 and "No roster or catalogue" in result.stderr
    suggested = shlex.split(re.search(r"`bookcorner (demo [^`]*)`", result.stderr).group(1))
    assert suggested[:2] == ["demo", "--load-only"]
    assert bookcorner(*suggested).returncode == 0  # loads into this very directory, not ./demo-data
    assert circ(data_dir, "status").returncode == 0


def test_the_demo_loads_the_school_and_shows_what_to_try(tmp_path):
    demo_dir = tmp_path / "demo"
    first = bookcorner("demo", "--data-dir", str(demo_dir))
    assert first.returncode == 0, first.stderr
    assert "Liuxi Road Primary School" in first.stdout and "Student card" in first.stdout
    assert "Borrowed!" in first.stdout and "This book stays in the classroom" in first.stdout
    again = bookcorner("demo", "--data-dir", str(demo_dir), "--load-only")
    assert again.returncode == 0 and "Loaded" not in again.stdout
    recorded = json.loads(circ(demo_dir, "status", "--json").stdout)["last_seq"]
    assert recorded > 0  # the first tour's loans are there to try `circ` on
    tour = bookcorner("demo", "--data-dir", str(demo_dir), "--tour")  # the demo school is there already
    assert tour.returncode == 0 and "Loaded" not in tour.stdout

    def story(out: str) -> str:
        return out[out.index("A child's visit"):out.index("Try it yourself")]

    assert story(tour.stdout) == story(first.stdout) and "Borrowed!" in story(tour.stdout)
    overview = circ(demo_dir, "status", "--json")  # told again, on a demo school of its own
    assert overview.returncode == 0 and json.loads(overview.stdout)["last_seq"] == recorded
    elsewhere = tmp_path / "not-demo"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    refused = bookcorner("demo", "--data-dir", str(elsewhere), "--reset")
    assert refused.returncode == 2 and (elsewhere / "precious.txt").exists()


def test_the_kiosk_command_is_parsed_without_loading_every_other_area():
    from bookcorner import cli

    assert cli._quick_area(["kiosk"]) == "bookcorner.kiosk.commands"
    assert cli._quick_area(["--config", "kiosk.toml", "kiosk", "--lang", "zh_CN"]) == "bookcorner.kiosk.commands"
    assert cli._quick_area(["--config=kiosk.toml", "kiosk"]) == "bookcorner.kiosk.commands"
    assert cli._quick_area(["circ", "status"]) is None and cli._quick_area(["--help"]) is None
    commands = cli.build_parser("bookcorner.kiosk.commands")._subparsers._group_actions[0].choices
    assert "kiosk" in commands and "journal" not in commands
    assert {"kiosk", "journal", "devices"} <= set(cli.build_parser()._subparsers._group_actions[0].choices)
