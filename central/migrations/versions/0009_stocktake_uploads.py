"""stock-takes from a handheld scanner's file: the codes a librarian uploaded for a shelf
(the kiosks' stock-takes are their pushed stocktake.* events)

Revision ID: 0009
Revises: 0008
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'stocktake_uploads',
        sa.Column('stocktake_id', sa.String(length=80), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('who', sa.String(length=120), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('shelf', sa.Text(), nullable=True),
        sa.Column('codes', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('stocktake_id'),
    )


def downgrade() -> None:
    op.drop_table('stocktake_uploads')
