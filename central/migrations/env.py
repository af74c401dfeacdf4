"""Alembic's entry point: migrate on the connection the server hands over."""

from alembic import context

from bookcorner.central.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    from sqlalchemy import create_engine

    from bookcorner.central.db import normalise_url

    engine = create_engine(normalise_url(context.config.get_main_option("sqlalchemy.url")))
    connection = engine.connect()

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
