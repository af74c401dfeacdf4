"""loans partitioned by term on PostgreSQL (issue 15): RANGE on out_at, one partition per school
term (cut at 1 February and 1 August) and a default partition; the rows move in place. The primary
key becomes (loan_id, out_at), as PostgreSQL requires; a loan's out_at never changes, so loan_id
stays unique. SQLite is unchanged.

Revision ID: 0011
Revises: 0010
"""
from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op

from bookcorner.central.partitions import partition_table

revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOAN_INDEXES = {
    "ix_loans_out_at": "out_at, class_name, patron_id",
    "ix_loans_returned_due": "returned_at, due",
    "ix_loans_item_out_at": "item_id, out_at",
}


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    partition_table(conn, "loans", "out_at", "loan_id", LOAN_INDEXES, datetime.now(UTC))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE loans_flat (LIKE loans INCLUDING DEFAULTS)")
    op.execute("INSERT INTO loans_flat SELECT * FROM loans")
    op.execute("DROP TABLE loans CASCADE")
    op.execute("ALTER TABLE loans_flat RENAME TO loans")
    op.execute("ALTER TABLE loans ADD CONSTRAINT loans_pkey PRIMARY KEY (loan_id)")
    for name, columns in LOAN_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON loans ({columns})")
