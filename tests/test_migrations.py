"""The migrations build exactly the schema the code declares, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatflow.storage.database import Database, driver_url
from chatflow.storage.tables import metadata


def test_migrations_at_head_match_the_declared_tables(database: Database) -> None:
    engine = sa.create_engine(driver_url(database.url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
