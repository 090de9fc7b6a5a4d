"""WS /v1/stream: who sees what, and who may connect at all (SPEC "Who may do what")."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests.factories import Org, make_org, quick_agent
from tests.live.streams import (
    connect,
    connect_with,
    contact_event,
    events,
    message_event,
    ready,
    receive_until,
)

from chatflow.api.deps import SESSION_COOKIE
from chatflow.storage.database import Database


def test_an_agent_sees_its_chatrooms_events_and_its_own_unassignment_only(
    client: TestClient, org: Org
) -> None:
    ada, ada_api = quick_agent(org)
    bob, _ = quick_agent(org)
    with connect(client, ada_api.token) as ws:
        ready(ws)
        ours = org.chatroom(participants=[ada["id"]])
        theirs = org.chatroom(participants=[bob["id"]])
        org.customer_says(theirs["id"], "for bob")
        org.contact()  # about the organization, not a chatroom: not for an agent
        # Pending agents see nothing yet (R8), not even that the assignment was discarded (R9).
        pending = org.chatroom(participants=[ada["id"]], assign_on_handover=True)
        org.api.ok("POST", f"/v1/chatrooms/{pending['id']}/reassign", {"agent_ids": [bob["id"]]})
        org.customer_says(ours["id"], "for ada")
        before = events(receive_until(ws, message_event("for ada")))

        org.api.ok("POST", f"/v1/chatrooms/{ours['id']}/reassign", {"agent_ids": [bob["id"]]})
        org.customer_says(ours["id"], "after ada left")
        again = org.chatroom(participants=[ada["id"]])
        after = events(
            receive_until(
                ws,
                lambda f: f["type"] == "event" and f["event"]["type"] == "chatroom.assigned",
            )
        )

    assert [(e["type"], e["chatroom_id"]) for e in before] == [
        ("chatroom.created", ours["id"]),
        ("chatroom.assigned", ours["id"]),
        ("message.created", ours["id"]),
    ]
    assert [(e["type"], e["chatroom_id"]) for e in after] == [
        ("chatroom.bumped", ours["id"]),
        ("chatroom.unassigned", ours["id"]),
        ("chatroom.created", again["id"]),
        ("chatroom.assigned", again["id"]),
    ]
    assert after[1]["data"]["agent_ids"] == [ada["id"]]
    assert after[3]["data"]["agent_ids"] == [ada["id"]]


def test_an_api_key_and_an_admin_see_the_whole_organization_as_the_event_log_shows_it(
    client: TestClient, org: Org, database: Database
) -> None:
    other = make_org(client, database)
    _, admin_api = quick_agent(org, role="admin")
    with connect(client, org.api.token) as key_ws, connect(client, admin_api.token) as admin_ws:
        start = ready(key_ws)
        ready(admin_ws)
        elsewhere = other.chatroom(participants=[other.admin_id])
        other.customer_says(elsewhere["id"], "another organization")
        room = org.chatroom(participants=[])
        org.customer_says(room["id"], "one")
        last = org.contact()
        by_key = events(receive_until(key_ws, contact_event(last)))
        by_admin = events(receive_until(admin_ws, contact_event(last)))
    logged = org.api.ok("GET", "/v1/events", params={"cursor": start, "limit": 100})["data"]

    assert by_key == logged
    assert by_admin == logged
    assert [e["type"] for e in logged if e["chatroom_id"] is None] == ["contact.created"] * 2
    assert {e["chatroom_id"] for e in logged} == {None, room["id"]}


def _refusal(client: TestClient, token: str | None, **params: str) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as refused, connect(client, token, **params) as ws:
        ws.receive_json()
    return refused.value


def test_a_missing_or_unknown_token_is_closed_with_4401(client: TestClient) -> None:
    missing = _refusal(client, None)
    unknown = _refusal(client, "cfk_not-a-key")

    assert missing.code == 4401
    assert "Bearer" in missing.reason
    assert unknown.code == 4401
    assert unknown.reason


def test_a_cursor_the_api_did_not_issue_is_closed_with_4400(client: TestClient, org: Org) -> None:
    refused = _refusal(client, org.api.token, after="not-a-cursor")

    assert refused.code == 4400
    assert "cursor" in refused.reason


def test_browsers_authenticate_with_access_token_in_the_query(client: TestClient, org: Org) -> None:
    with connect(client, None, access_token=org.api.token) as ws:
        assert ready(ws)


def test_the_session_cookie_is_accepted_from_the_servers_own_pages_only(
    client: TestClient, org: Org
) -> None:
    _, agent_api = quick_agent(org)
    cookie = {"cookie": f"{SESSION_COOKIE}={agent_api.token}"}

    with connect_with(client, {**cookie, "origin": "http://testserver"}) as ws:
        assert ready(ws)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        connect_with(client, {**cookie, "origin": "https://elsewhere.example"}) as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 4401
