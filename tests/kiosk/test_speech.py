"""The spoken banners: a clip for every banner in both languages, made by the real eSpeak NG,
each a WAV file with sound in it; the words the screen shows; the voice that reads Mandarin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from array import array
from pathlib import Path

import msgspec
import pytest

from bookcorner import config
from bookcorner.circulation.rules import Action, Reason
from bookcorner.i18n import LANGUAGES, in_language
from bookcorner.kiosk import speech
from bookcorner.kiosk.wording import enter_pin_first

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="eSpeak NG is not installed (scripts/test installs Debian's espeak-ng as root)")

#: every banner a person can see at the kiosk, by the code its feedback carries
BANNERS = ([str(action) for action in Action] + [str(reason) for reason in Reason]
           + ["not_saved", "pin_first", "no_pin", speech.WELCOME])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("eSpeak NG is not installed (scripts/test installs Debian's espeak-ng as root)")
    to = tmp_path_factory.mktemp("clips")
    speech.build(to)
    return to


def test_every_banner_has_something_to_say():
    assert sorted(speech.SPOKEN) == sorted(BANNERS)
    for code, parts in speech.SPOKEN.items():
        assert any(isinstance(part, speech.Clip) for part in parts), code


@needs_espeak
def test_every_banner_has_a_clip_in_both_languages_and_each_decodes_as_audio(clips):
    manifest = json.loads((clips / speech.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["synthesiser"].startswith("eSpeak NG")
    for code in BANNERS:
        for language in LANGUAGES:
            entry = manifest["clips"][code][language]
            path = clips / entry["file"]
            with wave.open(str(path), "rb") as audio:
                seconds = audio.getnframes() / audio.getframerate()
                assert audio.getnchannels() == 1 and audio.getsampwidth() == 2
                assert 0.3 < seconds < 15, (code, language, seconds)
                samples = audio.readframes(audio.getnframes())
            levels = array("h", samples)
            assert max(levels) > 1000 and min(levels) < -1000, f"{path.name} is silent"
            if shutil.which("soxi"):  # sox's own reading of the file agrees
                length = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
                assert float(length.stdout) == pytest.approx(seconds, abs=0.01)
    assert speech.check(clips) == []


@needs_espeak
def test_a_clip_missing_silent_or_from_older_words_is_found(clips, tmp_path):
    broken = tmp_path / "clips"
    shutil.copytree(clips, broken)
    (broken / speech.clip_file("borrowed", "zh_CN")).unlink()
    with wave.open(str(broken / speech.clip_file("overdue", "en")), "wb") as silent:
        silent.setparams((1, 2, 22050, 0, "NONE", "not compressed"))
    manifest = json.loads((broken / speech.MANIFEST).read_text(encoding="utf-8"))
    manifest["clips"]["returned"]["en"]["text"] = "Thanks!"
    (broken / speech.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    problems = speech.check(broken)
    assert len(problems) == 3
    assert "borrowed.zh_CN.wav" in problems[0] and "returned" in problems[1] and "overdue.en.wav is silent" in problems[2]
    # no clip set yet: the command that makes one, not an errno
    assert speech.check(tmp_path / "none") == [
        f"No clip set in {tmp_path / 'none'}: make one with `bookcorner speech build --to {tmp_path / 'none'}`"]


def test_a_clip_says_the_words_on_the_banner():
    for language in LANGUAGES:
        with in_language(language):
            shown = enter_pin_first().as_line()
            (clip,) = speech.SPOKEN["pin_first"]
            assert isinstance(clip, speech.Clip) and clip.text() == shown


def test_each_script_is_read_by_its_own_voice():
    assert speech.runs("“小王子” is yours until Mon 30 Nov.") == [
        ("zh_CN", "“小王子”"), ("en", "is yours until Mon 30 Nov.")]
    assert speech.runs("“Harry Potter”还回来了。") == [("en", "“Harry Potter”"), ("zh_CN", "还回来了。")]
    assert speech.runs("11月30日（周一）") == [("zh_CN", "11月30日（周一）")]
    assert speech.runs("  !  ") == []
    assert speech.readable("zh_CN", "请先还书") == "请先 huan2 书"


@needs_espeak
def test_mandarin_is_read_as_syllables_with_tones_not_as_english():
    """Debian's eSpeak NG 1.51: its "cmn" voice spells the pinyin out in English ("(en)")
    where "cmn-latn-pinyin" reads Mandarin syllables with their tone contours."""
    def phonemes(voice: str, text: str) -> str:
        return subprocess.run(["espeak-ng", "-q", "-x", "-v", voice, text], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert "(en)" in phonemes("cmn", "借")
    said = phonemes(speech.VOICES["zh_CN"], "你好")
    assert "(en)" not in said and "35" in said and "214" in said  # 你 before a third tone rises (ni2 hao3)
    assert "X'ua35n" in phonemes(speech.VOICES["zh_CN"], speech.readable("zh_CN", "请先还书"))  # huan2, not hai2


@needs_espeak
def test_a_title_in_the_other_script_is_said_in_one_file(tmp_path):
    path = tmp_path / "said.wav"
    speech.say_to_file(["espeak-ng"], "“Harry Potter” 还回来了。", path)
    with wave.open(str(path), "rb") as audio:
        assert audio.getnframes() > audio.getframerate() // 2


def test_the_speech_setting_is_checked():
    assert config.parse("").screen.speech == "off"
    chosen = config.parse('[screen]\nspeech = "youngest"\nspeech_grades = [1]\n').screen
    assert chosen.speech == "youngest" and chosen.speech_grades == [1]
    with pytest.raises(config.ConfigError, match="speech"):
        config.parse('[screen]\nspeech = "loud"\n')
    with pytest.raises(config.ConfigError, match="speech_grades"):
        config.parse('[screen]\nspeech_grades = [0]\n')


SLOW_PLAYER = """\
import sys, time
with open(sys.argv[1], "a", encoding="utf-8") as log:
    log.write(sys.argv[-1] + "\\n")
