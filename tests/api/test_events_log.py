"""GET /v1/events: the outbox as a log that a reader pages through and never misses."""

from __future__ import annotations

import psycopg
import pytest
from tests.factories import Org

from chatflow.storage.database import Database


def _late_events(org: Org, cursor: str | None) -> tuple[list[str], str | None]:
    params = {"type": "test.late", "limit": 100}
    if cursor is not None:
        params["cursor"] = cursor
    page = org.api.ok("GET", "/v1/events", params=params)
    return [e["id"] for e in page["data"]], page["next_cursor"]


def _insert(conn: psycopg.Connection[tuple[object, ...]], org_id: str, event_id: str) -> None:
    conn.execute(
        "INSERT INTO events (txid, id, org_id, type, data, created_at) "
        "VALUES (pg_current_xact_id()::text::bigint, %s, %s, 'test.late', '{}', 0)",
        (event_id, org_id),
    )


def test_an_event_that_commits_after_a_later_one_is_not_skipped_by_a_reader(
    org: Org, database: Database
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite commits one write transaction at a time: positions are commit order")
    url = database.url
    with psycopg.connect(url, autocommit=True) as setup:
        _insert(setup, org.id, "evt_first")
    seen, cursor = _late_events(org, None)
    assert seen == ["evt_first"]

    with psycopg.connect(url) as slow, psycopg.connect(url) as fast:
        _insert(slow, org.id, "evt_slow")  # takes the lower position, commits last
        _insert(fast, org.id, "evt_fast")
        fast.commit()

        still, still_cursor = _late_events(org, cursor)
        assert still == []  # evt_fast waits until the slower transaction ends
        slow.commit()

    caught_up, _ = _late_events(org, still_cursor)
    assert caught_up == ["evt_slow", "evt_fast"]


def test_the_event_log_pages_in_order_with_a_cursor_that_always_comes_back(org: Org) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "one")
    everything = org.events()
    first = org.api.ok("GET", "/v1/events", params={"limit": 2})
    assert [e["id"] for e in first["data"]] == [e["id"] for e in everything[:2]]
    rest = org.api.ok("GET", "/v1/events", params={"limit": 100, "cursor": first["next_cursor"]})
    assert [e["id"] for e in rest["data"]] == [e["id"] for e in everything[2:]]
    assert rest["next_cursor"] is not None
    empty = org.api.ok("GET", "/v1/events", params={"cursor": rest["next_cursor"]})
    assert empty["data"] == []
    assert empty["next_cursor"] == rest["next_cursor"]
