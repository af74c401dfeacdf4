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


# -- what the desk answered: one message per kind of session outcome --------------------
#
# The session controller stays free of Textual (its outcomes are plain dataclasses, so tests and
# benchmarks drive it without an app); the desk worker wraps each outcome in the message of its
# kind (``desk_message``), and the app handles each kind with its own ``@on(...)`` method.


@dataclass
class DeskOutcome(Message):
    """What the session controller made of one command (each kind of outcome is a subclass)."""

    outcome: session.Outcome
    #: when the scan or tap that caused it was complete (time.monotonic), for latency
    started: float | None = None


@dataclass
class Answered(DeskOutcome):
    outcome: session.Answer


@dataclass
class VisitOpened(DeskOutcome):
    outcome: session.VisitOpened


@dataclass
class VisitChanged(DeskOutcome):
    outcome: session.VisitChanged


@dataclass
class VisitClosed(DeskOutcome):
    outcome: session.VisitClosed


@dataclass
class PinWanted(DeskOutcome):
    outcome: session.PinWanted


@dataclass
class PinRefused(DeskOutcome):
    outcome: session.PinRefused


@dataclass
class CardToEnrol(DeskOutcome):
    outcome: session.CardToEnrol


@dataclass
class BookToRegister(DeskOutcome):
    outcome: session.BookToRegister


@dataclass
class ChaseListReady(DeskOutcome):
    outcome: session.ChaseListReady


@dataclass
class WorkRecordReady(DeskOutcome):
    outcome: session.WorkRecordReady


@dataclass
class UnsentReady(DeskOutcome):
    outcome: session.UnsentReady


@dataclass
class TroubleReading(DeskOutcome):
    outcome: session.TroubleReading


@dataclass
class StocktakeShown(DeskOutcome):
    outcome: session.StocktakeShown


@dataclass
class DeskReady(DeskOutcome):
    outcome: session.Ready


@dataclass
class StartFailed(DeskOutcome):
    outcome: session.StartFailed


#: the message of each kind of outcome
MESSAGE_OF: dict[type, type[DeskOutcome]] = {
    session.Answer: Answered, session.VisitOpened: VisitOpened, session.VisitChanged: VisitChanged,
    session.VisitClosed: VisitClosed, session.PinWanted: PinWanted, session.PinRefused: PinRefused,
    session.CardToEnrol: CardToEnrol, session.BookToRegister: BookToRegister,
    session.ChaseListReady: ChaseListReady, session.WorkRecordReady: WorkRecordReady,
    session.UnsentReady: UnsentReady, session.TroubleReading: TroubleReading, session.Ready: DeskReady,
    session.StartFailed: StartFailed, session.StocktakeShown: StocktakeShown,
}


def desk_message(outcome: session.Outcome, started: float | None = None) -> DeskOutcome:
    """The outcome as the message the screen's thread handles (posted from the desk worker)."""
    return MESSAGE_OF[type(outcome)](outcome, started)


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
