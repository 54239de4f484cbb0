"""Alembic environment: the engine is handed in by gateway.storage.db.migrate."""

from __future__ import annotations

from alembic import context

from gateway.storage.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