time.sleep(float(sys.argv[2]))
"""


def _feedback(code: str, detail: str = ""):
    from bookcorner.kiosk.session import Feedback, Words
    from bookcorner.kiosk.wording import Tone

    return Feedback(Tone.SUCCESS, (Words("en", "", detail), Words("zh_CN", "", detail)), code)


@needs_espeak
def test_a_newer_banner_cuts_the_older_one_short_and_a_missing_clip_is_said_at_run_time(clips, tmp_path):
    import time

    script, log = tmp_path / "player.py", tmp_path / "played.txt"
    script.write_text(SLOW_PLAYER, encoding="utf-8")
    screen = config.parse('[screen]\nspeech = "on"\n').screen
    slow = msgspec.structs.replace(screen, speech_player=[sys.executable, str(script), str(log), "30"])
    partial = tmp_path / "partial"
    shutil.copytree(clips, partial)
    (partial / speech.clip_file("overdue", "en")).unlink()
    speaker = speech.Speaker(slow, partial)
    try:
        started = time.monotonic()
        assert speaker.answer(_feedback("borrowed", "“西游记” is yours until Mon 30 Nov."), None)
        while not log.exists():
            time.sleep(0.01)
        quick = msgspec.structs.replace(slow, speech_player=[sys.executable, str(script), str(log), "0"])
        speaker.config = quick  # the next banner's player returns at once
        assert speaker.answer(_feedback("overdue", "“红楼梦” was due on Mon 23 Nov."), None)
        while len(log.read_text().splitlines()) < 5:
            assert time.monotonic() - started < 10, "the first banner was not cut short"
            time.sleep(0.01)
    finally:
        speaker.close()
    files = [Path(line) for line in log.read_text().splitlines()]
    assert len(files) == 5 and files[0].name == "borrowed.en.wav"  # cut short: nothing more of it
    # the overdue banner: its English clip missing, said at run time; then the detail, the Chinese clip, the detail
    assert [file.parent == partial for file in files[1:]] == [False, False, True, False]
    assert files[3].name == "overdue.zh_CN.wav"


def test_off_and_youngest_decide_who_hears():
    screen = config.parse("").screen
    assert not speech.Speaker(screen, Path("/nonexistent")).speaks_for("1-1")
    youngest = msgspec.structs.replace(screen, speech="youngest", speech_grades=[1, 2])
    speaker = speech.Speaker(youngest, Path("/nonexistent"))
    assert speaker.speaks_for("1-1") and speaker.speaks_for("二年级三班")
    assert not speaker.speaks_for("5-3") and not speaker.speaks_for(None)
    assert not speaker.answer(_feedback("borrowed", "x"), None) and list(speaker.played) == []
