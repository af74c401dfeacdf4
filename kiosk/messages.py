"""The messages the kiosk's screen passes around (small dataclasses, posted from threads).

Device readers and the desk worker run on their own threads; they only ever
``post_message`` these (thread-safe), and the screen's thread does the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from bookcorner.devices.events import DeviceEvent
from bookcorner.kiosk import session
from bookcorner.sync.status import SyncStatus


@dataclass
class DeviceInput(Message):
    """A scan, a card tap or a device status, as the device layer delivered it."""

    event: DeviceEvent


@dataclass
class DeskAnswered(Message):
    """What the session controller made of one command."""

    outcome: session.Outcome
    #: when the scan or tap that caused it was complete (time.monotonic), for latency
    started: float | None = None


@dataclass
class DeskIdle(Message):
    """The desk worker finished a command (tests and benchmarks wait for this)."""


@dataclass
class SyncStatusRead(Message):
    """The sync daemon's status file, read in a worker, and how far the journal is."""

    status: SyncStatus
    last_seq: int


@dataclass
class SyncRequested(Message):
    """The "sync now" request was written (or could not be: ``error``)."""

    error: str = ""


@dataclass
class Activity(Message):
    """Someone touched the screen or pressed a key: a session's idle countdown restarts."""


@dataclass
class WedgeTick(Message):
    """Time for the keyboard wedge to hand back a person's keys. Posted rather than called,
    so that keys already waiting in the queue are seen first (a slow frame must not cut a
    scan in two); ``time`` (when it was posted) is the "now" it is judged by."""
