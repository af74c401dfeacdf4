"""journal incarnations: a kiosk's journal restored, repaired or re-created counts its
sequence numbers apart (the journals table; the kiosk's current one; each event's)

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'journals',
        sa.Column('kiosk_id', sa.String(length=64), nullable=False),
        sa.Column('incarnation', sa.String(length=80), nullable=False),
        sa.Column('since_seq', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=24), nullable=False),
        sa.Column('previous', sa.String(length=80), nullable=True),
        sa.Column('restored_from', sa.String(length=40), nullable=True),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('applied_seq', sa.BigInteger(), nullable=False),
        sa.Column('max_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_event_time', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_known_time', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('kiosk_id', 'incarnation'),
    )
    with op.batch_alter_table('kiosks') as batch:
        batch.add_column(sa.Column('incarnation', sa.String(length=80), nullable=True))
    with op.batch_alter_table('events') as batch:
        batch.add_column(sa.Column('incarnation', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events') as batch:
        batch.drop_column('incarnation')
    with op.batch_alter_table('kiosks') as batch:
        batch.drop_column('incarnation')
    op.drop_table('journals')
