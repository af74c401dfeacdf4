"""The circulation desk: where a scan becomes a decision, a durable record, an answer.

It holds the reference snapshot, the circulation state projected from it and the
journal, and the clock. Every operation asks the pure rules for a decision, appends the
decision's events to the journal (durable when ``append`` returns) and only then updates
the state and returns: the UI says "done" only for what is on disk. The same desk serves
the Textual kiosk and ``bookcorner circ``.
"""

from __future__ import annotations

import logging
import shlex
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bookcorner.circulation import rules
from bookcorner.circulation.calendar import SchoolCalendar
from bookcorner.circulation.codes import CodeKind, ScannedCode, Source, classify
from bookcorner.circulation.events import Event, EventDraft, EventType
from bookcorner.circulation.model import ItemType, Patron
from bookcorner.circulation.policy import Policy
from bookcorner.circulation.reference import Reference, covered_seq, with_local_additions
from bookcorner.circulation.rules import Ambiguity, Decision, Identified
from bookcorner.circulation.state import CirculationState, Loan, apply, project
from bookcorner.i18n import _
from bookcorner.journal.clock import ClockReading
from bookcorner.journal.incarnation import Incarnation, Reason
from bookcorner.journal.incarnation import load as load_incarnation
from bookcorner.journal.journal import Journal, JournalReader
from bookcorner.journal.snapshot import NoReferenceData, ReferenceStore
from bookcorner.journal.storage import StoreError, StoreWriteError
from bookcorner.kiosk.checkpoint import Checkpoint, CheckpointStore
from bookcorner.sync.status import STATUS_FILE, read_status, request_sync

log = logging.getLogger(__name__)

_ADDITIONS = frozenset({EventType.CARD_ENROLLED, EventType.ITEM_REGISTERED})


class DeskClock(Protocol):
    def now(self) -> datetime: ...

    def read(self) -> ClockReading: ...


@dataclass(frozen=True)
class DataPaths:
    """The layout of a kiosk's data directory (on a writable partition)."""

    root: Path

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def sync(self) -> Path:
        return self.root / "sync"

    @property
    def state(self) -> Path:
        return self.root / "state"


@dataclass(frozen=True)
class Recorded:
    """A decision and the events that made it durable (none for a no-op)."""

    decision: Decision
    events: tuple[Event, ...] = ()

    @property
    def ok(self) -> bool:
        return self.decision.ok


@dataclass(frozen=True)
class PatronView:
    patron: Patron
    loans: tuple[Loan, ...]
    allowance: rules.Allowance


def no_reference_data(root: Path) -> str:
    """What to do about a data directory with no roster or catalogue: a command that loads
    the demo school into this very directory (``bookcorner demo`` alone uses ./demo-data)."""
    return _("No roster or catalogue in {path} yet: sync with the server, or load the demo school "
             "into it with `bookcorner demo --load-only --data-dir {quoted}`").format(
        path=root, quoted=shlex.quote(str(root)))


class ReadOnlyJournal:
    """The journal as another process sees it while the kiosk writes it: no lock, whole
    records only. For commands that only look (``bookcorner circ status``), so that they
    work while the kiosk runs; anything that would record is refused."""

    def __init__(self, directory: Path) -> None:
        self.reader = JournalReader(directory)

    @property
    def last_seq(self) -> int:
        return self.reader.last_seq()

    def events_after(self, seq: int) -> Iterator[Event]:
        return self.reader.events_after(seq)

    @property
    def incarnation(self) -> Incarnation:
        """As the writer named it; for a journal no writer of this version has opened yet,
        what the writer would name it (journal.incarnation.ensure), without writing it."""
        found = load_incarnation(self.reader.directory)
        if found is not None:
            return found
        return Incarnation.first(1, bool(self.reader.segments()))

    def append(self, drafts: Sequence[EventDraft]) -> list[Event]:
        raise StoreWriteError(_("this command only looks: it records nothing"))

    def close(self) -> None:
        pass


