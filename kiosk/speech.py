"""The banners spoken aloud, in Chinese and English, for children who do not read yet.

Every banner a child sees starts with words that never change ("Borrowed!", "This card
cannot be used. Please ask the librarian."): those are clips made ahead of time by
``bookcorner speech build`` (one WAV per banner and language, with a manifest). The parts
that vary (a child's first name, a book's title, a due date) are spoken by the synthesiser
at run time, after the clip. A worker thread synthesises and plays (through ALSA's
``aplay``), so the screen never waits for a voice; a newer banner cuts the older one short.

The synthesiser is Debian's eSpeak NG. Its "cmn" voice reads Chinese characters as pinyin
spelt out in English ("jie four dao four") in Debian's build (1.51); its "cmn-latn-pinyin"
voice reads them as Mandarin syllables with their tones (and the third-tone sandhi of 你好),
so that is the voice used. It guesses some characters with several readings wrong (还 as hai
where a book is returned, 一 before a third tone): the phrases of the banners are given
their reading in pinyin (``ZH_READINGS``), which the same voice reads as written.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import subprocess
import tempfile
import threading
import wave
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bookcorner.circulation.rules import Action, Reason
from bookcorner.circulation.suggestions import grade_of
from bookcorner.config.screen import ScreenConfig
from bookcorner.i18n import LANGUAGES, N_, _, in_language
from bookcorner.kiosk.wording import Message, Tone

if TYPE_CHECKING:
    from bookcorner.kiosk.session import Feedback, VisitView

log = logging.getLogger(__name__)

#: eSpeak NG's voice for each script of the text (see the module's docstring)
VOICES = {"zh_CN": "cmn-latn-pinyin", "en": "en-gb"}
#: words a minute: a little slower than eSpeak's 175, for six-year-olds
RATE = 140
MANIFEST = "manifest.json"
#: how long the synthesiser may take for one part spoken at run time
SYNTH_TIMEOUT_S = 10.0

#: readings eSpeak NG gets wrong in the banners' phrases, in pinyin with tone numbers
ZH_READINGS = {
    "还回": " huan2 回", "先还": "先 huan2 ", "还书": " huan2 书", "归还": " gui1 huan2 ", "还给": " huan2 给",
    "一本": " yi4 本", "一次": " yi2 次",
}


@dataclass(frozen=True)
class Clip:
    """The fixed words of a banner (msgids, said in each language)."""

    headline: str
    detail: str = ""

    def text(self) -> str:
        """In the active language."""
        return Message(Tone.SUCCESS, _(self.headline), _(self.detail) if self.detail else "").as_line()


#: parts said at run time: the banner's own headline or detail as shown, or the visitor's name
HEADLINE, DETAIL, NAME = "headline", "detail", "name"
Part = Clip | str

#: "welcome": a child's visit opens (their first name is said after the clip)
WELCOME = "welcome"
_ASK = N_("Please ask the librarian.")
_GIVE = N_("Please give it to the librarian.")

#: what is said for each banner (by its feedback code: an action, a reason, or the kiosk's own)
SPOKEN: dict[str, tuple[Part, ...]] = {
    WELCOME: (Clip(N_("Hello!")), NAME),
    str(Action.CHECKED_OUT): (Clip(N_("Borrowed!")), DETAIL),
    str(Action.RENEWED): (Clip(N_("Renewed!")), DETAIL),
    str(Action.CHECKED_IN): (Clip(N_("Thank you!")), DETAIL),
    str(Action.MARKED_DAMAGED): (Clip(N_("Sent to repair")), DETAIL),
    str(Action.MARKED_LOST): (Clip(N_("Marked lost")), DETAIL),
    str(Action.MARKED_FOUND): (Clip(N_("Found!")), DETAIL),
    str(Action.MARKED_REPAIRED): (Clip(N_("Back from repair")), DETAIL),
    str(Action.CARD_ENROLLED): (Clip(N_("Card enrolled")), DETAIL),
    str(Action.ITEM_REGISTERED): (Clip(N_("Book registered")), DETAIL),
    str(Reason.LIMIT_REACHED): (HEADLINE, Clip(N_("Bring one back, then you can borrow this one."))),
    str(Reason.TYPE_LIMIT_REACHED): (Clip(N_("You have enough of these already"),
                                          N_("Bring one back, then you can borrow this one.")),),
    str(Reason.OVERDUE): (Clip(N_("Please bring a book back first")), DETAIL),
    str(Reason.REFERENCE_ONLY): (Clip(N_("This book stays in the classroom")), DETAIL),
    str(Reason.NOT_LOANABLE): (Clip(N_("This book cannot be borrowed")), DETAIL),
    str(Reason.ITEM_UNKNOWN): (Clip(N_("This book is not registered"), _GIVE),),
    str(Reason.CARD_UNKNOWN): (Clip(N_("This card is not registered"), _ASK),),
    str(Reason.CARD_NOT_ACTIVE): (Clip(N_("This card cannot be used"), N_("Please ask the librarian for help.")),),
    str(Reason.PATRON_SUSPENDED): (Clip(N_("Borrowing is paused for you"), N_("Please talk to the librarian.")),),
    str(Reason.PATRON_LEFT): (Clip(N_("This card is no longer in use"), _ASK),),
    str(Reason.UNREADABLE): (Clip(N_("That did not scan well"), N_("Please try again, slowly.")),),
    str(Reason.IN_REPAIR): (Clip(N_("This book is being repaired"), _GIVE),),
    str(Reason.WITHDRAWN): (Clip(N_("This book is no longer lent"), _GIVE),),
    str(Reason.TERM_ENDED): (Clip(N_("The term is ending"), N_("Books cannot be borrowed until next term.")),),
    str(Reason.RENEWAL_LIMIT): (Clip(N_("You cannot keep it longer")), DETAIL),
    str(Reason.ALREADY_YOURS): (Clip(N_("It is already yours")), DETAIL),
    str(Reason.NOT_ON_LOAN): (Clip(N_("This book was not borrowed"), N_("Please put it back on the shelf.")),),
    str(Reason.AMBIGUOUS_COPY): (Clip(N_("Tap your card first")), DETAIL),
    str(Reason.ALREADY_ENROLLED): (Clip(N_("This card is already enrolled")), DETAIL),
    str(Reason.ALREADY_REGISTERED): (Clip(N_("This book is already registered")), DETAIL),
    str(Reason.PATRON_UNKNOWN): (Clip(N_("No such student or teacher"), N_("Choose someone from the roster.")),),
    str(Reason.TITLE_MISSING): (Clip(N_("The title is missing"), N_("A book needs at least its title.")),),
    str(Reason.NOT_ALLOWED): (Clip(N_("Only a librarian can do that")),),
    str(Reason.ALREADY_REPORTED): (Clip(N_("Already recorded"), N_("Nothing needed to change.")),),
    "not_saved": (Clip(N_("Not saved: please tell the librarian")), DETAIL),
    "pin_first": (Clip(N_("Enter the PIN first"), N_("Or tap your card again to cancel.")),),
    "no_pin": (Clip(N_("The librarian's mode is not set up")),),
}


def clip_file(code: str, language: str) -> str:
    return f"{code}.{language}.wav"


def clip_texts() -> dict[str, dict[str, str]]:
    """Every clip's words, per banner and language."""
    texts: dict[str, dict[str, str]] = {}
    for code, parts in SPOKEN.items():
        for part in parts:
            if isinstance(part, Clip):
                for language in LANGUAGES:
                    with in_language(language):
                        texts.setdefault(code, {})[language] = part.text()
    return texts


