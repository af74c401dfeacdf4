"""the event type ``loan.returned`` is now ``loan.checked_in`` (the library field's word): the
events stored under the old name take the new one, so that every query by type (the end of
the day, the registers, the exports) sees old and new returns alike. Ingest stores the new
name whatever a kiosk sends (an older kiosk still sends the old one); downgrading gives the
old name back to every return, as the code before this revision expects.

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_events = sa.table('events', sa.column('type', sa.String))


def _rename(old: str, new: str) -> None:
    op.execute(_events.update().where(_events.c.type == old).values(type=new))


def upgrade() -> None:
    _rename('loan.returned', 'loan.checked_in')


def downgrade() -> None:
    _rename('loan.checked_in', 'loan.returned')
