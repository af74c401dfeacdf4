"""Telling a machine's keystrokes from a person's, from (character, time) alone.

A barcode scanner or a keyboard-style card reader types a whole line in a burst, a few
milliseconds per key, and ends it with Enter; people need 100 ms or more per key. The
same classifier serves a grabbed evdev scanner (timestamps from the kernel's events) and
keystrokes arriving in the terminal (the keyboard wedge), so both behave alike.

Rules, given a gap limit and a minimum length:
- a key more than the gap limit after the previous one ends what was pending: it is handed
  back as a :class:`Fragment` (a person's typing, or a scan broken off);
- Enter within the gap limit after at least ``min_length`` keys completes a :class:`Burst`;
- an Enter right after a burst (a scanner configured with a CR LF suffix) is swallowed, so
  a double terminator never makes an empty or a second scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FragmentReason = Literal["gap", "short", "slow-enter", "overflow", "lost-events", "unterminated"]


@dataclass(frozen=True)
class Burst:
    """A line typed by a machine: a scan, or a card number from a keyboard-style reader."""

    text: str
    started: float
    ended: float


@dataclass(frozen=True)
class Fragment:
    """Keys that are not a machine's line, in the order typed.

    ``enter`` says an Enter followed them. In the terminal these are a person's keys,
    to be handed on to the screen; from a grabbed scanner they are a broken scan.
    ``time`` is when the last of them (or the Enter) was typed.
    """

    text: str
    enter: bool
    reason: FragmentReason
    time: float = 0.0


Result = Burst | Fragment

MAX_LINE = 256


class KeystrokeClassifier:
    def __init__(self, max_gap: float, min_length: int = 1, max_length: int = MAX_LINE) -> None:
        self.max_gap = max_gap
        self.min_length = min_length
        self.max_length = max_length
        self._keys: list[str] = []
        self._started = 0.0
        self._last = 0.0
        self._burst_ended: float | None = None
        self.swallowed_terminators = 0

    @property
    def pending(self) -> str:
        return "".join(self._keys)

    def _within_gap(self, previous: float, now: float) -> bool:
        # A timestamp going backwards (the wall clock was stepped) breaks the line too:
        # dropping one scan is better than joining two.
        return 0.0 <= now - previous <= self.max_gap

    def _take(self, enter: bool, reason: FragmentReason, now: float | None = None) -> list[Result]:
        if not self._keys and not enter:
            return []
        text = self.pending
        self._keys.clear()
        return [Fragment(text, enter, reason, self._last if now is None else now)]

    def key(self, char: str, now: float) -> list[Result]:
        results: list[Result] = []
        if self._keys and not self._within_gap(self._last, now):
            results += self._take(False, "gap")
        if len(self._keys) >= self.max_length:
            results += self._take(False, "overflow")
        if not self._keys:
            self._started = now
        self._keys.append(char)
        self._last = now
        self._burst_ended = None
        return results

    def enter(self, now: float) -> list[Result]:
        if not self._keys:
            if self._burst_ended is not None and self._within_gap(self._burst_ended, now):
                self._burst_ended = now
                self.swallowed_terminators += 1
                return []
            self._burst_ended = None
            return [Fragment("", True, "slow-enter", now)]
        if not self._within_gap(self._last, now):
            self._burst_ended = None
            return self._take(True, "slow-enter", now)
        if len(self._keys) < self.min_length:
            self._burst_ended = None
            return self._take(True, "short", now)
        burst = Burst(self.pending, self._started, now)
        self._keys.clear()
        self._burst_ended = now
        return [burst]

    def expire(self, now: float) -> list[Result]:
        """Hand back pending keys once no key has followed within the gap limit."""
        if self._keys and not self._within_gap(self._last, now):
            return self._take(False, "unterminated")
        return []

    def reset(self, reason: FragmentReason = "lost-events") -> list[Result]:
        """Drop what is pending (events were lost, the device went away)."""
        self._burst_ended = None
        return self._take(False, reason)
