"""Every loan replay makes, kept in the ``loans`` table for the reports (form I, reading stars).

What replay did to each book's loan is noted by the pure ``circulation.ledger.LoanLedger``;
``LoanLedger.store`` here writes it in the caller's transaction, in bulk: the new loans with
the borrower's class at that moment in one insert, the changed ones in one update.
"""

from __future__ import annotations

import msgspec
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.circulation import ledger

_CHUNK = 900  # ids per IN list (SQLite's parameter limit)


class _ClassOf(msgspec.Struct):
    """The one field of a roster record the ledger reads."""

    class_name: str | None = None


_class_of = msgspec.json.Decoder(_ClassOf)


class LoanLedger(ledger.LoanLedger):
    """What one batch's replay did to loans (``circulation.ledger``), until ``store`` writes it."""

    def store(self, conn: Connection) -> None:
        when, day = db.time_param(conn), db.date_param(conn)
        if self.opened:
            classes = _classes(conn, sorted({row[2] for row in self.opened.values()}))
            db.bulk_insert(conn, db.loans, [  # in the order of db.loans' columns
                (loan_id, item_id, patron_id, classes.get(patron_id), kiosk_id, when(out_at), day(due),
                 when(returned_at), renewals, None)
                for loan_id, item_id, patron_id, kiosk_id, out_at, due, returned_at, renewals in self.opened.values()])
        if self.changed:
            rows = [(loan_id, day(due), renewals, when(returned_at))
                    for loan_id, (due, renewals, returned_at) in self.changed.items()]
            if conn.dialect.name == "postgresql":  # (loans partitioned by out_at: find each in its term's partition)
                done = db.bulk_update_located(conn, db.loans, "loan_id", "out_at", ["due", "renewals", "returned_at"],
                                              [(*row, when(self.since[row[0]])) for row in rows if row[0] in self.since])
                rows = [row for row in rows if row[0] not in done]  # (a loan whose out_at is not the one noted)
            db.bulk_update(conn, db.loans, "loan_id", ["due", "renewals", "returned_at"], rows)


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
