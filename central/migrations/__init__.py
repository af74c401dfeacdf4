"""Schema migrations (Alembic), run by the server when it starts.

A new migration: ``alembic -c central/migrations/alembic.ini revision -m "what" --autogenerate``
against a database at the current head, then read and edit what it wrote.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

HERE = Path(__file__).parent


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str | None:
    """The revision the program's migrations end at."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(config(connection), revision)
