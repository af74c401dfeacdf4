"""The idle screen: "tap your card", the rotation slot, the clock and the sync badge.

A book scanned here goes back (a quick return, no card needed) and the answer names the
child it was returned for; it disappears after a few seconds.
"""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Center
from textual.timer import Timer
from textual.widgets import Static

from bookcorner.circulation.timetable import Timetable
from bookcorner.i18n import N_, _
from bookcorner.kiosk.screens.base import Body, KioskScreen
from bookcorner.kiosk.session import ClassChallenge, Feedback, VisitView
from bookcorner.kiosk.widgets import in_each_language, pair
from bookcorner.kiosk.widgets.banner import Banner


def slot_words(timetable: Timetable | None, now: datetime, bilingual: bool) -> list[str]:
    """Whose borrowing time it is, in each language shown."""
    slot = timetable.slot_at(now) if timetable is not None else None

    def words() -> str:
        if slot is None:
            return _("Free borrowing: every class may borrow now")
        return _("Class {klass}'s borrowing time, until {end}").format(klass=slot.class_name, end=f"{slot.end:%H:%M}")

    return in_each_language(bilingual, words)


def picks_words(titles: tuple[str, ...], bilingual: bool) -> str:
    """"This week's picks" for the class on duty: a heading in each language, the titles."""
    if not titles:
        return ""
    return " · ".join(pair(N_("This week's picks:"), bilingual)) + "\n" + "   ".join(f"• {t}" for t in titles)


def class_challenge_words(progress: tuple[ClassChallenge, ...], bilingual: bool) -> str:
    """The class on duty's reading challenges: how many of its children reached the goal."""
    def line(one: ClassChallenge) -> str:
        return " · ".join(in_each_language(bilingual, lambda: _(
            "{name}: {reached} of {children} in class {klass} reached the goal").format(
                name=one.name, reached=one.reached, children=one.children, klass=one.class_name)))

    return "\n".join(line(one) for one in progress)


class IdleScreen(KioskScreen):
    """Waiting for a card (or a book to take back)."""

    def compose_body(self) -> ComposeResult:
        bilingual = self.kiosk.settings.screen.bilingual
        with Body(id="idle"):
            with Center():
                yield Static("\n".join(pair(N_("Tap your card"), bilingual)), id="prompt")
            yield Static("\n".join(pair(N_("To give a book back, just scan it. No card needed."), bilingual)),
                         id="return-hint")
            yield Static("", id="slot")
            yield Static("", id="picks")
            yield Static("", id="class-challenge")
            yield Banner(id="idle-banner")

    def on_mount(self) -> None:
        super().on_mount()
        self.show_slot()
        self.set_interval(5.0, self.show_slot, name="slot")
        self._hide_timer: Timer | None = None

    def after_relabel(self) -> None:
        self.show_slot()

    def show_slot(self) -> None:
        timetable, now = self.kiosk.timetable, self.kiosk.clock.now()
        words = slot_words(timetable, now, self.kiosk.settings.screen.bilingual)
        self.query_one("#slot", Static).update(" · ".join(words))
        slot = timetable.slot_at(now) if timetable is not None else None
        picks = self.kiosk.weekly_picks(slot.class_name) if slot is not None else ()
        shown = self.query_one("#picks", Static)
        shown.update(picks_words(picks, self.kiosk.settings.screen.bilingual))
        shown.display = bool(picks)
        progress = self.kiosk.controller.class_challenges(slot.class_name) if slot is not None else ()
        challenge = self.query_one("#class-challenge", Static)
        challenge.update(class_challenge_words(progress, self.kiosk.settings.screen.bilingual))
        challenge.display = bool(progress)

    def answer(self, feedback: Feedback, view: VisitView | None) -> None:
        super().answer(feedback, view)
        if self._hide_timer is not None:
            self._hide_timer.stop()
        self._hide_timer = self.set_timer(self.kiosk.settings.screen.banner_s, self.clear_banner)

    def clear_banner(self) -> None:
        self.query_one(Banner).clear()
