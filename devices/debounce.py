"""One tap per card presentation, however many frames the reader sends.

RDM6300s repeat the frame and a PN532 reports the card on every poll while it stays on
the reader. A card is reported on its first valid frame, then suppressed until no frame of
it has been seen for the hold-off interval (per card, so a second card is never hidden).
"""

from __future__ import annotations


class Debouncer:
    def __init__(self, hold_off: float) -> None:
        self.hold_off = hold_off
        self._last_seen: dict[str, float] = {}
        self.suppressed = 0

    def tap(self, card_id: str, now: float) -> bool:
        """Record a frame for ``card_id`` at ``now``; True when it is a new tap."""
        self._forget(now)
        last = self._last_seen.get(card_id)
        self._last_seen[card_id] = now
        if last is not None and 0.0 <= now - last <= self.hold_off:
            self.suppressed += 1
            return False
        return True

    def _forget(self, now: float) -> None:
        stale = [card for card, seen in self._last_seen.items() if not 0.0 <= now - seen <= self.hold_off]
        for card in stale:
            del self._last_seen[card]
