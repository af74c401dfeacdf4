"""A sound for each answer: a child hears "done" or "no" without reading.

``bell``: the terminal's bell, once for done, three times for a refusal. ``command``: a
program (e.g. ``aplay -q done.wav``) started without waiting for it. ``off``: silence.
"""

from __future__ import annotations

import logging
import subprocess
from collections import deque
from collections.abc import Callable

from bookcorner.config.screen import ScreenConfig

log = logging.getLogger(__name__)

#: refusals ring more than once, so they sound different from "done"
REFUSAL_RINGS = 3


class Sounds:
    def __init__(self, config: ScreenConfig, bell: Callable[[], None],
                 later: Callable[[float, Callable[[], None]], object]) -> None:
        self.config = config
        self.bell = bell
        self.later = later
        #: what was played, newest last (for the librarian's diagnostics and for tests)
        self.played: deque[str] = deque(maxlen=50)
        self._running: list[subprocess.Popen] = []

    def play(self, kind: str | None) -> None:
        if kind is None or self.config.sound == "off":
            return
        self.played.append(kind)
        if self.config.sound == "bell":
            rings = 1 if kind == "success" else REFUSAL_RINGS
            for ring in range(rings):
                self.later(0.15 * ring, self.bell) if ring else self.bell()
            return
        command = self.config.success_command if kind == "success" else self.config.refusal_command
        if not command:
            return
        self._running = [player for player in self._running if player.poll() is None]  # reap finished ones
        try:
            self._running.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL, start_new_session=True))
        except OSError as error:
            log.warning("could not play a sound with %s: %s", command[0], error)
