"""the replay bridge's outbox: checkouts, returns and renewals to send to the school's own
library system over SIP2, in the order replay applied them

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sip2_outbox',
        sa.Column('outbox_id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('event_id', sa.String(length=80), nullable=False),
        sa.Column('kiosk_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('item_id', sa.String(length=80), nullable=False),
        sa.Column('patron_id', sa.String(length=80), nullable=True),
        sa.Column('card_id', sa.String(length=80), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due', sa.Date(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('screen', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('outbox_id'),
        sa.UniqueConstraint('event_id'),
    )
    op.create_index('ix_sip2_outbox_status', 'sip2_outbox', ['status', 'outbox_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sip2_outbox_status', table_name='sip2_outbox')
    op.drop_table('sip2_outbox')
