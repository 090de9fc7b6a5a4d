"""An organization's event list reads its own index on SQLite: a page after a cursor does not
scan the other organizations' events (`storage.events.list_events`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chatflow.clock import ManualClock
from chatflow.storage import events as event_store
from chatflow.storage.database import Database, Tx
from chatflow.storage.migrate import upgrade


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    upgrade(url)
    db = Database(url, ManualClock())
    db.start()
    yield db
    db.close()


def plans_of_list_events(database: Database, **options: Any) -> list[str]:
    """The query plan of each statement `list_events` runs with these options."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    # On the Engine class: reads go through the database's reader engine.
    sa.event.listen(Engine, "before_cursor_execute", capture)
    try:
        database.read_sync(lambda tx: event_store.list_events(tx, "org_x", limit=20, **options))
    finally:
        sa.event.remove(Engine, "before_cursor_execute", capture)
    assert statements

    def explain(tx: Tx) -> list[str]:
        driver = tx.conn.connection.driver_connection
        assert driver is not None
        return [
            row[3]
            for sql, parameters in statements
            for row in driver.execute("EXPLAIN QUERY PLAN " + sql, parameters)
        ]

    return database.read_sync(explain)


@pytest.mark.parametrize(
    "options",
    [
        {"after": (0, 5)},
        {"after": (0, 5), "chatroom_id": "cr_x"},
        {"after": (0, 5), "types": ["message.created", "chatroom.bumped"]},
    ],
)
def test_a_page_after_a_cursor_seeks_the_organizations_index_from_the_cursor(
    database: Database, options: dict[str, Any]
) -> None:
    [plan] = plans_of_list_events(database, **options)
    assert "USING INDEX ix_events_org_id_txid_position" in plan, plan
    assert "org_id=?" in plan and "position>?" in plan, plan


def test_the_first_page_reads_the_organizations_index_in_order(database: Database) -> None:
    plans = plans_of_list_events(database, after=None)
    assert plans == ["SEARCH events USING INDEX ix_events_org_id_txid_position (org_id=?)"]
    # In the index's order: no sorting of the organization's whole log.
    assert not any("TEMP B-TREE" in plan for plan in plans)
