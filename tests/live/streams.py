"""Helpers for live-stream tests: connecting, reading frames, and apps with their own settings."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from chatflow.app import create_app
from chatflow.clock import ManualClock
from chatflow.config import Settings
from chatflow.storage.database import Database

Frame = dict[str, Any]


def connect(client: TestClient, token: str | None, **params: str) -> WebSocketTestSession:
    """`WS /v1/stream` as `token` (sent as a bearer header), with `params` in the query."""
    return connect_with(client, {"Authorization": f"Bearer {token}"} if token else {}, **params)


def connect_with(
    client: TestClient, headers: dict[str, str], **params: str
) -> WebSocketTestSession:
    """`WS /v1/stream` with these handshake headers (no bearer token unless among them)."""
    query = f"?{urlencode(params)}" if params else ""
    return client.websocket_connect(f"/v1/stream{query}", headers=headers)


def ready(ws: WebSocketTestSession) -> str:
    """The `ready` frame's cursor; it must be the next frame."""
    frame: Frame = ws.receive_json()
    assert frame["type"] == "ready", frame
    return str(frame["cursor"])


def receive_until(
    ws: WebSocketTestSession, stop: Callable[[Frame], bool], *, heartbeats: int = 0
) -> list[Frame]:
    """Frames up to and including the first that `stop` accepts. More than `heartbeats`
    heartbeats first means the stream went quiet without it: the test fails, not hangs."""
    frames: list[Frame] = []
    quiet = 0
    while True:
        frame: Frame = ws.receive_json()
        frames.append(frame)
        if stop(frame):
            return frames
        if frame["type"] == "heartbeat":
            quiet += 1
            assert quiet <= heartbeats, f"the stream went quiet after {frames}"


def receive_events(ws: WebSocketTestSession, count: int, *, heartbeats: int = 0) -> list[Frame]:
    """The next `count` event frames (heartbeats skipped, up to `heartbeats` of them)."""
    got: list[Frame] = []

    def enough(frame: Frame) -> bool:
        if frame["type"] == "event":
            got.append(frame)
        return len(got) == count

    if count:
        receive_until(ws, enough, heartbeats=heartbeats)
    return got


def events(frames: list[Frame]) -> list[dict[str, Any]]:
    return [f["event"] for f in frames if f["type"] == "event"]


def contact_event(contact: dict[str, Any]) -> Callable[[Frame], bool]:
    """Stops at the event that carries this contact as the API showed it."""

    def matches(frame: Frame) -> bool:
        return frame["type"] == "event" and bool(frame["event"]["data"].get("contact") == contact)

    return matches


def message_event(text: str) -> Callable[[Frame], bool]:
    """Stops at the `message.created` of the message with this text."""

    def matches(frame: Frame) -> bool:
        event = frame.get("event") or {}
        return bool(
            event.get("type") == "message.created" and event["data"]["message"]["text"] == text
        )

    return matches


@contextlib.contextmanager
def stream_app(database: Database, clock: ManualClock, **overrides: Any) -> Iterator[TestClient]:
    """An app of its own (its own hub and bus) on the shared database, with `overrides`."""
    settings = Settings(
        database_url=database.url, background_work=False, auth_cache_seconds=0, **overrides
    )
    app = create_app(settings, clock=clock, database=database)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
