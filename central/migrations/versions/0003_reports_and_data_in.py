"""reports and data in: the loans table, imports waiting for confirmation, the events a
kiosk reports waiting, an index for the registers (events by type and time); the loans
of a server upgraded with history, filled from its events

Revision ID: 0003
Revises: 0002
"""
import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'loans',
        sa.Column('loan_id', sa.String(length=80), nullable=False),
        sa.Column('item_id', sa.String(length=80), nullable=False),
        sa.Column('patron_id', sa.String(length=80), nullable=True),
        sa.Column('class_name', sa.String(length=80), nullable=True),
        sa.Column('kiosk_id', sa.String(length=64), nullable=False),
        sa.Column('out_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due', sa.Date(), nullable=False),
        sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('renewals', sa.Integer(), nullable=False),
        sa.Column('anonymised_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('loan_id'),
    )
    op.create_index('ix_loans_out_at', 'loans', ['out_at', 'class_name', 'patron_id'])
    op.create_index('ix_loans_returned_due', 'loans', ['returned_at', 'due'])
    op.create_index('ix_loans_item_out_at', 'loans', ['item_id', 'out_at'])
    op.create_table(
        'staged_imports',
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('who', sa.String(length=120), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token'),
    )
    with op.batch_alter_table('kiosks') as batch:
        batch.add_column(sa.Column('waiting_events', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('waiting_reported_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_events_type_time', 'events', ['type', 'time'])
    _fill_loans(op.get_bind())


#: the tables as this migration knows them (the application's may change later)
_events = sa.table('events', sa.column('event_id', sa.String), sa.column('kiosk_id', sa.String),
                   sa.column('seq', sa.BigInteger), sa.column('type', sa.String), sa.column('payload', sa.Text),
                   sa.column('time', sa.DateTime(timezone=True)), sa.column('outcome', sa.String))
_reviews = sa.table('reviews', sa.column('event_id', sa.String), sa.column('resolution', sa.Text))
_patrons = sa.table('patrons', sa.column('patron_id', sa.String), sa.column('data', sa.Text))
_loans = sa.table('loans', sa.column('loan_id', sa.String), sa.column('item_id', sa.String),
                  sa.column('patron_id', sa.String), sa.column('class_name', sa.String),
                  sa.column('kiosk_id', sa.String), sa.column('out_at', sa.DateTime(timezone=True)),
                  sa.column('due', sa.Date), sa.column('returned_at', sa.DateTime(timezone=True)),
                  sa.column('renewals', sa.Integer))
_CLOSES = ('loan.returned', 'item.damaged', 'item.lost')


def _json(text):
    try:
        value = json.loads(text or '{}')
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _fill_loans(conn) -> None:
    """Every loan the stored events made, replayed in time order as the server applied
    them: an applied checkout opens one (closing the book's loan before it), an applied
    return, damage or loss closes the book's loan, a renewal moves its due date. Events
    a librarian corrected count with the book and student the librarian named. The
    class is the borrower's class on the roster now (the history does not say more)."""
    corrected = {}
    for event_id, resolution in conn.execute(sa.select(_reviews.c.event_id, _reviews.c.resolution)
                                             .where(_reviews.c.event_id.is_not(None),
                                                    _reviews.c.resolution.is_not(None))):
        decided = _json(resolution)
        if decided.get('decision') == 'correct':
            corrected[event_id] = {k: decided[k] for k in ('item_id', 'patron_id') if decided.get(k)}
    classes = {patron_id: _json(data).get('class_name') for patron_id, data in
               conn.execute(sa.select(_patrons.c.patron_id, _patrons.c.data))}
    e = _events.c
    history = conn.execute(
        sa.select(e.event_id, e.kiosk_id, e.type, e.payload, e.time, e.outcome)
        .where(e.type.in_(('loan.checked_out', 'loan.renewed') + _CLOSES))
        .order_by(e.time, e.kiosk_id, e.seq).execution_options(yield_per=5000))
    on_loan: dict[str, dict[str, Any]] = {}  # item -> its open loan (a row)
    done: list[dict[str, Any]] = []  # closed loans waiting to be written
    for event_id, kiosk_id, kind, payload, time, outcome in history:
        if outcome not in ('applied', 'applied_with_warning') and event_id not in corrected:
            continue
        p = {**_json(payload), **corrected.get(event_id, {})}
        item = p.get('item_id')
        if not isinstance(item, str):
            continue
        current = on_loan.get(item)
        if kind == 'loan.renewed':
            if current is not None and isinstance(p.get('due'), str):
                current['due'] = date.fromisoformat(p['due'])
                current['renewals'] += 1
            continue
        if current is not None:
            current['returned_at'] = time
            done.append(on_loan.pop(item))
        if kind == 'loan.checked_out' and isinstance(p.get('patron_id'), str) and isinstance(p.get('due'), str):
            on_loan[item] = {'loan_id': event_id, 'item_id': item, 'patron_id': p['patron_id'],
                             'class_name': classes.get(p['patron_id']), 'kiosk_id': kiosk_id, 'out_at': time,
                             'due': date.fromisoformat(p['due']), 'returned_at': None, 'renewals': 0}
        if len(done) >= 5000:
            conn.execute(_loans.insert(), done)
            done = []
    done += on_loan.values()
    if done:
        conn.execute(_loans.insert(), done)


def downgrade() -> None:
    op.drop_index('ix_events_type_time', table_name='events')
    with op.batch_alter_table('kiosks') as batch:
        batch.drop_column('waiting_reported_at')
        batch.drop_column('waiting_events')
    op.drop_table('staged_imports')
    for name in ('ix_loans_item_out_at', 'ix_loans_returned_due', 'ix_loans_out_at'):
        op.drop_index(name, table_name='loans')
    op.drop_table('loans')
