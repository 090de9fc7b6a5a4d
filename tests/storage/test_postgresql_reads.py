"""PostgreSQL reads: each statement its own transaction, and no writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from chatflow.clock import ManualClock
from chatflow.storage.database import Database, Tx
from chatflow.storage.tables import organizations


@pytest.fixture
def pg_db(postgresql_url: str) -> Iterator[Database]:
    db = Database(postgresql_url, ManualClock())
    db.start()
    yield db
    db.close()


def _statement_is_its_own_transaction(tx: Tx) -> list[bool]:
    # In autocommit the transaction starts with the statement; after a BEGIN it started earlier.
    check = sa.text("SELECT transaction_timestamp() = statement_timestamp()")
    return [bool(tx.execute(check).scalar()) for _ in range(2)]


def test_a_read_sends_no_begin_or_commit(pg_db: Database) -> None:
    assert asyncio.run(pg_db.read(_statement_is_its_own_transaction)) == [True, True]
    assert pg_db.read_sync(_statement_is_its_own_transaction) == [True, True]


def test_a_write_inside_a_read_fails_and_writes_nothing(pg_db: Database) -> None:
    def sneaky(tx: Tx) -> None:
        tx.execute(organizations.insert().values(id="org_sneaky", name="x", created_at=tx.now))

    with pytest.raises(DBAPIError, match="read-only transaction"):
        pg_db.read_sync(sneaky)
    found = pg_db.read_sync(
        lambda tx: tx.execute(
            sa.select(organizations.c.id).where(organizations.c.id == "org_sneaky")
        ).first()
    )
    assert found is None