class CirculationDesk:
    def __init__(
        self,
        data_dir: str | Path,
        kiosk_id: str,
        clock: DeskClock,
        *,
        segment_events: int = 256,
        repair: bool = False,
        policy: Policy | None = None,
        calendar: SchoolCalendar | None = None,
        read_only: bool = False,
    ) -> None:
        self.paths = DataPaths(Path(data_dir))
        self.kiosk_id = kiosk_id
        self.clock = clock
        #: the kiosk's own rules, when its configuration has them (no central server)
        self._policy, self._calendar = policy, calendar
        self.references = ReferenceStore(self.paths.reference)
        try:
            loaded = self.references.load()
        except NoReferenceData as error:
            raise NoReferenceData(no_reference_data(self.paths.root)) from error
        self.reference_damage = loaded.damage
        self.reference_version = loaded.version
        self.school = loaded.school
        self._reference_stamp = self.references.stamp()
        self._status_stamp: int | None = None
        #: the writer's journal (its lock held until ``close``), or a reader's view (``read_only``)
        self.journal: Journal | ReadOnlyJournal = (
            ReadOnlyJournal(self.paths.journal) if read_only
            else Journal(self.paths.journal, kiosk_id, clock, segment_events=segment_events, repair=repair))
        #: the snapshot with this kiosk's configured rules: what the state is projected from
        self.snapshot: Reference = self._localised(loaded.reference)
        self.checkpoints = CheckpointStore(self.paths.state)
        self._checkpoint_every = segment_events
        self.state: CirculationState = self._rebuild()
        #: what scans are decided with: the snapshot plus cards and books added here
        self.reference: Reference = self._effective()
        self._checkpointed_seq = self.state.last_seq
        #: the newest event's id, named by the next checkpoint (set as events are recorded)
        self._last_event_id = ""

    # -- reference data ----------------------------------------------------------------------

    def follow_sync(self) -> bool:
        """When the sync daemon found the server ahead of this journal incarnation (it went
        back in time without a restore: files copied back), go on as a new incarnation so
        that the next events are never taken for the ones the server has. True if it did."""
        try:
            stamp = (self.paths.sync / STATUS_FILE).stat().st_mtime_ns
        except OSError:
            return False
        if stamp == self._status_stamp or not isinstance(self.journal, Journal):  # a reader never begins one
            return False
        self._status_stamp = stamp
        status = read_status(self.paths.root)
        if status.journal_notice != Reason.WENT_BACK or status.incarnation != self.journal.incarnation.incarnation_id:
            return False
        self.journal.begin_incarnation(Reason.WENT_BACK)
        request_sync(self.paths.root)
        return True

    def refresh_reference(self) -> bool:
        """Take up a new snapshot the sync daemon wrote; True if there was one."""
        stamp = self.references.stamp()
        if stamp == self._reference_stamp:
            return False
        loaded = self.references.load()
        self.snapshot, self.reference_version = self._localised(loaded.reference), loaded.version
        self.reference_damage = loaded.damage
        self._reference_stamp = stamp
        self.state = self._rebuild()
        self.reference = self._effective()
        return True

    def _effective(self) -> Reference:
        return with_local_additions(self.snapshot, self.state.enrolled_cards, self.state.registered_items)

    def _rebuild(self) -> CirculationState:
        """The state: from the checkpoint when it can be trusted, else from the snapshot,
        plus the journal's events after it."""
        checkpoint = self.checkpoints.load()
        if checkpoint is not None and self._trust(checkpoint):
            state = checkpoint.state
            for event in self.journal.events_after(state.last_seq):
                state = apply(state, event)
            return state
        covered = self.covered_seq
        return project(self.snapshot, self.journal.events_after(covered), covered)

    @property
    def covered_seq(self) -> int:
        """The journal's last event the snapshot's loans already reflect (in this incarnation)."""
        journal = self.journal.incarnation
        return covered_seq(self.snapshot, journal.incarnation_id, journal.since_seq,
                           journal.reason is Reason.UPGRADED)

    def _trust(self, checkpoint: Checkpoint) -> bool:
        if checkpoint.reference_version != self.reference_version:
            return False
        covered = self.covered_seq
        if checkpoint.applied_seq != covered:
            return False
        seq = checkpoint.state.last_seq
        if seq == covered:
            return True
        if seq > self.journal.last_seq:
            return False
        named = next(iter(self.journal.events_after(seq - 1)), None)
        return named is not None and named.seq == seq and named.event_id == checkpoint.last_event_id

    def _checkpoint(self, last_event_id: str) -> None:
        """Save the state (an optimisation: a failure is logged, never shown to a child)."""
        try:
            self.checkpoints.save(self.state, self.reference_version, self.covered_seq, last_event_id)
            self._checkpointed_seq = self.state.last_seq
        except (StoreError, OSError) as error:
            log.warning("could not save the state checkpoint: %s", error)

    def _localised(self, reference: Reference) -> Reference:
        if self._policy is not None:
            reference = replace(reference, policy=self._policy)
        if self._calendar is not None:
            reference = replace(reference, calendar=self._calendar)
        return reference

    # -- what a scan is ----------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def classify(self, raw: str, source: Source = Source.SCANNER) -> ScannedCode:
        return classify(raw, self.reference, source)

    def identify(self, raw: str, source: Source = Source.CARD_READER) -> Identified | Recorded:
        """A card tap: who it is, or a recorded refusal (unknown or inactive card)."""
        outcome = rules.identify(self.reference, self.classify(raw, source))
        if isinstance(outcome, Identified):
            return outcome
        return self._record(outcome)

    # -- circulation -------------------------------------------------------------------------

    def checkout(self, who: Identified, raw: str, source: Source = Source.SCANNER) -> Recorded:
        return self._record(rules.checkout(self.reference, self.state, who, self.classify(raw, source), self.now()))

    def checkin(
        self,
        raw: str,
        who: Identified | None = None,
        ambiguity: Ambiguity = Ambiguity.REFUSE,
        source: Source = Source.SCANNER,
        handled_by: Identified | None = None,
    ) -> Recorded:
        scanned = self.classify(raw, source)
        return self._record(rules.checkin(self.reference, self.state, scanned, self.now(), who, ambiguity,
                                            handled_by))

    def checkin_item(self, item_id: str, handled_by: Identified) -> Recorded:
        """A copy named by its item id taken back (a stock-take found it on the shelf: its
        shared ISBN says nothing of which copy it is, the stock-take does)."""
        scanned = ScannedCode(item_id, item_id, CodeKind.ITEM, item_ids=(item_id,))
        return self._record(rules.checkin(self.reference, self.state, scanned, self.now(), None, Ambiguity.REFUSE,
                                            handled_by))

    def report_damaged(self, who: Identified, raw: str, note: str = "") -> Recorded:
        return self._record(rules.report_damaged(self.reference, self.state, who, self.classify(raw), self.now(), note))

    def report_lost(self, who: Identified, raw: str, note: str = "") -> Recorded:
        return self._record(rules.report_lost(self.reference, self.state, who, self.classify(raw), self.now(), note))

    def report_found(self, who: Identified, raw: str, note: str = "") -> Recorded:
        return self._record(rules.report_found(self.reference, self.state, who, self.classify(raw), self.now(), note))

    def enrol_card(self, who: Identified, raw_card: str, patron_id: str, *, replace_other_cards: bool = False,
                   source: Source = Source.CARD_READER) -> Recorded:
        """The librarian gives a card nobody had to a patron; it works at once, offline."""
        card = self.classify(raw_card, source)
        return self._record(rules.enrol_card(self.reference, who, card, patron_id,
                                             replace_other_cards=replace_other_cards))

    def register_item(self, who: Identified, raw: str, title: str, item_type: ItemType = ItemType.CIRCULATING,
                      *, author: str | None = None, call_number: str | None = None) -> Recorded:
        """The librarian puts a new book on the shelf; it can be borrowed at once, offline."""
        new_item_id = f"{self.kiosk_id}-{uuid.uuid4().hex[:10]}"
        return self._record(rules.register_item(self.reference, who, self.classify(raw), new_item_id, title,
                                                item_type, author=author, call_number=call_number))

    def patron_view(self, patron: Patron) -> PatronView:
        today = self.now().date()
        return PatronView(
            patron,
            tuple(self.state.loans_of(patron.patron_id)),
            rules.allowance(self.reference, self.state, patron, today),
        )

    def record(self, drafts: Sequence[EventDraft]) -> tuple[Event, ...]:
        """Events that are no circulation decision (a stock-take's), durable the same way."""
        return self._append(drafts)

    def _record(self, decision: Decision) -> Recorded:
        """Durable first (raises StoreWriteError and changes nothing if the disk refuses),
        then the state, then the answer."""
        return Recorded(decision, self._append(decision.events))

    def _append(self, drafts: Sequence[EventDraft]) -> tuple[Event, ...]:
        events = tuple(self.journal.append(drafts))
        state = self.state
        for event in events:
            state = apply(state, event)
        self.state = state
        if any(event.type in _ADDITIONS for event in events):
            self.reference = self._effective()
        if events:
            self._last_event_id = events[-1].event_id
            if state.last_seq - self._checkpointed_seq >= self._checkpoint_every:
                self._checkpoint(self._last_event_id)
        return events

    def close(self) -> None:
        if self._last_event_id and self.state.last_seq > self._checkpointed_seq:
            self._checkpoint(self._last_event_id)
        self.journal.close()

    def __enter__(self) -> CirculationDesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
