"""A WhatsApp channel of a fresh organization, Meta's side played by tests/fake_graph.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from chatflow.channels.base import ChannelContext
from chatflow.channels.outbound import OutboundSender
from chatflow.channels.whatsapp.graph import GraphClient, WhatsAppTransport
from chatflow.clock import ManualClock
from chatflow.domain.models import ChannelType
from chatflow.storage.tables import outbound_sends
from tests.factories import Org, random_phone
from tests.fake_graph import ACCESS_TOKEN, API_VERSION, FakeGraph
from tests.whatsapp_payloads import PHONE_NUMBER_ID, WABA_ID, encode, sign

APP_SECRET = "whatsapp-app-secret"
VERIFY_TOKEN = "whatsapp-verify-token"


@dataclass
class WhatsApp:
    org: Org
    channel: dict[str, Any]
    graph: FakeGraph
    client: TestClient
    clock: ManualClock
    sender: OutboundSender

    @property
    def webhook(self) -> str:
        return f"/channels/whatsapp/{self.channel['id']}/webhook"

    def post(self, payload: Any, *, signature: str | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else encode(payload)
        header = sign(body, APP_SECRET) if signature is None else signature
        return self.client.post(
            self.webhook,
            content=body,
            headers={"X-Hub-Signature-256": header, "Content-Type": "application/json"},
        )

    def deliver(self, payload: Any) -> None:
        """Meta calls the webhook; the notification is applied."""
        response = self.post(payload)
        assert response.status_code == 200, response.text
        self.apply()

    def apply(self) -> int:
        context: ChannelContext = self.client.app.state.channels  # type: ignore[attr-defined]
        assert self.client.portal is not None
        taken: int = self.client.portal.call(context.inbox.drain)
        return taken

    def send_queued(self) -> int:
        assert self.client.portal is not None
        sent: int = self.client.portal.call(self.sender.send_due)
        return sent

    def customer(self) -> str:
        """A customer's `wa_id`: the digits of a phone number no other test uses."""
        return random_phone().removeprefix("+")

    def chatroom_of(self, wa_id: str) -> dict[str, Any]:
        contact = self.org.api.ok("GET", "/v1/contacts", params={"phone": "+" + wa_id})["data"][0]
        rooms = self.org.api.ok("GET", "/v1/chatrooms", params={"limit": 100})["data"]
        [room] = [r for r in rooms if r["contact_id"] == contact["id"]]
        found: dict[str, Any] = room
        return found

    def messages(self, chatroom_id: str) -> list[dict[str, Any]]:
        page = self.org.api.ok(
            "GET", f"/v1/chatrooms/{chatroom_id}/messages", params={"limit": 100}
        )
        return list(reversed(page["data"]))

    def notifications(self) -> list[Any]:
        import sqlalchemy as sa

        from chatflow.storage.tables import channel_notifications as table

        query = (
            sa.select(table).where(table.c.channel_id == self.channel["id"]).order_by(table.c.id)
        )
        return self.org.database.read_sync(lambda tx: list(tx.execute(query).all()))


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@pytest.fixture
def whatsapp(
    org: Org,
    graph: FakeGraph,
    client: TestClient,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[WhatsApp]:
    # Every organization's channel here has the same phone number id and token: earlier tests'
    # queued messages would be sent by this test's sender.
    org.database.write_sync(lambda tx: tx.execute(outbound_sends.delete()))
    settings = client.app.state.runtime.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings, "whatsapp_graph_base_url", graph.url)
    channel = org.api.ok(
        "POST",
        "/v1/channels",
        {
            "type": "whatsapp",
            "name": f"WhatsApp {uuid.uuid4().hex[:6]}",
            "config": {
                "phone_number_id": PHONE_NUMBER_ID,
                "waba_id": WABA_ID,
                "graph_api_version": API_VERSION,
                "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN,
            },
        },
        status=201,
    )
    context: ChannelContext = client.app.state.channels  # type: ignore[attr-defined]
    transport = WhatsAppTransport(GraphClient(graph.url, timeout_seconds=5))
    sender = OutboundSender(context.database, context.bus, clock, {ChannelType.WHATSAPP: transport})
    yield WhatsApp(org, channel, graph, client, clock, sender)
    assert client.portal is not None
    client.portal.call(sender.aclose)
