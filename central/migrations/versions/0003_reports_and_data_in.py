"""reports and data in: the loans table, imports waiting for confirmation, the events a
kiosk reports waiting, an index for the registers (events by type and time)

Revision ID: 0003
Revises: 0002
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


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
    op.create_index('ix_loans_out_at', 'loans', ['out_at'])
    op.create_index('ix_loans_patron_out_at', 'loans', ['patron_id', 'out_at'])
    op.create_index('ix_loans_class_out_at', 'loans', ['class_name', 'out_at'])
    op.create_index('ix_loans_returned_due', 'loans', ['returned_at', 'due'])
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


def downgrade() -> None:
    op.drop_index('ix_events_type_time', table_name='events')
    with op.batch_alter_table('kiosks') as batch:
        batch.drop_column('waiting_reported_at')
        batch.drop_column('waiting_events')
    op.drop_table('staged_imports')
    for name in ('ix_loans_returned_due', 'ix_loans_class_out_at', 'ix_loans_patron_out_at', 'ix_loans_out_at'):
        op.drop_index(name, table_name='loans')
    op.drop_table('loans')