# -- the synthesiser ---------------------------------------------------------------------------


_CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uf900-\ufaff\uff00-\uffef]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def runs(text: str) -> list[tuple[str, str]]:
    """The text cut where its script changes, each run with the voice that reads it:
    Chinese characters in Mandarin, Latin letters in English, whatever the banner's language
    (an English title on a Chinese banner is read in English). Digits, spaces and marks
    go with the run they are in."""
    out: list[tuple[str, str]] = []
    voice, start = "", 0
    for index, char in enumerate(text):
        kind = "zh_CN" if _CJK.match(char) else "en" if _LATIN.match(char) else ""
        if kind and kind != voice:
            if voice:
                out.append((voice, text[start:index]))
                start = index
            voice = kind
    if text[start:].strip():
        out.append((voice or "en", text[start:]))
    return [(voice, words.strip()) for voice, words in out if any(c.isalnum() for c in words)]


def readable(voice: str, text: str) -> str:
    if voice == "zh_CN":
        for phrase, reading in ZH_READINGS.items():
            text = text.replace(phrase, reading)
    return text if not text.startswith("-") else " " + text


def synthesise(synthesiser: Sequence[str], voice: str, text: str, to: Path) -> None:
    """One run of text, in one voice, to a WAV file (raises OSError or CalledProcessError)."""
    subprocess.run([*synthesiser, "-v", VOICES[voice], "-s", str(RATE), "-w", str(to), readable(voice, text)],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=SYNTH_TIMEOUT_S)


