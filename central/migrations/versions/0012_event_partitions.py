"""events partitioned by term on PostgreSQL (issue 15): RANGE on received_at, one partition per
school term (cut at 1 February and 1 August, as loans) and a default partition; the rows move in
place. A push writes only the current term's partition. A partitioned table's unique key must hold
the partition key, so the primary key becomes (event_id, received_at) and exactly-once by event id
moves to a narrow ``event_ids`` table (event id, kiosk, number, received_at), filled here from the
events and written by ingest in the transaction that stores each event. SQLite is unchanged.

Revision ID: 0012
Revises: 0011
"""
from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op

from bookcorner.central.partitions import partition_table, unpartition_table

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_INDEXES = {
    "ix_events_kiosk_seq": "kiosk_id, seq",
    "ix_events_time": "time",
    "ix_events_type_time": "type, time",
}


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE event_ids (event_id VARCHAR(80) NOT NULL, kiosk_id VARCHAR(64) NOT NULL, "
               "seq BIGINT NOT NULL, received_at TIMESTAMP WITH TIME ZONE NOT NULL, "
               "CONSTRAINT event_ids_pkey PRIMARY KEY (event_id))")
    op.execute("INSERT INTO event_ids (event_id, kiosk_id, seq, received_at) "
               "SELECT event_id, kiosk_id, seq, received_at FROM events")
    partition_table(conn, "events", "received_at", "event_id", EVENT_INDEXES, datetime.now(UTC))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    unpartition_table(conn, "events", "event_id", EVENT_INDEXES)
    op.execute("DROP TABLE event_ids")
