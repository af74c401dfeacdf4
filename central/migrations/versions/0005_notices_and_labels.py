"""overdue notices to class teachers (class_teachers: where a class's notices go; notices:
the outbox) and labels (catalogue.added_at: when the server first stored a book)

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'class_teachers',
        sa.Column('class_name', sa.String(length=80), nullable=False),
        sa.Column('teacher_name', sa.String(length=120), nullable=True),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint('class_name'),
    )
    op.create_table(
        'notices',
        sa.Column('notice_id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('class_name', sa.String(length=80), nullable=False),
        sa.Column('period', sa.String(length=40), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient', sa.String(length=254), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('books', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('next_try', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('notice_id'),
        sa.UniqueConstraint('class_name', 'period', 'channel', name='uq_notices_class_period_channel'),
    )
    op.create_index('ix_notices_status_next', 'notices', ['status', 'next_try'])
    with op.batch_alter_table('catalogue') as batch:
        batch.add_column(sa.Column('added_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('catalogue') as batch:
        batch.drop_column('added_at')
    op.drop_index('ix_notices_status_next', table_name='notices')
    op.drop_table('notices')
    op.drop_table('class_teachers')
