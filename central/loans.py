"""Every loan replay makes, kept in the ``loans`` table for the reports (form I, reading stars).

``item_state`` holds only each book's current loan; the reports need all of them. A
``LoanLedger`` replays events the way ingest does and notes what each did to its book's
loan: a checkout that applies opens one (its id is the checkout's event id), a return,
damage, loss or a checkout over it closes it, a renewal moves its due date. ``store``
writes the ledger in the caller's transaction, in bulk: the new loans with the
borrower's class at that moment in one insert, the changed ones in one update.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import msgspec
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.central.replay import ItemState, Loan, Replayed, ReplayEvent, replay
from bookcorner.protocol.messages import Outcome

_CHUNK = 900  # ids per IN list (SQLite's parameter limit)


class _ClassOf(msgspec.Struct):
    """The one field of a roster record the ledger reads."""

    class_name: str | None = None


_class_of = msgspec.json.Decoder(_ClassOf)


class LoanLedger:
    """What one batch's replay did to loans, until ``store`` writes it."""

    def __init__(self) -> None:
        #: loans opened in this batch: [loan_id, item_id, patron_id, kiosk_id, out_at, due, returned_at, renewals]
        self.opened: dict[str, list] = {}
        #: loans stored before that changed: loan_id -> (due, renewals, returned_at)
        self.changed: dict[str, tuple[date, int, datetime | None]] = {}

    def replay(self, event: ReplayEvent, items: Mapping[str, ItemState]) -> Replayed:
        """``central.replay.replay``, noting what the event did to its book's loan (``items``
        holds the books of the events that change one: any other event leaves them be)."""
        item_id = event.payload.get("item_id")
        state = items.get(item_id) if isinstance(item_id, str) else None
        if state is None:
            return replay(event, items)
        before = state.loan
        if before is None:
            done = replay(event, items)
        else:
            due, renewals = before.due, before.renewals
            done = replay(event, items)
            if done.outcome is Outcome.NEEDS_REVIEW:
                return done
            if state.loan is not before:  # returned, damaged, lost or lent again
                self._note(before, event.time)
            elif before.due != due or before.renewals != renewals:  # renewed
                self._note(before, None)
        after = state.loan
        if after is not None and after is not before:
            self.opened[after.loan_id] = [after.loan_id, state.item_id, after.patron_id, after.kiosk_id,
                                          after.since, after.due, None, after.renewals]
        return done

    def _note(self, loan: Loan, returned_at: datetime | None) -> None:
        row = self.opened.get(loan.loan_id)
        if row is not None:
            row[5], row[6], row[7] = loan.due, returned_at, loan.renewals
        else:
            self.changed[loan.loan_id] = (loan.due, loan.renewals, returned_at)

    def store(self, conn: Connection) -> None:
        when, day = db.time_param(conn), db.date_param(conn)
        if self.opened:
            classes = _classes(conn, sorted({row[2] for row in self.opened.values()}))
            db.bulk_insert(conn, db.loans, [  # in the order of db.loans' columns
                (loan_id, item_id, patron_id, classes.get(patron_id), kiosk_id, when(out_at), day(due),
                 when(returned_at), renewals, None)
                for loan_id, item_id, patron_id, kiosk_id, out_at, due, returned_at, renewals in self.opened.values()])
        if self.changed:
            db.bulk_update(conn, db.loans, "loan_id", ["due", "renewals", "returned_at"],
                           [(loan_id, day(due), renewals, when(returned_at))
                            for loan_id, (due, renewals, returned_at) in self.changed.items()])


def _classes(conn: Connection, patron_ids: list[str]) -> dict[str, str | None]:
    """Each borrower's class as the roster says now (a patron not on the roster: none)."""
    classes: dict[str, str | None] = {}
    for start in range(0, len(patron_ids), _CHUNK):
        for patron_id, data, _rev, _removed in db.fetch_rows(conn, db.patrons, db.patrons.c.patron_id,
                                                             patron_ids[start:start + _CHUNK]):
            try:
                classes[patron_id] = _class_of.decode(data).class_name
            except msgspec.DecodeError:
                classes[patron_id] = None
    return classes
