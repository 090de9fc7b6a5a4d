"""Fixtures: every test that touches storage runs on SQLite and on PostgreSQL.

PostgreSQL is taken from CHATFLOW_TEST_POSTGRES_URL (default postgresql://127.0.0.1:5432/test):
each test session creates its own database there and drops it afterwards. Without a reachable
server the PostgreSQL half is skipped with a message, unless CHATFLOW_TEST_REQUIRE_SERVICES=1
(as in CI), which makes a missing service fail the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from chatflow.app import create_app
from chatflow.clock import ManualClock
from chatflow.config import Settings
from chatflow.storage.database import Database
from chatflow.storage.migrate import upgrade
from tests.factories import Api, Org, make_org
from tests.webhook_receiver import WebhookReceiver

POSTGRES_URL = os.environ.get("CHATFLOW_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("CHATFLOW_TEST_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); its half of the suite is skipped"
    if REQUIRE_SERVICES:
        pytest.fail(message + " — but CHATFLOW_TEST_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "chatflow.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    name = f"chatflow_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Database]:
    url = request.getfixturevalue(f"{request.param}_url")
    db = Database(url, clock)
    db.start()
    yield db
    db.close()


@pytest.fixture(scope="session")
def client(database: Database, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database.url,
        background_work=False,
        auth_cache_seconds=0,
        # The tests' webhook receivers listen on this machine.
        webhook_allowed_networks="127.0.0.0/8,::1/128",
        webhook_timeout_seconds=5,
    )
    app = create_app(settings, clock=clock, database=database)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def org(client: TestClient, database: Database) -> Org:
    """A fresh organization per test: tests never see each other's data."""
    return make_org(client, database)


@pytest.fixture
def api(org: Org) -> Api:
    """The organization's API key, as an HTTP client."""
    return org.api


@pytest.fixture(autouse=True)
def _no_stale_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATFLOW_DATABASE_URL", raising=False)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP server on 127.0.0.1 that records requests; see tests/webhook_receiver.py."""
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


REDIS_URL = os.environ.get("CHATFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis (CHATFLOW_TEST_REDIS_URL, default redis://127.0.0.1:6379/0), or a skip."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    finally:
        client.close()
    return REDIS_URL
