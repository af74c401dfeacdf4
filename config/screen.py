"""The ``[screen]`` and ``[librarian]`` sections of the kiosk configuration.

They live in ``config`` (not in ``kiosk``, the screen that reads them) so that the
configuration depends on nothing above it: the kiosk imports ``config``, never the other way. ``config/kiosk.example.toml`` documents every option.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Seconds = Annotated[int, msgspec.Meta(ge=1, le=86_400)]
Command = list[str]
Grade = Annotated[int, msgspec.Meta(ge=1, le=12)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ScreenConfig(_Section):
    #: seconds without a scan, tap or touch before a child's session ends
    session_timeout_s: Seconds = 30
    #: the last seconds of a session are counted down on screen
    countdown_s: Seconds = 10
    #: how long an answer stays on the idle screen (a quick return, an unknown card)
    banner_s: Seconds = 6
    #: the children's banners in both Chinese and English (false on the bare Linux console,
    #: which cannot draw Chinese)
    bilingual: bool = True
    #: "textual-dark", "textual-light", or "ansi-dark" for the bare Linux console (16 colours)
    theme: Literal["textual-dark", "textual-light", "ansi-dark"] = "textual-dark"
    #: "off"; "bell" (the terminal bell: one ring for done, three for a refusal); or
    #: "command" (run success_command / refusal_command, e.g. aplay with a sound file)
    sound: Literal["off", "bell", "command"] = "bell"
    success_command: Command = msgspec.field(default_factory=list)
    refusal_command: Command = msgspec.field(default_factory=list)
    #: the banners spoken aloud, in Chinese and English: "off"; "on" (for everyone); or
    #: "youngest" (only for children whose class is in one of ``speech_grades``)
    speech: Literal["off", "on", "youngest"] = "off"
    #: the grades "youngest" speaks for (a class's grade is the number its name starts with:
    #: "1-2", "1年级2班", "一年级二班" are grade 1)
    speech_grades: list[Grade] = msgspec.field(default_factory=lambda: [1, 2])
    #: the clips made ahead of time by ``bookcorner speech build`` (empty: DATA_DIR/speech)
    speech_clips: str = ""
    #: what plays a clip (the clip's path is added at the end)
    speech_player: Command = msgspec.field(default_factory=lambda: ["aplay", "-q"])
    #: what speaks the parts no clip can cover (a child's name, a book's title, a date) at run
    #: time: eSpeak NG, with its voice and the WAV file to write added (-v VOICE -w FILE TEXT)
    speech_synthesiser: Command = msgspec.field(default_factory=lambda: ["espeak-ng"])


class LibrarianConfig(_Section):
    #: the librarian's PIN, hashed (``bookcorner librarian set-pin`` writes it); empty: the
    #: librarian's mode stays closed
    pin_hash: str = ""
    #: wrong PINs in a row before the librarian's mode locks ...
    max_tries: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    #: ... for this many seconds
    lockout_s: Seconds = 300
    #: the librarian's mode closes after this long without a touch, scan or tap
    session_timeout_s: Seconds = 180
    #: what "shut down" runs; empty: the kiosk only stops (and systemd does not restart it)
    shutdown_command: Command = msgspec.field(default_factory=lambda: ["systemctl", "poweroff"])
