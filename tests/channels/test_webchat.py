"""Web chat: the customer page's API and live stream, through the inbound path (R1–R8)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from chatflow.storage.tables import webchat_visitors
from tests.factories import Api, Org, expect_problem, list_entries, quick_agent, snapshot
from tests.live.streams import Frame, receive_until

Json = dict[str, Any]


# -- helpers ----------------------------------------------------------------------------------


def _webchat(org: Org, **config: Any) -> Json:
    channel: Json = org.api.ok(
        "POST", "/v1/channels", {"type": "webchat", "name": "Website", "config": config}, status=201
    )
    return channel


@dataclass
class Visitor:
    client: TestClient
    key: str
    token: str
    name: str
    channel_id: str

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, body: Json) -> httpx.Response:
        return self.client.post(f"/chat/{self.key}/messages", json=body, headers=self._headers())

    def says(self, text: str, **extra: Any) -> Json:
        response = self.post({"text": text, **extra})
        assert response.status_code == 201, response.text
        message: Json = response.json()
        return message

    def tap(self, message_id: str, index: int) -> httpx.Response:
        return self.post({"button": {"message_id": message_id, "index": index}})

    def history(self, **params: Any) -> Json:
        response = self.client.get(
            f"/chat/{self.key}/messages", params=params, headers=self._headers()
        )
        assert response.status_code == 200, response.text
        page: Json = response.json()
        return page


def _start(org: Org, channel: Json, **body: Any) -> Visitor:
    name = body.pop("name", f"Visitor {uuid.uuid4().hex[:8]}")
    key = channel["config"]["key"]
    response = org.client.post(f"/chat/{key}/visitors", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return Visitor(org.client, key, response.json()["token"], name, channel["id"])


def _contact_of(org: Org, visitor: Visitor) -> Json:
    contacts: list[Json] = org.api.ok("GET", "/v1/contacts", params={"limit": 100})["data"]
    (contact,) = [c for c in contacts if c["first_name"] == visitor.name]
    return contact


def _opt_in(org: Org, contact: Json) -> None:
    org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"opted_in": True})


def _room_of(org: Org, visitor: Visitor) -> Json:
    contact = _contact_of(org, visitor)
    rooms: list[Json] = org.api.ok("GET", "/v1/chatrooms", params={"limit": 100})["data"]
    (room,) = [
        r
        for r in rooms
        if r["contact_id"] == contact["id"] and r["channel_id"] == visitor.channel_id
    ]
    return room


def _reply(api: Api, chatroom_id: str, text: str, **extra: Any) -> Json:
    message: Json = api.ok(
        "POST", f"/v1/chatrooms/{chatroom_id}/messages", {"text": text, **extra}, status=201
    )
    return message


@contextlib.contextmanager
def _stream(visitor: Visitor, after: str | None = None) -> Iterator[WebSocketTestSession]:
    with visitor.client.websocket_connect(f"/chat/{visitor.key}/stream") as ws:
        ws.send_json({"type": "auth", "token": visitor.token, "after": after})
        yield ws


def _ready(ws: WebSocketTestSession) -> str:
    frame: Frame = ws.receive_json()
    assert frame["type"] == "ready", frame
    return str(frame["cursor"])


def _until_text(text: str) -> Any:
    def matches(frame: Frame) -> bool:
        return bool(frame["type"] == "message" and frame["message"]["text"] == text)

    return matches


def _messages(frames: list[Frame]) -> list[Json]:
    return [f["message"] for f in frames if f["type"] == "message"]


def _refusal(client: TestClient, path: str, hello: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path) as ws:
        ws.send_json(hello)
        ws.receive_json()
    return refused.value.code


# -- the channel ------------------------------------------------------------------------------


def test_a_webchat_channel_gets_a_public_key_that_cannot_be_set_or_changed(org: Org) -> None:
    channel = _webchat(org, title="Help")
    key = channel["config"]["key"]

    refused = org.api.post(
        "/v1/channels", {"type": "webchat", "name": "x", "config": {"key": "wc_" + "a" * 22}}
    )
    changed = org.api.patch(f"/v1/channels/{channel['id']}", {"config": {"key": "wc_" + "b" * 22}})
    renamed = org.api.ok("PATCH", f"/v1/channels/{channel['id']}", {"config": {"title": "Hi"}})

    assert re.fullmatch(r"wc_[A-Za-z0-9_-]{22}", key)
    assert _webchat(org)["config"]["key"] != key
    assert [e["pointer"] for e in expect_problem(refused, 422, "validation_error")["errors"]] == [
        "/config/key"
    ]
    expect_problem(changed, 422, "validation_error")
    assert renamed["config"] == {**channel["config"], "title": "Hi"}


@pytest.mark.parametrize(
    ("config", "pointer"),
    [
        ({"colour": "red"}, "/config/colour"),
        ({"title": 5}, "/config/title"),
        ({"allowed_origins": "https://shop.example"}, "/config/allowed_origins"),
        ({"allowed_origins": ["https://shop.example/path"]}, "/config/allowed_origins/0"),
        ({"allowed_origins": ["https://a.example; script-src *"]}, "/config/allowed_origins/0"),
    ],
)
def test_invalid_webchat_settings_are_refused_and_nothing_is_created(
    org: Org, config: Json, pointer: str
) -> None:
    before = snapshot(org)

    response = org.api.post("/v1/channels", {"type": "webchat", "name": "x", "config": config})

    problem = expect_problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert snapshot(org) == before


def test_the_page_may_be_framed_only_by_the_allowed_origins(org: Org) -> None:
    open_to_all = _webchat(org, welcome_text="Ask <us> anything")
    restricted = _webchat(
        org, title="Shop help", allowed_origins=["https://Shop.example/", "https://*.shop.example"]
    )

    anywhere = org.client.get(f"/chat/{open_to_all['config']['key']}")
    limited = org.client.get(f"/chat/{restricted['config']['key']}")

    assert anywhere.status_code == 200
    assert anywhere.headers["content-type"].startswith("text/html")
    assert "frame-ancestors" not in anywhere.headers["content-security-policy"]
    assert "x-frame-options" not in anywhere.headers
    assert "Ask &lt;us&gt; anything" in anywhere.text
    assert "<us>" not in anywhere.text
    assert (
        "frame-ancestors 'self' https://shop.example https://*.shop.example"
        in limited.headers["content-security-policy"]
    )
    assert "<title>Shop help</title>" in limited.text


def test_the_embed_snippet_and_the_page_assets_are_served(org: Org) -> None:
    key = _webchat(org)["config"]["key"]

    embed = org.client.get(f"/chat/{key}/embed.js")
    script = org.client.get("/chat/_static/webchat.js")
    again = org.client.get(
        "/chat/_static/webchat.js", headers={"If-None-Match": script.headers["etag"]}
    )

    assert embed.status_code == 200
    assert embed.headers["content-type"].startswith("text/javascript")
    assert "iframe" in embed.text
    assert script.status_code == 200
    assert again.status_code == 304
    assert org.client.get("/chat/_static/webchat.css").status_code == 200
    expect_problem(org.client.get("/chat/_static/secrets.txt"), 404, "not_found")


@pytest.mark.parametrize("path", ["", "/embed.js"])
def test_an_unknown_key_is_404(org: Org, path: str) -> None:
    sandbox_id = org.channel_id

    for key in ("wc_" + "x" * 22, "not-a-key", sandbox_id):
        expect_problem(org.client.get(f"/chat/{key}{path}"), 404, "not_found")


# -- starting ---------------------------------------------------------------------------------


def test_starting_creates_a_contact_without_a_phone_and_a_token_stored_hashed(org: Org) -> None:
    channel = _webchat(org)
    visitor = _start(org, channel, name="  Grace  ", email="grace@example.com")

    contacts = org.api.ok("GET", "/v1/contacts", params={"limit": 100})["data"]
    (contact,) = [c for c in contacts if c["email"] == "grace@example.com"]
    row = org.database.read_sync(
        lambda tx: tx.execute(
            sa.select(webchat_visitors).where(webchat_visitors.c.contact_id == contact["id"])
        ).one()
    )

    assert (contact["phone"], contact["first_name"], contact["opted_in"]) == (None, "Grace", False)
    assert row.channel_id == channel["id"]
    assert row.token_hash == hashlib.sha256(visitor.token.encode()).hexdigest()
    assert visitor.token not in str(tuple(row))
    created = org.events(type="contact.created")
    assert [e["data"]["contact"]["id"] for e in created][-1] == contact["id"]


def test_starting_without_a_name_or_email_is_allowed(org: Org) -> None:
    key = _webchat(org)["config"]["key"]

    response = org.client.post(f"/chat/{key}/visitors", json={})

    assert response.status_code == 201, response.text
    assert response.json()["name"] is None


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"email": "not an email"}, "/email"),
        ({"name": "x" * 129}, "/name"),
        ({"name": "Ada", "phone": "+14155550123"}, "/phone"),
    ],
)
def test_starting_with_bad_input_is_422_and_writes_nothing(
    org: Org, body: Json, pointer: str
) -> None:
    key = _webchat(org)["config"]["key"]
    before = snapshot(org)

    response = org.client.post(f"/chat/{key}/visitors", json=body)

    problem = expect_problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert snapshot(org) == before


def test_starting_on_an_unknown_key_is_404_and_writes_nothing(org: Org) -> None:
    before = snapshot(org)

    response = org.client.post(f"/chat/wc_{'z' * 22}/visitors", json={"name": "Ada"})

    expect_problem(response, 404, "not_found")
    assert snapshot(org) == before


# -- writing ----------------------------------------------------------------------------------


def test_a_visitor_message_reaches_the_agents_api_and_bumps_the_chatroom_r1_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    channel = _webchat(org)
    visitor = _start(org, channel)
    contact = _contact_of(org, visitor)
    room = org.chatroom(contact=contact, channel_id=channel["id"], participants=[ada["id"]])
    other = org.chatroom(participants=[ada["id"]])
    assert [e["id"] for e in list_entries(org, ada["id"])] == [other["id"], room["id"]]

    sent = visitor.says("Hello")

    messages = org.api.ok("GET", f"/v1/chatrooms/{room['id']}/messages")["data"]
    assert [(m["id"], m["text"], m["direction"]) for m in messages] == [
        (sent["id"], "Hello", "inbound")
    ]
    assert messages[0]["sender"] == {"type": "contact", "id": contact["id"]}
    entries = list_entries(org, ada["id"])
    assert [e["id"] for e in entries] == [room["id"], other["id"]]
    assert entries[0]["agent_unread_count"] == 1
    assert len(org.events(chatroom_id=room["id"], type="chatroom.bumped")) == 1
    assert (sent["direction"], sent["sender"], sent["status"]) == (
        "inbound",
        {"type": "contact", "name": None},
        "received",
    )


def test_a_visitor_who_writes_first_gets_a_new_chatroom_r2(org: Org) -> None:
    channel = _webchat(org)
    visitor = _start(org, channel)

    first = visitor.says("Hello?")
    second = visitor.says("Anyone?")

    room = _room_of(org, visitor)
    assert (room["channel_id"], room["status"], room["participants"]) == (channel["id"], "open", [])
    listed = org.api.ok("GET", f"/v1/chatrooms/{room['id']}/messages")["data"]
    assert [m["id"] for m in listed] == [second["id"], first["id"]]
    assert len(org.events(chatroom_id=room["id"], type="chatroom.created")) == 1


def test_a_visitor_message_reopens_a_closed_chatroom_r2(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    visitor.says("Hello")
    room = _room_of(org, visitor)
    org.api.ok("POST", f"/v1/chatrooms/{room['id']}/close")

    visitor.says("Back again")

    assert org.api.ok("GET", f"/v1/chatrooms/{room['id']}")["status"] == "open"
    assert len(org.events(chatroom_id=room["id"], type="chatroom.reopened")) == 1


def test_the_same_client_id_sent_twice_stores_one_message(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    first = visitor.post({"text": "Only once", "client_id": "c-1"})

    again = visitor.post({"text": "Only once", "client_id": "c-1"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert [m["text"] for m in visitor.history()["data"]] == ["Only once"]


def test_a_tap_on_a_relayed_template_records_a_template_response_r6(org: Org) -> None:
    channel = _webchat(org)
    visitor = _start(org, channel)
    visitor.says("Hi")
    room = _room_of(org, visitor)
    _opt_in(org, _contact_of(org, visitor))
    template = org.template()
    sent = org.send_template(room["id"], template, relay_response=True)

    response = visitor.tap(sent["id"], 1)

    assert response.status_code == 201, response.text
    tap = response.json()
    assert (tap["kind"], tap["text"]) == ("button_reply", "No")
    assert tap["button"] == {"index": 1, "text": "No", "template_message_id": sent["id"]}
    [event] = org.events(type="template.response")
    assert event["data"]["chatroom_id"] == room["id"]
    assert event["data"]["template_message_id"] == sent["id"]
    assert event["data"]["button"] == {"index": 1, "text": "No", "payload": f"cf1:{sent['id']}:1"}
    assert event["data"]["template"] == {"name": template["name"], "language": "en_US"}


def test_a_tap_on_a_template_sent_without_relay_hands_over_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    channel = _webchat(org)
    visitor = _start(org, channel)
    contact = _contact_of(org, visitor)
    _opt_in(org, contact)
    room = org.chatroom(
        contact=contact, channel_id=channel["id"], participants=[ada["id"]], assign_on_handover=True
    )
    sent = org.send_template(room["id"], org.template(), relay_response=False)

    assert visitor.tap(sent["id"], 0).status_code == 201

    fresh = org.api.ok("GET", f"/v1/chatrooms/{room['id']}")
    assert [p["agent_id"] for p in fresh["participants"]] == [ada["id"]]
    assigned = org.events(chatroom_id=room["id"], type="chatroom.assigned")
    assert [(e["data"]["reason"], e["data"]["agent_ids"]) for e in assigned] == [
        ("handover", [ada["id"]])
    ]
    assert org.events(type="template.response") == []


def test_a_visitors_first_free_flow_message_hands_over_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    channel = _webchat(org)
    visitor = _start(org, channel)
    room = org.chatroom(
        contact=_contact_of(org, visitor),
        channel_id=channel["id"],
        participants=[ada["id"]],
        assign_on_handover=True,
    )

    visitor.says("I need a human")

    assert [
        p["agent_id"] for p in org.api.ok("GET", f"/v1/chatrooms/{room['id']}")["participants"]
    ] == [ada["id"]]
    assert [
        e["data"]["reason"] for e in org.events(chatroom_id=room["id"], type="chatroom.assigned")
    ] == ["handover"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_error"),
        ({"text": "   "}, "validation_error"),
        ({"text": "x" * 4097}, "validation_error"),
        ({"text": "Yes", "button": {"message_id": "msg_x", "index": 0}}, "validation_error"),
        ({"text": "Hi", "client_id": "not allowed!"}, "validation_error"),
        ({"text": "Hi", "chatroom_id": "cr_x"}, "validation_error"),
    ],
)
def test_bad_visitor_messages_are_422_and_write_nothing(org: Org, body: Json, code: str) -> None:
    visitor = _start(org, _webchat(org))
    visitor.says("Hi")
    before = snapshot(org)

    expect_problem(visitor.post(body), 422, code)

    assert snapshot(org) == before


def test_taps_on_anything_but_a_quick_reply_of_the_visitors_template_are_refused(
    org: Org,
) -> None:
    channel = _webchat(org)
    visitor = _start(org, channel)
    other = _start(org, channel)
    greeting = visitor.says("Hi")
    other.says("Hi too")
    for someone in (visitor, other):
        _opt_in(org, _contact_of(org, someone))
    mine = org.send_template(_room_of(org, visitor)["id"], org.template())
    theirs = org.send_template(_room_of(org, other)["id"], org.template())
    reply = _reply(org.api, _room_of(org, visitor)["id"], "A text, not a template")
    before = snapshot(org)

    for message_id, index in [
        (mine["id"], 2),  # the template has buttons 0 and 1
        (theirs["id"], 0),  # another visitor's template
        (reply["id"], 0),
        (greeting["id"], 0),
        ("msg_00000000000000000000000000", 0),
    ]:
        problem = expect_problem(visitor.tap(message_id, index), 422, "not_a_template_message")
        assert [e["pointer"] for e in problem["errors"]] == ["/button"]

    assert snapshot(org) == before


# -- credentials ------------------------------------------------------------------------------


def test_a_missing_wrong_or_other_channels_token_is_401_and_writes_nothing(org: Org) -> None:
    channel = _webchat(org)
    elsewhere = _start(org, _webchat(org))
    visitor = _start(org, channel)
    before = snapshot(org)
    path = f"/chat/{visitor.key}/messages"

    for headers in (
        {},
        {"Authorization": "Bearer wcv_unknown"},
        {"Authorization": f"Bearer {elsewhere.token}"},
        {"Authorization": f"Bearer {org.api.token}"},
    ):
        expect_problem(org.client.get(path, headers=headers), 401, "unauthenticated")
        written = org.client.post(path, json={"text": "Hi"}, headers=headers)
        expect_problem(written, 401, "unauthenticated")

    assert snapshot(org) == before


def test_a_wrong_key_is_404_even_with_a_valid_token(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    headers = {"Authorization": f"Bearer {visitor.token}"}

    response = org.client.post(
        f"/chat/wc_{'q' * 22}/messages", json={"text": "Hi"}, headers=headers
    )

    expect_problem(response, 404, "not_found")


def test_a_visitor_sees_only_its_own_conversation(org: Org) -> None:
    channel = _webchat(org)
    ada = _start(org, channel)
    bob = _start(org, channel)
    ada.says("From Ada")
    bob.says("From Bob")
    _reply(org.api, _room_of(org, bob)["id"], "For Bob")

    assert [m["text"] for m in ada.history()["data"]] == ["From Ada"]
    assert [m["text"] for m in bob.history()["data"]] == ["From Bob", "For Bob"]


def test_the_same_contacts_chatroom_on_another_channel_is_not_shown(org: Org) -> None:
    channel = _webchat(org)
    visitor = _start(org, channel)
    contact = _contact_of(org, visitor)
    sandbox_room = org.chatroom(contact=contact)  # the organization's sandbox channel
    org.customer_says(sandbox_room["id"], "In the sandbox")

    visitor.says("On the web")

    assert [m["text"] for m in visitor.history()["data"]] == ["On the web"]


# -- history ----------------------------------------------------------------------------------


def test_history_pages_back_oldest_first_within_a_page(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    for i in range(5):
        visitor.says(f"m{i}")

    first = visitor.history(limit=2)
    second = visitor.history(limit=2, before=first["next_before"])
    third = visitor.history(limit=2, before=second["next_before"])

    assert [m["text"] for m in first["data"]] == ["m3", "m4"]
    assert [m["text"] for m in second["data"]] == ["m1", "m2"]
    assert [m["text"] for m in third["data"]] == ["m0"]
    assert third["next_before"] is None


def test_the_visitor_sees_templates_and_senders_but_no_internal_fields(org: Org) -> None:
    agent, agent_api = quick_agent(org, name="Ada Support")
    visitor = _start(org, _webchat(org))
    visitor.says("Hi")
    room = _room_of(org, visitor)
    org.api.ok("POST", f"/v1/chatrooms/{room['id']}/reassign", {"agent_ids": [agent["id"]]})
    _opt_in(org, _contact_of(org, visitor))
    template = org.template(
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Your order"},
            {"type": "BODY", "text": "It ships today."},
            {"type": "FOOTER", "text": "Reply any time"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Thanks"},
                    {"type": "URL", "text": "Track", "url": "https://shop.example/track"},
                ],
            },
        ]
    )
    org.send_template(room["id"], template, variables={}, relay_response=True)
    _reply(agent_api, room["id"], "Hello from Ada")
    _reply(org.api, room["id"], "Hello from the bot")

    page = visitor.history()

    greeting, sent, from_agent, from_bot = page["data"]
    assert sent["template"] == {
        "header": {"format": "TEXT", "text": "Your order"},
        "body": "It ships today.",
        "footer": "Reply any time",
        "buttons": [
            {
                "index": 0,
                "type": "QUICK_REPLY",
                "text": "Thanks",
                "url": None,
                "phone_number": None,
                "code": None,
            },
            {
                "index": 1,
                "type": "URL",
                "text": "Track",
                "url": "https://shop.example/track",
                "phone_number": None,
                "code": None,
            },
        ],
    }
    assert from_agent["sender"] == {"type": "agent", "name": "Ada Support"}
    assert from_bot["sender"] == {"type": "bot", "name": None}
    text = str(page)
    for internal in (agent["id"], room["id"], "relay_response", "payload", "cf1:", template["id"]):
        assert internal not in text
    assert set(greeting) == {
        "id",
        "direction",
        "sender",
        "kind",
        "text",
        "template",
        "button",
        "reply_to_message_id",
        "status",
        "created_at",
    }


# -- the live stream --------------------------------------------------------------------------


def test_an_agents_reply_reaches_the_visitors_stream_and_nothing_internal_does(org: Org) -> None:
    agent, agent_api = quick_agent(org, name="Ada Support")
    channel = _webchat(org)
    visitor = _start(org, channel)
    other = _start(org, channel)
    visitor.says("Hello")
    other.says("Hello from the other visitor")
    room = _room_of(org, visitor)
    with _stream(visitor) as ws:
        _ready(ws)
        org.api.ok("POST", f"/v1/chatrooms/{room['id']}/reassign", {"agent_ids": [agent["id"]]})
        _reply(org.api, _room_of(org, other)["id"], "Not for this visitor")
        org.contact()
        _reply(agent_api, room["id"], "How can I help?")
        frames = receive_until(ws, _until_text("How can I help?"))

    assert [f["type"] for f in frames] == ["message"]
    (reply,) = _messages(frames)
    assert (reply["direction"], reply["sender"]) == (
        "outbound",
        {"type": "agent", "name": "Ada Support"},
    )
    assert agent["id"] not in str(frames)


def test_the_visitors_own_messages_and_taps_come_back_on_its_stream(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    visitor.says("Hi")
    room = _room_of(org, visitor)
    _opt_in(org, _contact_of(org, visitor))
    with _stream(visitor) as ws:
        _ready(ws)
        sent = org.send_template(room["id"], org.template(), relay_response=True)
        visitor.tap(sent["id"], 0)
        frames = receive_until(ws, _until_text("Yes"))

    template, tap = _messages(frames)
    assert (template["id"], template["kind"]) == (sent["id"], "template")
    assert tap["button"]["template_message_id"] == sent["id"]


def test_reconnecting_with_the_last_cursor_replays_exactly_what_was_missed(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    visitor.says("Hi")
    room = _room_of(org, visitor)
    with _stream(visitor) as ws:
        _ready(ws)
        _reply(org.api, room["id"], "one")
        seen = receive_until(ws, _until_text("one"))
    cursor = seen[-1]["cursor"]
    _reply(org.api, room["id"], "two")
    visitor.says("three")
    _reply(org.api, room["id"], "four")

    with _stream(visitor, after=cursor) as ws:
        replayed = receive_until(ws, lambda f: f["type"] == "ready")
        _reply(org.api, room["id"], "five")
        live = receive_until(ws, _until_text("five"))

    assert [m["text"] for m in _messages(replayed)] == ["two", "three", "four"]
    assert [m["text"] for m in _messages(live)] == ["five"]


def test_the_history_cursor_resumes_the_stream_without_a_gap(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    visitor.says("Hi")
    room = _room_of(org, visitor)
    page = visitor.history()
    _reply(org.api, room["id"], "after the history")

    with _stream(visitor, after=page["stream_cursor"]) as ws:
        frames = receive_until(ws, lambda f: f["type"] == "ready")

    assert [m["text"] for m in _messages(frames)] == ["after the history"]


def test_a_stream_without_valid_credentials_is_closed(org: Org) -> None:
    visitor = _start(org, _webchat(org))
    path = f"/chat/{visitor.key}/stream"

    assert _refusal(org.client, path, {"type": "auth", "token": "wcv_unknown"}) == 4401
    assert _refusal(org.client, path, {"type": "hello"}) == 4401
    assert (
        _refusal(org.client, path, {"type": "auth", "token": visitor.token, "after": "nope"})
        == 4400
    )
    wrong_key = f"/chat/wc_{'k' * 22}/stream"
    assert _refusal(org.client, wrong_key, {"type": "auth", "token": visitor.token}) == 4404
