"""The database a real server is started on, for the tests that kill it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.reliability.kill_harness import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database per test: the server creates its demo organization on it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chatflow.db'}"
        return
    server_url: str = request.getfixturevalue("postgresql_url")
    with fresh_postgres_database(server_url) as url:
        yield url
