"""The send-anatomy benchmark measures what it says: every stage route takes the send route's
compiled path, and each stops where its name says (`bench/send_anatomy.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.send_anatomy import ROUTE, STAGES, add_rows_table, create_app
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chatflow.storage.database import Database, Tx
from chatflow.storage.migrate import upgrade
from tests.factories import make_org


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    url = f"sqlite:///{tmp_path / 'anatomy.db'}"
    upgrade(url)
    add_rows_table(url)
    made: FastAPI = create_app(url)
    return made


def stored(database: Database) -> tuple[int, int]:
    """Rows the one-row stage inserted, and messages sent."""

    def count(tx: Tx) -> tuple[int, int]:
        driver = tx.conn.connection.driver_connection
        assert driver is not None
        rows = driver.execute("SELECT count(*) FROM bench_rows").fetchone()[0]
        sent = driver.execute(
            "SELECT count(*) FROM messages WHERE direction = 'outbound'"
        ).fetchone()[0]
        return int(rows), int(sent)

    return database.read_sync(count)


def test_each_stage_answers_through_the_compiled_route_and_stops_where_its_name_says(
    app: FastAPI,
) -> None:
    stage_routes = [r for r in app.routes if str(getattr(r, "path", "")).startswith("/bench/")]
    assert len(stage_routes) == len(STAGES)
    assert all(getattr(r, "compiled", False) for r in stage_routes)
    with TestClient(app) as client:
        database: Database = app.state.runtime.database
        org = make_org(client, database)
        room = org.chatroom()["id"]
        org.customer_says(room)  # opens the customer window (R4), as the benchmark's setup does
        after = {"answer": (0, 0), "empty-write": (0, 0), "one-row": (1, 0), "use-case": (1, 1)}
        for stage in STAGES:
            answer = org.api.post(ROUTE.format(chatroom_id=room) + stage, {"text": "Hello"})
            assert answer.status_code == 201, (stage, answer.text)
            assert answer.json() == {"chatroom_id": room, "text": "Hello"}
            assert stored(database) == after[stage], stage
        # A stage refuses what the send refuses, and writes nothing: no token here.
        refused = client.post(ROUTE.format(chatroom_id=room) + "use-case", json={"text": "Hi"})
        assert refused.status_code == 401
        assert stored(database) == (1, 1)
