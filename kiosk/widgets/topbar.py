"""The strip along the top of every screen: the corner, the time, the sync badge and any
device that needs attention. The badge is always there, so the librarian sees at a
glance whether the day's log has reached the server."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from bookcorner.i18n import _
from bookcorner.kiosk.wording import format_date
from bookcorner.sync.status import Phase, SyncStatus

if TYPE_CHECKING:
    from bookcorner.kiosk.app import KioskApp


def when(moment: str | None, now: datetime) -> str:
    """'12:50' today, else 'Mon 23 Nov 12:50'; '' for never."""
    if not moment:
        return ""
    try:
        at = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if now.tzinfo is not None and at.tzinfo is not None:
        at = at.astimezone(now.tzinfo)
    if at.date() == now.date():
        return f"{at:%H:%M}"
    return f"{format_date(at.date())} {at:%H:%M}"


def badge(status: SyncStatus, last_seq: int, now: datetime) -> tuple[str, str]:
    """The badge's state (a CSS class) and words."""
    waiting = status.waiting(last_seq)
    last = when(status.last_success, now)
    if status.phase is Phase.SYNCING:
        progress = f" {status.sent}/{status.to_send}" if status.to_send else ""
        return "syncing", _("● syncing{progress}").format(progress=progress)
    if status.phase is Phase.IDLE:
        state = "online" if not waiting else "waiting"
        words = _("● online")
    elif status.phase is Phase.OFFLINE:
        state, words = "offline", _("● offline")
    elif status.phase is Phase.BUSY:
        state, words = "waiting", _("● server busy, retrying")
    elif status.phase is Phase.ERROR:
        state, words = "error", _("● sync problem")
    else:
        state, words = "never", _("● not synced yet")
    parts = [words, _("{count} waiting").format(count=waiting)]
    if last:
        parts.append(_("synced {when}").format(when=last))
    return state, " · ".join(parts)


class SyncBadge(Static):
    """Online or offline, events not yet on the server, the last successful sync."""

    DEFAULT_CSS = """
    SyncBadge { width: auto; padding: 0 1; }
    SyncBadge.-online { color: $success; }
    SyncBadge.-syncing { color: $accent; }
    SyncBadge.-waiting { color: $warning; }
    SyncBadge.-offline { color: $warning; }
    SyncBadge.-never { color: $text-muted; }
    SyncBadge.-error { color: $error; text-style: bold; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "sync_state", self._show, init=True)

    def _show(self, state: tuple[SyncStatus, int] | None) -> None:
        if state is None:
            self.update(_("● sync status unknown"))
            return
        status, last_seq = state
        css, words = badge(status, last_seq, cast("KioskApp", self.app).clock.now())
        self.set_classes(f"-{css}")
        self.update(words)


class DeviceAlert(Static):
    """A scanner or card reader that is unplugged or in trouble (hidden when all is well)."""

    DEFAULT_CSS = """
    DeviceAlert { width: auto; padding: 0 1; color: $error; text-style: bold; display: none; }
    DeviceAlert.-shown { display: block; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "device_alerts", self._show, init=True)

    def _show(self, alerts: tuple[str, ...]) -> None:
        self.set_class(bool(alerts), "-shown")
        self.update(" · ".join(alerts))


class ClockLabel(Static):
    """Today's date and the time, by the kiosk's clock."""

    DEFAULT_CSS = """
    ClockLabel { width: auto; padding: 0 1; text-style: bold; }
    """

    def on_mount(self) -> None:
        self.tick()
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        now = cast("KioskApp", self.app).clock.now()
        self.update(f"{format_date(now.date())} {now:%H:%M}")


class TopBar(Horizontal):
    """The corner's name on the left; devices, sync and the clock on the right."""

    DEFAULT_CSS = """
    TopBar { height: 1; dock: top; background: $panel; }
    TopBar #corner { width: 1fr; padding: 0 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static(cast("KioskApp", self.app).corner_name, id="corner")
        yield DeviceAlert()
        yield SyncBadge()
        yield ClockLabel()
