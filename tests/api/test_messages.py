"""Free-form messages through the API: the seed's basic flow (R1) and the text rules."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from tests.factories import Org, random_phone, snapshot

MAX_TEXT = 4096


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _open_chatroom(org: Org, **options: Any) -> dict[str, Any]:
    """A sandbox chatroom whose customer has written, so the 24-hour window is open."""
    chatroom = org.chatroom(**options)
    org.customer_says(chatroom["id"])
    return chatroom


def _messages(org: Org, chatroom_id: str) -> list[dict[str, Any]]:
    page = org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}/messages", params={"limit": 100})
    data: list[dict[str, Any]] = page["data"]
    return data


def test_basic_flow_on_the_sandbox_is_template_then_answer_then_free_form_r1(org: Org) -> None:
    agent, _ = org.agent()
    contact = org.api.ok(
        "POST",
        "/v1/contacts",
        {"phone": random_phone(), "first_name": "Ada", "opted_in": True},
        status=201,
    )
    chatroom = org.api.ok(
        "POST",
        "/v1/chatrooms",
        {"contact_id": contact["id"], "channel_id": org.channel_id, "participants": [agent["id"]]},
        status=201,
    )
    assert [p["agent_id"] for p in chatroom["participants"]] == [agent["id"]]
    assert chatroom["window_expires_at"] is None
    path = f"/v1/chatrooms/{chatroom['id']}/messages"

    # The window is closed until the customer writes: free-form is refused, a template goes out.
    _problem(org.api.post(path, {"text": "Hello Ada"}), 409, "customer_window_closed")
    template = org.template()
    sent = org.send_template(chatroom["id"], template)
    answer = org.customer_says(chatroom["id"], "Yes, please")
    reply = org.api.ok("POST", path, {"text": "Great, it is on its way."}, status=201)

    listed = _messages(org, chatroom["id"])
    assert [m["id"] for m in listed] == [reply["id"], answer["id"], sent["id"]]
    shapes = [(m["sender"], m["kind"], m["direction"], m["status"]) for m in listed]
    assert shapes == [
        ({"type": "bot", "id": None}, "text", "outbound", "sent"),
        ({"type": "contact", "id": contact["id"]}, "text", "inbound", "received"),
        ({"type": "bot", "id": None}, "template", "outbound", "sent"),
    ]
    assert listed[0]["text"] == "Great, it is on its way."
    assert listed[0]["chatroom_id"] == chatroom["id"]


def test_messages_are_listed_newest_first_with_cursor_paging_r1(org: Org) -> None:
    chatroom = _open_chatroom(org)
    path = f"/v1/chatrooms/{chatroom['id']}/messages"
    sent = [org.api.ok("POST", path, {"text": f"message {n}"}, status=201)["id"] for n in range(5)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = org.api.ok("GET", path, params=params)
        pages += 1
        assert len(page["data"]) <= 2
        seen.extend(m["id"] for m in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # 5 sent + the customer's opening message, newest first, each exactly once.
    assert pages == 3
    assert seen[:5] == list(reversed(sent))
    assert len(seen) == 6
    assert len(set(seen)) == 6


def test_empty_free_form_text_is_refused_and_nothing_is_stored_r1(org: Org) -> None:
    chatroom = _open_chatroom(org)
    before = snapshot(org)

    response = org.api.post(f"/v1/chatrooms/{chatroom['id']}/messages", {"text": ""})

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/text"]
    assert snapshot(org) == before


def test_whitespace_only_free_form_text_is_refused_and_nothing_is_stored_r1(org: Org) -> None:
    chatroom = _open_chatroom(org)
    before = snapshot(org)

    response = org.api.post(f"/v1/chatrooms/{chatroom['id']}/messages", {"text": " \n\t "})

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/text"]
    assert snapshot(org) == before


def test_free_form_text_over_4096_characters_is_refused_r1(org: Org) -> None:
    chatroom = _open_chatroom(org)
    before = snapshot(org)

    response = org.api.post(
        f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "x" * (MAX_TEXT + 1)}
    )

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/text"]
    assert snapshot(org) == before


def test_free_form_text_of_exactly_4096_characters_is_sent_r1(org: Org) -> None:
    chatroom = _open_chatroom(org)
    text = "é" * (MAX_TEXT - 1) + "!"

    message = org.api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": text}, status=201
    )

    assert message["text"] == text
    assert _messages(org, chatroom["id"])[0]["text"] == text


def test_api_key_without_as_agent_id_sends_as_the_bot(org: Org) -> None:
    chatroom = _open_chatroom(org)

    message = org.api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "Hi"}, status=201
    )

    assert message["sender"] == {"type": "bot", "id": None}


def test_api_key_with_as_agent_id_sends_as_that_agent(org: Org) -> None:
    agent, _ = org.agent()
    chatroom = _open_chatroom(org, participants=[agent["id"]])

    message = org.api.ok(
        "POST",
        f"/v1/chatrooms/{chatroom['id']}/messages",
        {"text": "Hi, Ada here", "as_agent_id": agent["id"]},
        status=201,
    )

    assert message["sender"] == {"type": "agent", "id": agent["id"]}
    assert _messages(org, chatroom["id"])[0]["sender"] == {"type": "agent", "id": agent["id"]}


def test_api_key_with_unknown_as_agent_id_is_not_found_and_nothing_is_stored(org: Org) -> None:
    chatroom = _open_chatroom(org)
    before = snapshot(org)

    response = org.api.post(
        f"/v1/chatrooms/{chatroom['id']}/messages",
        {"text": "Hi", "as_agent_id": "ag_00000000000000000000000000"},
    )

    _problem(response, 404, "not_found")
    assert snapshot(org) == before


def test_agent_session_sends_as_itself(org: Org) -> None:
    agent, agent_api = org.agent()
    chatroom = _open_chatroom(org, participants=[agent["id"]])

    message = agent_api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "On it"}, status=201
    )

    assert message["sender"] == {"type": "agent", "id": agent["id"]}
    assert message["direction"] == "outbound"
    assert _messages(org, chatroom["id"])[0]["id"] == message["id"]


def test_free_form_message_with_buttons_is_refused_buttons_go_only_in_templates_r4(
    org: Org,
) -> None:
    chatroom = _open_chatroom(org)
    before = snapshot(org)

    response = org.api.post(
        f"/v1/chatrooms/{chatroom['id']}/messages",
        {"text": "Pick one", "buttons": [{"type": "QUICK_REPLY", "text": "Yes"}]},
    )

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/buttons"]
    assert snapshot(org) == before
