"""The end of a session, counted down so a child is never surprised."""

from __future__ import annotations

from textual.widgets import Static

from bookcorner.i18n import _
from bookcorner.kiosk.widgets import in_each_language


class Countdown(Static):
    """'Ending in 7 s': shown only during the last seconds of a session (in both languages
    on a bilingual screen)."""

    DEFAULT_CSS = """
    Countdown { width: auto; padding: 0 2; color: $warning; text-style: bold; display: none; }
    Countdown.-shown { display: block; }
    """

    def __init__(self, bilingual: bool = False) -> None:
        super().__init__()
        self.bilingual = bilingual

    def show(self, seconds: int | None) -> None:
        self.set_class(seconds is not None, "-shown")
        if seconds is None:
            self.update("")
            return
        self.update(" · ".join(in_each_language(
            self.bilingual, lambda: _("Ending in {seconds} s … scan or touch to stay").format(seconds=seconds))))
