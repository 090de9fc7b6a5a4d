"""Driving the flow engine from tests: the triggers' consumer and the timer worker, on demand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chatflow.api.deps import Runtime
from chatflow.clock import ManualClock
from chatflow.events.consumers import ConsumerLoop
from chatflow.flows.triggers import FlowTriggers
from chatflow.flows.worker import FlowWorker
from chatflow.storage.database import Database
from tests.factories import Org


@dataclass
class Engine:
    client: TestClient
    database: Database
    clock: ManualClock
    trigger_loop: ConsumerLoop
    worker: FlowWorker

    def triggers(self) -> int:
        """Hand every committed event to the flow triggers, as the background loop does."""
        assert self.client.portal is not None
        count: int = self.client.portal.call(self.trigger_loop.catch_up)
        return count

    def timers(self) -> None:
        """Fire whatever is due, and wait for the HTTP requests that made."""
        assert self.client.portal is not None
        while self.client.portal.call(self.worker.tick):
            self.client.portal.call(self.worker.drain)

    def later(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))
        self.timers()


@pytest.fixture
def engine(client: TestClient, database: Database, clock: ManualClock) -> Iterator[Engine]:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    # As in `chatflow serve`: one trigger loop, which the timers bring up to date before
    # anything fires.
    trigger_loop = ConsumerLoop(database, runtime.bus, FlowTriggers())
    worker = FlowWorker(database, runtime.webhook_sender, read_replies=trigger_loop.catch_up)
    engine = Engine(client, database, clock, trigger_loop, worker)
    engine.triggers()  # start from the log's end: earlier tests' events are theirs
    yield engine


def deployed_flow(org: Org, document: dict[str, Any], *, name: str = "Flow") -> dict[str, Any]:
    """A flow with this document, deployed."""
    flow: dict[str, Any] = org.api.ok(
        "POST", "/v1/flows", {"name": name, "document": document}, status=201
    )
    org.api.ok("POST", f"/v1/flows/{flow['id']}/deploy", {"message": "first"}, status=201)
    return flow


def webhook_flow(org: Org, nodes: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], str]:
    """A deployed flow started by its incoming webhook (by default one that only ends), and
    its secret."""
    nodes = nodes or [{"id": "e", "action": "end"}]
    flow = deployed_flow(
        org,
        {
            "trigger": {"type": "incoming_webhook"},
            "start": nodes[0]["id"],
            "nodes": nodes,
            "edges": [],
        },
    )
    secret: str = org.api.ok("GET", f"/v1/flows/{flow['id']}")["webhook_secret"]
    return flow, secret


def say(node_id: str, text: str) -> dict[str, Any]:
    """A send_message node to the trigger's chatroom."""
    return {
        "id": node_id,
        "action": "send_message",
        "params": {"message": text, "chatInstanceId": "{chatInstanceId}"},
    }


def run_detail(org: Org, run_id: str) -> dict[str, Any]:
    result: dict[str, Any] = org.api.ok("GET", f"/v1/runs/{run_id}")
    return result


def runs_of(org: Org, flow_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = org.api.ok("GET", f"/v1/flows/{flow_id}/runs")["data"]
    return result


def bot_texts(org: Org, chatroom_id: str) -> list[str]:
    """The bot's messages in the chatroom, oldest first."""
    page = org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}/messages", params={"limit": 100})
    return [m["text"] for m in reversed(page["data"]) if m["sender"]["type"] == "bot"]
