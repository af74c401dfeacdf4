"""What every kiosk screen shares: the top bar, the demo panel, answers, the idle countdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen

from bookcorner.kiosk.session import Feedback, VisitView
from bookcorner.kiosk.widgets.banner import Banner
from bookcorner.kiosk.widgets.countdown import Countdown
from bookcorner.kiosk.widgets.topbar import TopBar

if TYPE_CHECKING:
    from bookcorner.kiosk.app import KioskApp


class _Shared:
    """Answers, the idle countdown and relabelling, for full screens and dialogs alike."""

    #: seconds without a touch, key, scan or tap before the screen asks to end the visit
    timeout_s: int | None = None
    last_activity: float = 0.0
    _generation: int | None = None

    @property
    def kiosk(self) -> KioskApp:
        return self.app  # type: ignore[attr-defined]

    def start_countdown(self) -> None:
        self._generation = self.kiosk.language_generation
        self.touch()
        if self.timeout_s is not None:
            self.set_interval(0.25, self._tick, name="idle-countdown")  # type: ignore[attr-defined]

    def answer(self, feedback: Feedback, view: VisitView | None) -> None:
        self.touch()
        banner = self.query(Banner).first(None)  # type: ignore[attr-defined]
        if banner is not None:
            banner.show(feedback)
            self.kiosk.banner_updated(banner)

    def touch(self) -> None:
        self.last_activity = self.kiosk.monotonic()
        if self.is_mounted:  # type: ignore[attr-defined]
            for countdown in self.query(Countdown):  # type: ignore[attr-defined]
                countdown.show(None)

    def _tick(self) -> None:
        if self.timeout_s is None or self.kiosk.screen is not self:
            return
        left = self.timeout_s - (self.kiosk.monotonic() - self.last_activity)
        if left <= 0:
            self.timeout_s = None  # asked once; the controller's answer closes the screen
            self.kiosk.time_out()
            return
        shown = int(left + 0.999) if left <= self.kiosk.settings.screen.countdown_s else None
        for countdown in self.query(Countdown):  # type: ignore[attr-defined]
            countdown.show(shown)

    async def on_screen_resume(self) -> None:
        if self._generation not in (None, self.kiosk.language_generation):
            await self.relabel()

    async def relabel(self) -> None:
        """Words again, in the language just chosen."""
        self._generation = self.kiosk.language_generation
        await self.recompose()  # type: ignore[attr-defined]
        self.after_relabel()

    def after_relabel(self) -> None:
        pass


#: the rows a screen's main area needs for its roomy layout: 80x24 has 23 (22 under the
#: kiosk's top bar), fewer with the demo's codes panel (17)
ROOMY_FROM = 22


class Body(Vertical):
    """A screen's main area, between the top bar and (in the demo) the codes panel. When it
    gets fewer rows than ``roomy_from``, its screen takes the class ``-compact`` and
    kiosk.tcss drops the spacing, so that both languages of an answer still show."""

    def __init__(self, *, id: str, roomy_from: int = ROOMY_FROM) -> None:
        super().__init__(id=id)
        self.roomy_from = roomy_from

    def on_resize(self, event: events.Resize) -> None:
        self.screen.set_class(event.size.height < self.roomy_from, "-compact")


class KioskScreen(_Shared, Screen):
    """A full screen with the top bar (and, in the demo, the demo panel)."""

    def compose(self) -> ComposeResult:
        yield TopBar()
        if self.kiosk.demo_hints:
            from bookcorner.kiosk.widgets.demo import DemoPanel  # the demo only

            yield DemoPanel(self.kiosk.demo_hints)
        yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.start_countdown()


class KioskModal(_Shared, ModalScreen):
    """A dialog over a screen (the PIN, the chase list, the work record)."""

    def on_mount(self) -> None:
        self.start_countdown()
