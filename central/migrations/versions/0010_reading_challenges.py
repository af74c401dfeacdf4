"""reading challenges: a period, a goal (books or categories) and the classes taking part;
the kiosks pull them with the reading guide; the school's award rules (阅读之星, 书香班级)

Revision ID: 0010
Revises: 0009
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'reading_challenges',
        sa.Column('challenge_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('goal', sa.Integer(), nullable=False),
        sa.Column('by_category', sa.Boolean(), nullable=False),
        sa.Column('class_names', sa.String(length=400), nullable=False),
        sa.Column('star_at_least', sa.Integer(), nullable=True),
        sa.Column('stars_per_class', sa.Integer(), nullable=True),
        sa.Column('class_share', sa.Integer(), nullable=True),
        sa.Column('class_average', sa.Integer(), nullable=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint('challenge_id'),
    )


def downgrade() -> None:
    op.drop_table('reading_challenges')
