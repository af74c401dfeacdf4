"""The journal's on-disk schema version and the migrations between versions.

Every segment's header names the schema it was written with. When a release changes what
an event looks like on disk, it raises ``SCHEMA`` and adds a migration from the previous
version: a pure function from one version's tables to the next. Opening a journal
migrates older segments in place (each rewritten whole or not at all); a segment written
by a newer release is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

SCHEMA = 1
FORMAT = "bookcorner.journal"

Tables = dict[str, dict[str, dict[str, Any]]]
Migration = Callable[[Tables], Tables]

#: MIGRATIONS[n] turns schema n into schema n + 1
MIGRATIONS: Mapping[int, Migration] = {}


def migrate(tables: Tables, from_schema: int, to_schema: int = SCHEMA,
            migrations: Mapping[int, Migration] = MIGRATIONS) -> Tables:
    for version in range(from_schema, to_schema):
        step = migrations.get(version)
        if step is None:
            raise LookupError(f"no migration from journal schema {version} to {version + 1}")
        tables = step(tables)
    return tables
