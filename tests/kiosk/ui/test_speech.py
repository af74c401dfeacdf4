"""A kiosk that speaks: the clips made ahead of time by the real eSpeak NG, the parts that vary
said by it at run time, all given to the player (here a small program that notes what it was
asked to play and how long that is, as no sound card is here); silent when speech is off, and
for the older children when it is on for the youngest only."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bookcorner.circulation.codes import Source
from bookcorner.circulation.model import Card, Patron, Role
from bookcorner.circulation.reference import build_reference
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.kiosk import speech
from bookcorner.kiosk.desk import DataPaths
from tests.kiosk.corner import school_reference
from tests.kiosk.ui.conftest import banner, desk_for, make_app, scan, settings, started, tap, until, wait_a_moment
from tests.school import CARDS, HONGLOUMENG, XIAOMING, XIYOUJI

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="eSpeak NG is not installed (scripts/test installs Debian's espeak-ng as root)")

#: the player: notes each file it is given, with the number of audio frames in it then
RECORDER = """\
import json, sys, wave
with wave.open(sys.argv[-1], "rb") as audio:
    frames = audio.getnframes()
with open(sys.argv[1], "a", encoding="utf-8") as log:
    log.write(json.dumps({"file": sys.argv[-1], "frames": frames}) + "\\n")
"""

LITTLE = Patron("S11", "赵小兰", Role.STUDENT, "1-1", "小兰")
BIG = Patron("S51", "孙大山", Role.STUDENT, "5-3", "大山")
LITTLE_CARD, BIG_CARD = "0001000111", "0001000151"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    to = tmp_path_factory.mktemp("clips")
    speech.build(to)
    return to


@pytest.fixture
def player(tmp_path) -> tuple[list[str], Path]:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER, encoding="utf-8")
    log = tmp_path / "played.jsonl"
    return [sys.executable, str(script), str(log)], log


def played(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def speaking(clips: Path, player: list[str], mode: str = "on"):
    return settings(screen={"speech": mode, "speech_clips": str(clips), "speech_player": player})


def with_young_and_old(data_dir: Path) -> Path:
    base = school_reference()
    reference = build_reference([*base.patrons.values(), LITTLE, BIG],
                                [*base.cards.values(), Card(LITTLE_CARD, LITTLE.patron_id), Card(BIG_CARD, BIG.patron_id)],
                                base.items.values(), base.policy, base.calendar, base.timetable)
    ReferenceStore(DataPaths(data_dir).reference).save(reference, "test-2", "Test school")
    return data_dir


async def test_a_speaking_kiosk_greets_the_child_and_says_the_banner_in_both_languages(data_dir, clips, player):
    command, log = player
    app = make_app(data_dir, config_=speaking(clips, command))
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await until(pilot, lambda: len(played(log)) == 4)
        greeting = played(log)
        # the screen's language first: "Hello!" and the child's first name, then in Chinese
        assert [Path(entry["file"]).name for entry in greeting[::2]] == ["welcome.en.wav", "welcome.zh_CN.wav"]
        assert all(Path(entry["file"]).parent == clips for entry in greeting[::2])
        assert all(entry["frames"] > 2000 for entry in greeting)  # the name, said at run time, is sound too
        await scan(pilot, XIYOUJI.barcode)
        await until(pilot, lambda: len(played(log)) == 8)
        borrowed = played(log)[4:]
        assert [Path(entry["file"]).name for entry in borrowed[::2]] == ["borrowed.en.wav", "borrowed.zh_CN.wav"]
        # "“西游记” is yours until Mon 30 Nov.": said at run time, Chinese title and English words
        assert all(Path(entry["file"]).parent != clips and entry["frames"] > 10_000 for entry in borrowed[1::2])
        assert list(app.sounds.played) == ["success"]  # the bell still rings too
    assert [Path(entry["file"]).name for entry in played(log)] == [path.name for path in app.speech.played]


async def test_a_kiosk_with_speech_off_plays_nothing(data_dir, clips, player):
    command, log = player
    app = make_app(data_dir, config_=speaking(clips, command, "off"))
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, CARDS[XIAOMING])
        await scan(pilot, XIYOUJI.barcode)
        await scan(pilot, "0000000000000")  # a bad read: a refusal
        await wait_a_moment(0.5)
        assert list(app.sounds.played) == ["success", "refusal"]  # the banners were there, and the bell rang
    assert played(log) == [] and list(app.speech.played) == []


async def test_speech_for_the_youngest_speaks_to_a_first_grader_and_not_to_a_fifth_grader(data_dir, clips, player):
    command, log = player
    app = make_app(with_young_and_old(data_dir), config_=speaking(clips, command, "youngest"))
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await tap(pilot, BIG_CARD)
        await scan(pilot, XIYOUJI.barcode)
        await wait_a_moment(0.5)
        assert list(app.sounds.played) == ["success"] and played(log) == []
        await tap(pilot, BIG_CARD)  # done
        await tap(pilot, LITTLE_CARD)
        await until(pilot, lambda: len(played(log)) == 4)
        assert [Path(entry["file"]).name for entry in played(log)[::2]] == ["welcome.en.wav", "welcome.zh_CN.wav"]


async def test_speech_for_the_youngest_thanks_a_first_grader_returning_a_book_at_the_idle_screen(data_dir, clips, player):
    command, log = player
    data_dir = with_young_and_old(data_dir)
    with desk_for(data_dir) as desk:
        for card, book in ((LITTLE_CARD, XIYOUJI), (BIG_CARD, HONGLOUMENG)):
            assert desk.checkout(desk.identify(card, Source.CARD_READER), book.barcode).ok
    app = make_app(data_dir, config_=speaking(clips, command, "youngest"))
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await scan(pilot, HONGLOUMENG.barcode)  # the fifth grader's book, back without a card
        await wait_a_moment(0.5)
        assert banner(app).code == "returned" and played(log) == []
        await scan(pilot, XIYOUJI.barcode)  # the first grader's
        await until(pilot, lambda: len(played(log)) == 4)
        assert [Path(entry["file"]).name for entry in played(log)[::2]] == ["returned.en.wav", "returned.zh_CN.wav"]
