"""Alembic's entry point: migrations run on the connection ``openflr.store.migrate`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from openflr.store.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the migrations through openflr.store.migrate (openflr db upgrade)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite alters most things by copying a table: later revisions use op.batch_alter_table.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
