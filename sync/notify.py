"""Telling systemd how the sync daemon is doing (sd_notify), without a dependency.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a unix datagram socket; a
leading ``@`` means the abstract namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC``.
The daemon says ``READY=1`` once it runs, ``WATCHDOG=1`` at least every half watchdog
interval while its loop turns, and ``STOPPING=1`` on its way out. Outside systemd (no
socket in the environment) every call does nothing, so the daemon behaves the same in a
terminal and in the tests.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; False when not run by systemd or
    the message could not be sent (never raises: systemd's view must not stop the daemon)."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    elif address[0] != "/":
        log.warning("NOTIFY_SOCKET %r is not a unix socket path; not notifying systemd", address)
        return False
    try:
        # non-blocking: a notify socket that is not read (its queue full) must not stop the daemon
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as error:
        log.warning("cannot notify systemd (%s): %s", state.split("=", 1)[0], error)
        return False
    return True


class Watchdog:
    """``WATCHDOG=1`` pings, at most every half of systemd's watchdog interval."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.every_s: float | None = None
        usec = self.environ.get("WATCHDOG_USEC", "")
        pid = self.environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.every_s = int(usec) / 2_000_000
        self._last = float("-inf")

    def ready(self) -> bool:
        return notify("READY=1", self.environ)

    def stopping(self) -> bool:
        return notify("STOPPING=1", self.environ)

    def hold_off(self, seconds: float) -> bool:
        """Give a start-up ``seconds`` before the watchdog may fire (``WATCHDOG_USEC=``, systemd
        236 and later): under ``Type=idle`` or ``simple`` the watchdog counts from the exec, and a
        start slower than the interval (a loaded machine, a slow SD card, a big journal after a
        power cut) would be killed and started again, slower still, for ever. :meth:`resume`
        puts the unit's own interval back once the loop that pings runs."""
        if self.every_s is None:
            return False
        return notify(f"WATCHDOG_USEC={int(seconds * 1_000_000)}", self.environ)

    def resume(self) -> bool:
        """The unit's own interval again (after :meth:`hold_off`), and a ping."""
        if self.every_s is None:
            return False
        restored = notify(f"WATCHDOG_USEC={self.environ['WATCHDOG_USEC']}", self.environ)
        self._last = float("-inf")
        return self.ping() and restored

    def ping(self) -> bool:
        """A ping if one is due (cheap to call on every turn of a loop)."""
        if self.every_s is None:
            return False
        now = time.monotonic()
        if now - self._last < self.every_s:
            return False
        self._last = now
        return notify("WATCHDOG=1", self.environ)
