"""Migration scripts (Alembic loads every file here but this one)."""
