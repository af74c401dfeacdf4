"""The end of a session, counted down so a child is never surprised."""

from __future__ import annotations

from textual.widgets import Static

from i18n import _


class Countdown(Static):
    """'Ending in 7 s': shown only during the last seconds of a session."""

    DEFAULT_CSS = """
    Countdown { width: auto; padding: 0 2; color: $warning; text-style: bold; display: none; }
    Countdown.-shown { display: block; }
    """

    def show(self, seconds: int | None) -> None:
        self.set_class(seconds is not None, "-shown")
        self.update(_("Ending in {seconds} s … scan or touch to stay").format(seconds=seconds)
                    if seconds is not None else "")
