"""Every loan replay makes, noted for the reports (form I, reading stars).

The server's item states hold only each book's current loan; the reports need all of
them. A ``LoanLedger`` replays events the way ingest does (``replay.replay``) and notes
what each did to its book's loan: a checkout that applies opens one (its id is the
checkout's event id), a return, damage, loss or a checkout over it closes it, a renewal
moves its due date. Pure: central.loans writes what it noted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from bookcorner.circulation.outcomes import Outcome
from bookcorner.circulation.replay import ItemState, Replayed, ReplayEvent, item_of, replay
from bookcorner.circulation.state import Loan


class LoanLedger:
    """What one batch's replay did to loans, until it is stored."""

    def __init__(self) -> None:
        #: loans opened in this batch: [loan_id, item_id, patron_id, kiosk_id, out_at, due, returned_at, renewals]
        self.opened: dict[str, list] = {}
        #: loans stored before that changed: loan_id -> (due, renewals, returned_at)
        self.changed: dict[str, tuple[date, int, datetime | None]] = {}
        #: when each changed loan began (its row's ``out_at``: where a time-partitioned table keeps it)
        self.since: dict[str, datetime] = {}

    def replay(self, event: ReplayEvent, items: Mapping[str, ItemState]) -> Replayed:
        """``replay.replay``, noting what the event did to its book's loan (``items``
        holds the books of the events that change one: any other event leaves them be)."""
        item_id = item_of(event.payload)
        state = items.get(item_id) if item_id is not None else None
        if state is None:
            return replay(event, items)
        before = state.loan
        done = replay(event, items)
        after = state.loan
        if before is not None and done.outcome is not Outcome.NEEDS_REVIEW:
            if after is None or after.loan_id != before.loan_id:  # returned, damaged, lost or lent again
                self._note(before, event.time)
            elif after is not before:  # renewed
                self._note(after, None)
        if after is not None and (before is None or after.loan_id != before.loan_id):
            self.opened[after.loan_id] = [after.loan_id, state.item_id, after.patron_id, after.kiosk_id,
                                          after.since, after.due, None, after.renewals]
        return done

    def _note(self, loan: Loan, returned_at: datetime | None) -> None:
        row = self.opened.get(loan.loan_id)
        if row is not None:
            row[5], row[6], row[7] = loan.due, returned_at, loan.renewals
        else:
            self.changed[loan.loan_id] = (loan.due, loan.renewals, returned_at)
            self.since[loan.loan_id] = loan.since
