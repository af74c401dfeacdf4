"""initial schema: kiosks and credentials, events and reviews, loans, reference data

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 02:48:57.848136

"""
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('batches',
    sa.Column('kiosk_id', sa.String(length=64), nullable=False),
    sa.Column('batch_id', sa.String(length=80), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('reply', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kiosk_id', 'batch_id')
    )
    op.create_table('boot_anchors',
    sa.Column('kiosk_id', sa.String(length=64), nullable=False),
    sa.Column('boot_id', sa.String(length=80), nullable=False),
    sa.Column('monotonic_ns', sa.BigInteger(), nullable=False),
    sa.Column('server_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kiosk_id', 'boot_id')
    )
    op.create_table('cards',
    sa.Column('card_id', sa.String(length=80), nullable=False),
    sa.Column('patron_id', sa.String(length=80), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('card_id')
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index('ix_cards_rev', ['rev'], unique=False)

    op.create_table('catalogue',
    sa.Column('item_id', sa.String(length=80), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('item_id')
    )
    with op.batch_alter_table('catalogue', schema=None) as batch_op:
        batch_op.create_index('ix_catalogue_rev', ['rev'], unique=False)

    op.create_table('credentials',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kiosk_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_table('events',
    sa.Column('event_id', sa.String(length=80), nullable=False),
    sa.Column('kiosk_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('boot_id', sa.String(length=80), nullable=False),
    sa.Column('monotonic_ns', sa.BigInteger(), nullable=False),
    sa.Column('wall_time', sa.String(length=40), nullable=False),
    sa.Column('clock_synced', sa.Boolean(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('time_quality', sa.String(length=16), nullable=False),
    sa.Column('time_lower', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_upper', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('warnings', sa.Text(), nullable=True),
    sa.Column('batch_id', sa.String(length=80), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_kiosk_seq', ['kiosk_id', 'seq'], unique=False)
        batch_op.create_index('ix_events_time', ['time'], unique=False)

    op.create_table('item_state',
    sa.Column('item_id', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('loan_id', sa.String(length=80), nullable=True),
    sa.Column('patron_id', sa.String(length=80), nullable=True),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('loan_kiosk', sa.String(length=64), nullable=True),
    sa.Column('renewals', sa.Integer(), nullable=False),
    sa.Column('changed_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('changed_kiosk', sa.String(length=64), nullable=True),
    sa.Column('changed_seq', sa.BigInteger(), nullable=True),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('item_id')
    )
    with op.batch_alter_table('item_state', schema=None) as batch_op:
        batch_op.create_index('ix_item_state_rev', ['rev'], unique=False)

    op.create_table('kiosks',
    sa.Column('kiosk_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('provisioned', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signing_key', sa.String(length=64), nullable=False),
    sa.Column('applied_seq', sa.BigInteger(), nullable=False),
    sa.Column('max_seq', sa.BigInteger(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('last_contact', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_boot_id', sa.String(length=80), nullable=True),
    sa.Column('clock_offset_s', sa.Float(), nullable=True),
    sa.Column('last_event_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_known_time', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kiosk_id')
    )
    op.create_table('meta',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('patrons',
    sa.Column('patron_id', sa.String(length=80), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('patron_id')
    )
    with op.batch_alter_table('patrons', schema=None) as batch_op:
        batch_op.create_index('ix_patrons_rev', ['rev'], unique=False)

    op.create_table('reviews',
    sa.Column('review_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kiosk_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=80), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('review_id')
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('ix_reviews_open', ['kiosk_id', 'resolved_at'], unique=False)

    op.create_table('revision',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('settings',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    # the database's identity: a kiosk's reference cursor from another database is void
    op.bulk_insert(sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text)),
                   [{"key": "epoch", "value": uuid.uuid4().hex[:12]}])
    op.bulk_insert(sa.table("revision", sa.column("id", sa.Integer), sa.column("rev", sa.BigInteger)),
                   [{"id": 1, "rev": 0}])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('settings')
    op.drop_table('revision')
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_reviews_open')

    op.drop_table('reviews')
    with op.batch_alter_table('patrons', schema=None) as batch_op:
        batch_op.drop_index('ix_patrons_rev')

    op.drop_table('patrons')
    op.drop_table('meta')
    op.drop_table('kiosks')
    with op.batch_alter_table('item_state', schema=None) as batch_op:
        batch_op.drop_index('ix_item_state_rev')

    op.drop_table('item_state')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_time')
        batch_op.drop_index('ix_events_kiosk_seq')

    op.drop_table('events')
    op.drop_table('credentials')
    with op.batch_alter_table('catalogue', schema=None) as batch_op:
        batch_op.drop_index('ix_catalogue_rev')

    op.drop_table('catalogue')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index('ix_cards_rev')

    op.drop_table('cards')
    op.drop_table('boot_anchors')
    op.drop_table('batches')
