"""The keyboard wedge: scanners and card readers that arrive as keystrokes in the terminal.

The kiosk feeds every printable key and Enter here with the time it arrived, and calls
:meth:`KeyboardWedge.expire` on a timer (every ``max_key_gap``). Machine bursts become
:class:`Scan` or :class:`CardTap` events on the sink, exactly as from a grabbed device;
a person's keys come back as :class:`Fragment` values, to be handed on to the screen
(at most one gap limit later than typed).

A burst matching ``wedge.card_pattern`` (default: exactly 10 digits, what keyboard-style
125 kHz readers type) is a card; anything else is a scan.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from bookcorner.devices.cardid import typed_card_id
from bookcorner.devices.config import DevicesConfig
from bookcorner.devices.debounce import Debouncer
from bookcorner.devices.events import CardTap, Scan, Sink
from bookcorner.devices.keystrokes import Burst, Fragment, KeystrokeClassifier, Result

SOURCE = "wedge:terminal"


class KeyboardWedge:
    def __init__(self, config: DevicesConfig, sink: Sink, source: str = SOURCE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.sink = sink
        self.source = source
        self.clock = clock
        self.classifier = KeystrokeClassifier(config.max_key_gap, config.wedge.min_length)
        self.card_pattern = re.compile(config.wedge.card_pattern) if config.wedge.card_pattern else None
        self.debouncer = Debouncer(config.card_hold_off)

    @property
    def holding(self) -> bool:
        """Keys are held back, waiting to see whether they are a burst."""
        return bool(self.classifier.pending)

    def key(self, char: str, now: float | None = None) -> list[Fragment]:
        return self._handle(self.classifier.key(char, self._now(now)))

    def enter(self, now: float | None = None) -> list[Fragment]:
        return self._handle(self.classifier.enter(self._now(now)))

    def expire(self, now: float | None = None) -> list[Fragment]:
        return self._handle(self.classifier.expire(self._now(now)))

    def release(self, enter: bool = False, now: float | None = None) -> list[Fragment]:
        """Hand back the keys held, as a person's typing, however fast they came: for a field
        that takes keys at any speed (a PIN pasted or typed by a password manager). ``enter``:
        an Enter followed them."""
        held = self.classifier.pending
        self.classifier.reset()
        return [Fragment(held, enter, "short", self._now(now))] if held or enter else []

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def _handle(self, results: list[Result]) -> list[Fragment]:
        handed_back = []
        for result in results:
            if isinstance(result, Burst):
                event = self._event(result)
                if event is not None:
                    self.sink(event)
            else:
                handed_back.append(result)
        return handed_back

    def _event(self, burst: Burst) -> Scan | CardTap | None:
        if self.card_pattern is not None and self.card_pattern.search(burst.text):
            card_id = typed_card_id(burst.text, self.config.wedge.card_format, self.config.card_id_format)
            if card_id is not None:
                # The same card typed again within the hold-off is still one tap.
                return CardTap(card_id, self.source, burst.ended) if self.debouncer.tap(card_id, burst.ended) else None
        return Scan(burst.text, self.source, burst.ended)
