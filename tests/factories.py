"""Building test data through the public API; a test sets only the fields it is about."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

from chatflow.services import accounts
from chatflow.services.passwords import hash_password
from chatflow.storage.database import Database

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = hash_password(PASSWORD)  # once: Argon2 is slow on purpose


class Api:
    """An HTTP client that speaks as one credential."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=self._headers(None))

    def post(
        self,
        path: str,
        json: Any = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.client.post(path, json=json, params=params, headers=self._headers(headers))

    def patch(self, path: str, json: Any = None) -> httpx.Response:
        return self.client.patch(path, json=json, headers=self._headers(None))

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path, headers=self._headers(None))

    def ok(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        status: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = self.client.request(
            method, path, json=json, params=params, headers=self._headers(None)
        )
        expected = status or (201 if method == "POST" and response.status_code == 201 else 200)
        assert response.status_code == expected, (response.status_code, response.text)
        return response.json() if response.content else None


@dataclass
class Org:
    id: str
    api: Api
    admin_id: str
    admin_email: str
    channel_id: str
    client: TestClient
    database: Database

    def agent(self, *, role: str = "agent", name: str = "Agent") -> tuple[dict[str, Any], Api]:
        """A new agent of this organization, and a client logged in as it."""
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        agent = self.api.ok(
            "POST",
            "/v1/agents",
            {"email": email, "name": name, "role": role, "password": PASSWORD},
            status=201,
        )
        return agent, self.login(email)

    def login(self, email: str) -> Api:
        response = self.client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        # The client is shared by every test: its cookie jar must not sign later requests in.
        self.client.cookies.clear()
        return Api(self.client, response.json()["token"])

    def contact(self, **fields: Any) -> dict[str, Any]:
        body = {"phone": random_phone(), "first_name": "Ada", "opted_in": True, **fields}
        result: dict[str, Any] = self.api.ok("POST", "/v1/contacts", body, status=201)
        return result

    def chatroom(
        self,
        *,
        contact: dict[str, Any] | None = None,
        participants: list[str] | None = None,
        assign_on_handover: bool = False,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        contact = contact or self.contact()
        result: dict[str, Any] = self.api.ok(
            "POST",
            "/v1/chatrooms",
            {
                "contact_id": contact["id"],
                "channel_id": channel_id or self.channel_id,
                "participants": participants if participants is not None else [self.admin_id],
                "assign_on_handover": assign_on_handover,
            },
            status=201,
        )
        return result

    def template(
        self,
        *,
        name: str | None = None,
        approve: bool = True,
        components: list[dict[str, Any]] | None = None,
        language: str = "en_US",
    ) -> dict[str, Any]:
        body = {
            "name": name or f"t_{uuid.uuid4().hex[:8]}",
            "language": language,
            "category": "UTILITY",
            "components": components
            or [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, your order {{2}} is ready.",
                    "example": {"body_text": [["Ada", "#1"]]},
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Yes"},
                        {"type": "QUICK_REPLY", "text": "No"},
                    ],
                },
            ],
        }
        template: dict[str, Any] = self.api.ok("POST", "/v1/templates", body, status=201)
        if approve:
            template = self.api.ok("POST", f"/v1/templates/{template['id']}/approve")
        return template

    def send_template(
        self,
        chatroom_id: str,
        template: dict[str, Any],
        *,
        variables: dict[str, Any] | None = None,
        **flags: bool,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.api.ok(
            "POST",
            f"/v1/chatrooms/{chatroom_id}/template-messages",
            {
                "template": template["name"],
                "language": template["language"],
                "variables": variables if variables is not None else {"body": ["Ada", "#1"]},
            },
            params={k: str(v).lower() for k, v in flags.items()},
            status=201,
        )
        return result

    def customer_says(self, chatroom_id: str, text: str = "Hello!", **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.api.ok(
            "POST",
            "/v1/sandbox/inbound",
            {"chatroom_id": chatroom_id, "text": text, **extra},
            status=201,
        )
        return result

    def customer_taps(self, chatroom_id: str, message_id: str, index: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.api.ok(
            "POST",
            "/v1/sandbox/inbound",
            {"chatroom_id": chatroom_id, "button": {"message_id": message_id, "index": index}},
            status=201,
        )
        return result

    def chatroom_list(self, agent_id: str, **params: Any) -> list[str]:
        page = self.api.ok("GET", "/v1/chatrooms", params={"agent_id": agent_id, **params})
        return [room["id"] for room in page["data"]]

    def events(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {"limit": 100, **params}
            if cursor:
                query["cursor"] = cursor
            page = self.api.ok("GET", "/v1/events", params=query)
            found.extend(page["data"])
            if len(page["data"]) < 100:
                return found
            cursor = page["next_cursor"]


def random_phone() -> str:
    """A valid US number that no other test uses."""
    return (
        "+1415555" + f"{uuid.uuid4().int % 10_000:04d}"
        if False
        else ("+1" + "415" + f"{2000000 + uuid.uuid4().int % 7_999_999:07d}")
    )


def snapshot(org: Org) -> dict[str, Any]:
    """Everything an organization has, to prove that a refused request changed nothing."""
    state: dict[str, Any] = {"events": org.events()}
    for name, path in (
        ("contacts", "/v1/contacts"),
        ("chatrooms", "/v1/chatrooms"),
        ("templates", "/v1/templates"),
        ("agents", "/v1/agents"),
        ("channels", "/v1/channels"),
    ):
        state[name] = org.api.ok("GET", path, params={"limit": 100})["data"]
    state["messages"] = {
        room["id"]: org.api.ok(
            "GET", f"/v1/chatrooms/{room['id']}/messages", params={"limit": 100}
        )["data"]
        for room in state["chatrooms"]
    }
    return state


def make_org(client: TestClient, database: Database) -> Org:
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    made = database.write_sync(
        lambda tx: accounts.do_bootstrap(
            tx,
            org_name="Test",
            admin_email=email,
            admin_password=PASSWORD,
            password_hash=_PASSWORD_HASH,
        )
    )
    return Org(
        id=made.organization.id,
        api=Api(client, made.api_key),
        admin_id=made.admin.id,
        admin_email=made.admin.email,
        channel_id=made.channel.id,
        client=client,
        database=database,
    )


def list_entries(org: Org, agent_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """One agent's chatroom list (R3), newest order key first, with `agent_bump_key` and
    `agent_unread_count` of each entry."""
    page = org.api.ok("GET", "/v1/chatrooms", params={"agent_id": agent_id, "limit": limit})
    entries: list[dict[str, Any]] = page["data"]
    return entries


def expect_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem with this status and `code`, and every member it must carry."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert body["type"].endswith("/" + code), body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


def call(
    api: Api,
    method: str,
    path: str,
    json: Any = None,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Any request, as `api`'s credential, answered as it is (no status expected)."""
    return api.client.request(
        method,
        path,
        json=json,
        params=params,
        headers={"Authorization": f"Bearer {api.token}", **(headers or {})},
    )


def quick_agent(
    org: Org, *, role: str = "agent", name: str = "Agent"
) -> tuple[dict[str, Any], Api]:
    """Like `org.agent()`, without its two Argon2 runs (about half a second per agent): the agent
    is stored with the precomputed hash and its session is started directly."""
    from chatflow.domain.access import Actor, ActorKind
    from chatflow.domain.models import Agent, OrganizationId, Role
    from chatflow.storage.database import Tx
    from chatflow.views import agent_view

    admin = Actor(OrganizationId(org.id), ActorKind.AGENT, org.admin_id, Role.ADMIN)

    def work(tx: Tx) -> tuple[Agent, str]:
        agent = accounts.do_create_agent(
            tx,
            admin,
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            name=name,
            role=Role(role),
            password_hash=_PASSWORD_HASH,
        )
        token, _ = accounts.do_start_session(tx, agent)
        return agent, token

    agent, token = org.database.write_sync(work)
    return dict(agent_view(agent)), Api(org.client, token)
