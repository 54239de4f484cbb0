"""The migrations build exactly the schema the models describe: a fresh database
migrated to the head revision has every table, column, index and constraint of
``gateway.storage.models`` and nothing else (alembic's autogenerate comparison finds no
difference), on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.storage import make_engine, migrate
from gateway.storage.db import current_revision, head_revision
from gateway.storage.models import Base


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert migrate(engine) == head_revision()
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_the_records_are_read_by_type_through_an_index(database_url: str) -> None:
    """Calendars, policies, government measures and reports are read by payload type
    in log order: an index, not a scan of the whole log."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            indexes = context.impl.dialect.get_indexes(conn, "records", schema=None)
        assert {"name": "ix_records_type_index", "columns": ["payload_type", "log_index"]} in [
            {"name": i["name"], "columns": i["column_names"]} for i in indexes
        ]
    finally:
        engine.dispose()
