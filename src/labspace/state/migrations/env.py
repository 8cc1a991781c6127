"""Alembic environment: labspace passes an open connection (see Database.migrate)."""

from __future__ import annotations

from alembic import context

from labspace.state.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through labspace (Database.migrate), not bare alembic")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
