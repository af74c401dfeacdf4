"""reading lists: the librarian's lists of books (by grade, festival, class) that kiosks
pull with the reference data

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'reading_lists',
        sa.Column('list_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('grades', sa.String(length=80), nullable=False),
        sa.Column('class_name', sa.String(length=80), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint('list_id'),
    )
    op.create_table(
        'reading_list_books',
        sa.Column('list_id', sa.String(length=40), nullable=False),
        sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('isbn13', sa.String(length=13), nullable=True),
        sa.Column('title', sa.String(length=400), nullable=False),
        sa.Column('book', sa.String(length=90), nullable=True),
        sa.PrimaryKeyConstraint('list_id', 'position'),
    )


def downgrade() -> None:
    op.drop_table('reading_list_books')
    op.drop_table('reading_lists')
