"""The sandbox customer (`POST /v1/sandbox/inbound`): its errors, and message statuses."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from tests.factories import Org, snapshot

INBOUND = "/v1/sandbox/inbound"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _tap(org: Org, chatroom_id: str, message_id: str, index: int) -> httpx.Response:
    return org.api.post(
        INBOUND, {"chatroom_id": chatroom_id, "button": {"message_id": message_id, "index": index}}
    )


def test_tap_on_a_message_that_is_not_a_template_is_refused(org: Org) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"])
    text = org.api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "Hi"}, status=201
    )
    before = snapshot(org)

    problem = _problem(_tap(org, chatroom["id"], text["id"], 0), 422, "not_a_template_message")

    assert [e["pointer"] for e in problem["errors"]] == ["/button"]
    assert snapshot(org) == before


def test_tap_on_an_unknown_message_is_refused(org: Org) -> None:
    chatroom = org.chatroom()
    before = snapshot(org)

    response = _tap(org, chatroom["id"], "msg_00000000000000000000000000", 0)

    _problem(response, 422, "not_a_template_message")
    assert snapshot(org) == before


def test_tap_on_a_template_of_another_chatroom_is_refused(org: Org) -> None:
    template = org.template()
    other = org.chatroom()
    sent = org.send_template(other["id"], template)
    chatroom = org.chatroom()
    before = snapshot(org)

    _problem(_tap(org, chatroom["id"], sent["id"], 0), 422, "not_a_template_message")

    assert snapshot(org) == before


def test_tap_on_a_button_index_the_template_does_not_have_is_refused(org: Org) -> None:
    chatroom = org.chatroom()
    sent = org.send_template(chatroom["id"], org.template())  # buttons 0 and 1
    before = snapshot(org)

    _problem(_tap(org, chatroom["id"], sent["id"], 2), 422, "not_a_template_message")

    assert snapshot(org) == before


def test_tap_on_a_url_button_is_refused(org: Org) -> None:
    template = org.template(
        components=[
            {"type": "BODY", "text": "Your order shipped."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Track it", "url": "https://shop.example/track"},
                    {"type": "QUICK_REPLY", "text": "Talk to us"},
                ],
            },
        ]
    )
    chatroom = org.chatroom()
    sent = org.send_template(chatroom["id"], template, variables={})
    before = snapshot(org)

    _problem(_tap(org, chatroom["id"], sent["id"], 0), 422, "not_a_template_message")

    assert snapshot(org) == before
    assert _tap(org, chatroom["id"], sent["id"], 1).status_code == 201


def test_text_and_button_together_are_refused(org: Org) -> None:
    chatroom = org.chatroom()
    sent = org.send_template(chatroom["id"], org.template())
    before = snapshot(org)

    response = org.api.post(
        INBOUND,
        {
            "chatroom_id": chatroom["id"],
            "text": "Yes",
            "button": {"message_id": sent["id"], "index": 0},
        },
    )

    _problem(response, 422, "validation_error")
    assert snapshot(org) == before


def test_neither_text_nor_button_is_refused(org: Org) -> None:
    chatroom = org.chatroom()
    before = snapshot(org)

    response = org.api.post(INBOUND, {"chatroom_id": chatroom["id"]})

    _problem(response, 422, "validation_error")
    assert snapshot(org) == before


def test_sandbox_inbound_into_a_non_sandbox_chatroom_is_a_channel_mismatch(org: Org) -> None:
    channel = org.api.ok("POST", "/v1/channels", {"type": "webchat", "name": "Website"}, status=201)
    chatroom = org.chatroom(channel_id=channel["id"])
    before = snapshot(org)

    response = org.api.post(INBOUND, {"chatroom_id": chatroom["id"], "text": "Hello"})

    _problem(response, 409, "channel_mismatch")
    assert snapshot(org) == before


def test_sandbox_inbound_naming_a_non_sandbox_channel_is_a_channel_mismatch(org: Org) -> None:
    channel = org.api.ok("POST", "/v1/channels", {"type": "webchat", "name": "Website"}, status=201)
    contact = org.contact()
    before = snapshot(org)

    response = org.api.post(
        INBOUND, {"channel_id": channel["id"], "contact_id": contact["id"], "text": "Hello"}
    )

    _problem(response, 409, "channel_mismatch")
    assert snapshot(org) == before


def test_customer_who_writes_first_gets_a_new_open_chatroom_without_participants(
    org: Org,
) -> None:
    contact = org.contact()
    body = {"channel_id": org.channel_id, "contact_id": contact["id"], "text": "Hello?"}

    first = org.api.ok("POST", INBOUND, body, status=201)

    chatroom = org.api.ok("GET", f"/v1/chatrooms/{first['chatroom_id']}")
    assert chatroom["status"] == "open"
    assert chatroom["participants"] == []
    assert chatroom["pending_agent_ids"] == []
    assert (chatroom["contact_id"], chatroom["channel_id"]) == (contact["id"], org.channel_id)
    assert first["sender"] == {"type": "contact", "id": contact["id"]}
    created = org.events(type="chatroom.created", chatroom_id=chatroom["id"])
    assert len(created) == 1


def test_customer_who_writes_again_uses_the_same_chatroom(org: Org) -> None:
    contact = org.contact()
    body = {"channel_id": org.channel_id, "contact_id": contact["id"], "text": "Hello?"}
    first = org.api.ok("POST", INBOUND, body, status=201)

    second = org.api.ok("POST", INBOUND, {**body, "text": "Anyone there?"}, status=201)

    assert second["chatroom_id"] == first["chatroom_id"]
    rooms = org.api.ok("GET", "/v1/chatrooms", params={"limit": 100})["data"]
    assert [room["id"] for room in rooms] == [first["chatroom_id"]]
    messages = org.api.ok("GET", f"/v1/chatrooms/{first['chatroom_id']}/messages")["data"]
    assert [m["id"] for m in messages] == [second["id"], first["id"]]


def test_customer_who_writes_first_into_an_open_chatroom_joins_it(org: Org) -> None:
    contact = org.contact()
    chatroom = org.chatroom(contact=contact)

    message = org.api.ok(
        "POST",
        INBOUND,
        {"channel_id": org.channel_id, "contact_id": contact["id"], "text": "Hi"},
        status=201,
    )

    assert message["chatroom_id"] == chatroom["id"]


def test_agent_role_session_may_not_act_as_the_customer(org: Org) -> None:
    agent, agent_api = org.agent(role="agent")
    chatroom = org.chatroom(participants=[agent["id"]])
    before = snapshot(org)

    response = agent_api.post(INBOUND, {"chatroom_id": chatroom["id"], "text": "Hi"})

    _problem(response, 403, "forbidden")
    assert snapshot(org) == before


def test_admin_session_may_act_as_the_customer(org: Org) -> None:
    admin_api = org.login(org.admin_email)
    chatroom = org.chatroom()

    response = admin_api.post(INBOUND, {"chatroom_id": chatroom["id"], "text": "Hi"})

    assert response.status_code == 201, response.text
    assert response.json()["sender"]["type"] == "contact"


def test_malformed_timestamp_is_refused(org: Org) -> None:
    chatroom = org.chatroom()
    before = snapshot(org)

    response = org.api.post(
        INBOUND, {"chatroom_id": chatroom["id"], "text": "Hi", "timestamp": "yesterday"}
    )

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/timestamp"]
    assert snapshot(org) == before


def test_timestamp_without_a_time_zone_is_refused(org: Org) -> None:
    chatroom = org.chatroom()

    response = org.api.post(
        INBOUND,
        {"chatroom_id": chatroom["id"], "text": "Hi", "timestamp": "2026-03-02T09:00:00"},
    )

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/timestamp"]


def test_outbound_sandbox_messages_are_sent_and_inbound_ones_received(org: Org) -> None:
    chatroom = org.chatroom()
    template = org.send_template(chatroom["id"], org.template())
    text = org.customer_says(chatroom["id"], "Hi")
    tap = org.customer_taps(chatroom["id"], template["id"], 0)
    reply = org.api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "Hello"}, status=201
    )

    assert [template["status"], reply["status"]] == ["sent", "sent"]
    assert [text["status"], tap["status"]] == ["received", "received"]
    listed = org.api.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages")["data"]
    assert [(m["direction"], m["status"]) for m in listed] == [
        ("outbound", "sent"),
        ("inbound", "received"),
        ("inbound", "received"),
        ("outbound", "sent"),
    ]