def concatenate(parts: Sequence[Path], to: Path) -> None:
    """WAV files of the same format, one after the other, as one file."""
    with wave.open(str(to), "wb") as out:
        for index, part in enumerate(parts):
            with wave.open(str(part), "rb") as source:
                if index == 0:
                    out.setparams(source.getparams())
                out.writeframes(source.readframes(source.getnframes()))


def say_to_file(synthesiser: Sequence[str], text: str, to: Path) -> None:
    """Text in either language (or both) to one WAV file, each script in its own voice."""
    pieces = runs(text)
    if len(pieces) == 1:
        synthesise(synthesiser, *pieces[0], to)
        return
    with tempfile.TemporaryDirectory(prefix="speech-") as scratch:
        files = []
        for index, (voice, words) in enumerate(pieces):
            files.append(Path(scratch) / f"{index}.wav")
            synthesise(synthesiser, voice, words, files[-1])
        concatenate(files, to)


def frames(path: Path) -> int:
    """How many audio frames a WAV file holds (raises wave.Error or OSError if it is no WAV)."""
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes()


def build(to: Path, synthesiser: Sequence[str] = ("espeak-ng",)) -> dict:
    """Every clip, in every language, into ``to``, with its manifest; the manifest."""
    to.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([*synthesiser, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    clips: dict[str, dict[str, dict[str, str | int]]] = {}
    for code, texts in clip_texts().items():
        for language, text in texts.items():
            name = clip_file(code, language)
            say_to_file(synthesiser, text, to / name)
            clips.setdefault(code, {})[language] = {"file": name, "text": text, "frames": frames(to / name)}
    manifest = {"synthesiser": version, "voices": VOICES, "rate": RATE, "clips": clips}
    (to / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return manifest


def check(clips_dir: Path) -> list[str]:
    """What is wrong with a clip set (empty: a clip for every banner in both languages, each
    a WAV with sound in it, made from today's wording)."""
    try:
        manifest = json.loads((clips_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [_("No clip set in {dir}: make one with `bookcorner speech build --to {dir}`").format(dir=clips_dir)]
    except (OSError, ValueError) as error:
        return [_("No clip set in {dir}: {error}").format(dir=clips_dir, error=error)]
    problems = []
    for code, texts in clip_texts().items():
        for language, text in texts.items():
            entry = manifest.get("clips", {}).get(code, {}).get(language)
            if entry is None:
                problems.append(_("No clip for {code} in {language}").format(code=code, language=language))
                continue
            if entry.get("text") != text:
                problems.append(_("The clip for {code} in {language} says other words than the banner: "
                                  "build the clips again").format(code=code, language=language))
            try:
                if frames(clips_dir / entry["file"]) == 0:
                    problems.append(_("The clip {file} is silent").format(file=entry["file"]))
            except (OSError, wave.Error, EOFError) as error:
                problems.append(_("The clip {file} is not a WAV file: {error}").format(file=entry["file"], error=error))
    return problems


# -- the kiosk's voice -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    #: a clip made ahead of time (or, when it is missing, its words to say now)
    clip: Path | None
    text: str


class Speaker:
    """Says banners on a worker thread; ``say`` returns at once."""

    def __init__(self, config: ScreenConfig, clips_dir: Path,
                 popen: Callable[..., subprocess.Popen] = subprocess.Popen) -> None:
        self.config = config
        self.clips_dir = clips_dir
        self.popen = popen
        #: the files given to the player, newest last (for the librarian's diagnostics and tests)
        self.played: deque[Path] = deque(maxlen=100)
        self._queue: queue.SimpleQueue[tuple[int, tuple[_Step, ...]] | None] = queue.SimpleQueue()
        self._latest = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None
        self._said = 0

    def speaks_for(self, class_name: str | None) -> bool:
        """Whether this corner speaks to someone of this class (None: nobody known yet)."""
        if self.config.speech == "off":
            return False
        if self.config.speech == "on":
            return True
        grade = grade_of(class_name)
        return grade is not None and grade in self.config.speech_grades

    def answer(self, feedback: Feedback, view: VisitView | None) -> bool:
        """Say an answer's banner; whether anything is said."""
        if not self.speaks_for(view.class_name if view is not None else feedback.class_name):
            return False
        parts = SPOKEN.get(feedback.code)
        if parts is None:
            return False
        shown = {words.language: words for words in feedback.words}
        steps = []
        for language, words in shown.items():
            for part in parts:
                if isinstance(part, Clip):
                    with in_language(language):
                        steps.append(_Step(self.clips_dir / clip_file(feedback.code, language), part.text()))
                elif part == NAME:
                    steps.append(_Step(None, view.greeting if view is not None else ""))
                else:
                    steps.append(_Step(None, words.headline if part == HEADLINE else words.detail))
        return self._say(steps)

    def welcome(self, view: VisitView, languages: Sequence[str]) -> bool:
        """Greet a child by their first name when their visit opens."""
        if not self.speaks_for(view.class_name):
            return False
        steps = []
        for language in languages:
            with in_language(language):
                steps.append(_Step(self.clips_dir / clip_file(WELCOME, language), Clip(N_("Hello!")).text()))
            steps.append(_Step(None, view.greeting))
        return self._say(steps)

    def _say(self, steps: list[_Step]) -> bool:
        steps = [step for step in steps if step.clip is not None or step.text.strip()]
        if not steps:
            return False
        with self._lock:
            self._latest += 1
            generation = self._latest
            if self._thread is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="bookcorner-speech-")
                self._thread = threading.Thread(target=self._work, name="speech", daemon=True)
                self._thread.start()
        self._queue.put((generation, tuple(steps)))
        return True

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._latest += 1
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    # -- the worker thread ---------------------------------------------------------------------

    def _current(self, generation: int) -> bool:
        return generation == self._latest

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            generation, steps = item
            for step in steps:
                if not self._current(generation):
                    break
                try:
                    self._play(self._file_for(step), generation)
                except (OSError, subprocess.SubprocessError) as error:
                    log.warning("could not say %r: %s", step.text, error)

    def _file_for(self, step: _Step) -> Path:
        if step.clip is not None and step.clip.is_file():
            return step.clip
        if step.clip is not None:
            log.warning("no clip %s (run bookcorner speech build): saying it now", step.clip)
        assert self._scratch is not None
        self._said += 1
        path = Path(self._scratch.name) / f"said-{self._said % 8}.wav"
        say_to_file(self.config.speech_synthesiser, step.text, path)
        return path

    def _play(self, path: Path, generation: int) -> None:
        self.played.append(path)
        player = self.popen([*self.config.speech_player, str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while True:
            try:
                player.wait(timeout=0.05)
                return
            except subprocess.TimeoutExpired:
                if not self._current(generation):  # a newer banner: this one stops
                    player.kill()
                    player.wait()
                    return
