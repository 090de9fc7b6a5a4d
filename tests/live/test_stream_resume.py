"""WS /v1/stream: resuming with no gap and no duplicate, heartbeats, slow clients, ended
sessions."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests.factories import Org, make_org, quick_agent
from tests.live.streams import (
    connect,
    contact_event,
    events,
    ready,
    receive_events,
    receive_until,
    stream_app,
)

from chatflow.clock import ManualClock
from chatflow.domain.models import Event, EventId, OrganizationId
from chatflow.ids import new_id
from chatflow.live.hub import decode_position
from chatflow.storage.database import Database, Tx
from chatflow.storage.events import insert_events


def _logged_after(org: Org, cursor: str) -> list[dict[str, Any]]:
    page = org.api.ok("GET", "/v1/events", params={"cursor": cursor, "limit": 100})
    found: list[dict[str, Any]] = page["data"]
    return found


def test_resuming_after_a_cursor_delivers_exactly_the_events_after_it_while_others_commit(
    client: TestClient, org: Org
) -> None:
    room = org.chatroom(participants=[])
    with connect(client, org.api.token) as ws:
        ready(ws)
        for i in range(3):
            org.customer_says(room["id"], f"seen {i}")
        # The chatroom's events 2 to 7: three messages, each with its bump.
        first = receive_until(ws, lambda f: f["type"] == "event" and f["event"]["seq"] == 7)
    cut = first[-3]["cursor"]  # after event 5, in the middle of what the client saw
    for i in range(3):
        org.customer_says(room["id"], f"while away {i}")
    contact: dict[str, Any] = {}

    def keep_committing() -> None:
        for i in range(5):
            org.customer_says(room["id"], f"while resuming {i}")
        contact.update(org.contact())

    writer = threading.Thread(target=keep_committing)
    with connect(client, org.api.token, after=cut) as ws:
        writer.start()
        writer.join()
        resumed = receive_until(ws, contact_event(contact))

    expected = _logged_after(org, cut)
    assert events(resumed) == expected
    assert [f["type"] for f in resumed].count("ready") == 1
    cursors = [decode_position(f["cursor"]) for f in resumed if f["type"] == "event"]
    assert cursors == sorted(set(cursors))
    assert len(expected) == 2 + 3 * 2 + 5 * 2 + 1


def test_a_stream_cursor_continues_in_the_event_log_and_back(client: TestClient, org: Org) -> None:
    room = org.chatroom(participants=[])
    with connect(client, org.api.token) as ws:
        start = ready(ws)
        org.customer_says(room["id"], "one")
        last = org.contact()
        streamed = receive_until(ws, contact_event(last))
    message = next(f for f in streamed if f["event"]["type"] == "message.created")

    rest = _logged_after(org, message["cursor"])
    with connect(client, org.api.token, after=start) as ws:
        again = receive_until(ws, lambda f: f["type"] == "ready")

    assert rest == events(streamed)[events(streamed).index(message["event"]) + 1 :]
    assert events(again) == events(streamed)


def test_a_quiet_stream_sends_heartbeats_with_a_cursor_to_resume_from(
    database: Database, clock: ManualClock
) -> None:
    with stream_app(database, clock, stream_heartbeat_seconds=0.05) as client:
        org = make_org(client, database)
        with connect(client, org.api.token) as ws:
            start = ready(ws)
            beats = [ws.receive_json() for _ in range(2)]

    assert [b["type"] for b in beats] == ["heartbeat", "heartbeat"]
    assert decode_position(beats[-1]["cursor"]) >= decode_position(start)
    assert _logged_after(org, beats[-1]["cursor"]) == []


def test_a_client_too_far_behind_is_closed_with_4429_and_resumes_losing_nothing(
    database: Database, clock: ManualClock
) -> None:
    # One pending event at most: a customer message commits two (message.created and
    # chatroom.bumped) in one transaction, more than the client may fall behind.
    with stream_app(database, clock, stream_max_pending=1) as client:
        org = make_org(client, database)
        room = org.chatroom(participants=[])
        with connect(client, org.api.token) as ws:
            start = ready(ws)
            org.customer_says(room["id"], "two events at once")
            with pytest.raises(WebSocketDisconnect) as closed:
                receive_until(ws, lambda f: False)
        assert closed.value.code == 4429
        prefix, _, resume_at = closed.value.reason.partition("after=")
        assert prefix == "Too far behind; reconnect with "

        with connect(client, org.api.token, after=resume_at) as ws:
            resumed = receive_until(ws, lambda f: f["type"] == "ready")

    # On PostgreSQL the chatroom's creation may not have been final yet when the client
    # connected: then it came after `start` too.
    assert [e["type"] for e in events(resumed)][-2:] == ["message.created", "chatroom.bumped"]
    assert events(resumed) == _logged_after(org, start)


def test_a_stream_closes_with_4401_once_its_session_ends(
    database: Database, clock: ManualClock
) -> None:
    with stream_app(database, clock, stream_heartbeat_seconds=0.05) as client:
        org = make_org(client, database)
        _, agent_api = quick_agent(org)
        with connect(client, agent_api.token) as ws:
            ready(ws)
            agent_api.post("/v1/auth/logout")
            with pytest.raises(WebSocketDisconnect) as closed:
                receive_until(ws, lambda f: False, heartbeats=100)

    assert closed.value.code == 4401
    assert "log in again" in closed.value.reason


def _insert_event(conn: Any, database: Database, org_id: str) -> str:
    event_id = new_id("evt")
    event = Event(EventId(event_id), OrganizationId(org_id), "test.late", None, None, {}, 0)
    insert_events(Tx(database, conn, 0), [event])
    return event_id


def test_an_event_committing_after_a_later_one_is_neither_skipped_nor_overtaken(
    database: Database, clock: ManualClock
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite commits one write transaction at a time: positions are commit order")
    with stream_app(database, clock, stream_heartbeat_seconds=0.05) as client:
        org = make_org(client, database)
        bus = cast(FastAPI, client.app).state.runtime.bus
        with connect(client, org.api.token) as live:
            start = ready(live)
            with database.engine.connect() as slow, database.engine.connect() as fast:
                slow_tx = slow.begin()
                first = _insert_event(slow, database, org.id)  # the lower txid, commits last
                with fast.begin():
                    second = _insert_event(fast, database, org.id)
                bus.announce()
                # Heartbeats, not `second`: it waits while the older transaction runs.
                quiet = [live.receive_json() for _ in range(3)]
                with connect(client, org.api.token, after=start) as resumed:
                    caught_up = receive_until(resumed, lambda f: f["type"] == "ready")
                    slow_tx.commit()
                    bus.announce()
                    live_frames = receive_events(live, 2, heartbeats=40)
                    resumed_frames = receive_events(resumed, 2, heartbeats=40)

    assert [f["type"] for f in quiet] == ["heartbeat"] * 3
    assert events(caught_up) == []
    assert [e["id"] for e in events(live_frames)] == [first, second]
    assert [e["id"] for e in events(resumed_frames)] == [first, second]
