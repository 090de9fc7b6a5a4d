"""`Idempotency-Key` on POSTs: a retry replays the first answer and never repeats the write."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx2 as httpx
from tests.factories import Org, call, expect_problem, make_org, random_phone, snapshot

from chatflow.clock import ManualClock
from chatflow.services.housekeeping import do_housekeeping


def _key() -> str:
    return f"retry-{uuid.uuid4()}"


def _post(org: Org, path: str, body: Any, key: str, **params: Any) -> httpx.Response:
    return call(org.api, "POST", path, body, params=params, headers={"Idempotency-Key": key})


def _messages(org: Org, chatroom_id: str) -> list[dict[str, Any]]:
    page = org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}/messages", params={"limit": 100})
    messages: list[dict[str, Any]] = page["data"]
    return messages


def _outbound(org: Org, chatroom_id: str) -> list[dict[str, Any]]:
    return [m for m in _messages(org, chatroom_id) if m["direction"] == "outbound"]


def _contacts(org: Org) -> list[dict[str, Any]]:
    contacts: list[dict[str, Any]] = org.api.ok("GET", "/v1/contacts", params={"limit": 100})[
        "data"
    ]
    return contacts


def _open_chatroom(org: Org) -> dict[str, Any]:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "Hello")
    return chatroom


def test_same_key_and_body_replays_the_first_response_byte_for_byte(org: Org) -> None:
    chatroom = _open_chatroom(org)
    path = f"/v1/chatrooms/{chatroom['id']}/messages"
    key = _key()

    first = _post(org, path, {"text": "Your order shipped"}, key)
    again = _post(org, path, {"text": "Your order shipped"}, key)

    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert [m["id"] for m in _outbound(org, chatroom["id"])] == [first.json()["id"]]


def test_replay_does_not_record_events_again(org: Org) -> None:
    chatroom = _open_chatroom(org)
    path = f"/v1/chatrooms/{chatroom['id']}/messages"
    key = _key()
    _post(org, path, {"text": "Once"}, key)
    before = snapshot(org)

    replay = _post(org, path, {"text": "Once"}, key)

    assert replay.headers["idempotent-replayed"] == "true"
    assert snapshot(org) == before


def test_same_key_with_another_body_is_422_and_stores_nothing(org: Org) -> None:
    chatroom = _open_chatroom(org)
    path = f"/v1/chatrooms/{chatroom['id']}/messages"
    key = _key()
    _post(org, path, {"text": "First"}, key)
    before = snapshot(org)

    response = _post(org, path, {"text": "Second"}, key)

    expect_problem(response, 422, "idempotency_key_reused")
    assert snapshot(org) == before
    assert [m["text"] for m in _outbound(org, chatroom["id"])] == ["First"]


def test_same_key_on_another_route_is_422(org: Org) -> None:
    key = _key()
    body = {"phone": random_phone(), "first_name": "Ada"}
    _post(org, "/v1/contacts", body, key)
    chatroom = org.chatroom()
    before = snapshot(org)

    response = _post(org, f"/v1/chatrooms/{chatroom['id']}/close", None, key)

    expect_problem(response, 422, "idempotency_key_reused")
    assert snapshot(org) == before


def test_keys_are_scoped_to_the_organization(org: Org) -> None:
    other = make_org(org.client, org.database)
    key = _key()
    body = {"phone": "+14155552671", "first_name": "Ada"}

    mine = _post(org, "/v1/contacts", body, key)
    theirs = _post(other, "/v1/contacts", body, key)

    assert mine.status_code == 201
    assert theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert [c["id"] for c in _contacts(other)] == [theirs.json()["id"]]
    assert [c["id"] for c in _contacts(org)] == [mine.json()["id"]]


def test_failed_request_stores_nothing_under_its_key_so_a_retry_can_succeed(org: Org) -> None:
    chatroom = org.chatroom()
    path = f"/v1/chatrooms/{chatroom['id']}/messages"
    key = _key()

    refused = _post(org, path, {"text": "Are you there?"}, key)
    expect_problem(refused, 409, "customer_window_closed")
    org.customer_says(chatroom["id"], "Yes, hello")
    retried = _post(org, path, {"text": "Are you there?"}, key)

    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert [m["id"] for m in _outbound(org, chatroom["id"])] == [retried.json()["id"]]


def test_a_key_longer_than_255_characters_is_422_and_nothing_runs(org: Org) -> None:
    response = _post(org, "/v1/contacts", {"phone": random_phone()}, "k" * 256)

    problem = expect_problem(response, 422, "validation_error")
    assert problem["errors"] == [{"pointer": "header:Idempotency-Key", "message": "invalid"}]
    assert _contacts(org) == []


def test_a_key_of_255_characters_is_accepted(org: Org) -> None:
    key = "k" * 250 + uuid.uuid4().hex[:5]
    body = {"phone": random_phone()}

    first = _post(org, "/v1/contacts", body, key)
    again = _post(org, "/v1/contacts", body, key)

    assert first.status_code == 201, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


def test_contact_create_is_idempotent(org: Org) -> None:
    key = _key()
    body = {"phone": random_phone(), "first_name": "Ada", "opted_in": True}

    first = _post(org, "/v1/contacts", body, key)
    again = _post(org, "/v1/contacts", body, key)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert [c["id"] for c in _contacts(org)] == [first.json()["id"]]


def test_replay_returns_the_first_answer_even_after_the_state_changed(org: Org) -> None:
    key = _key()
    body = {"phone": random_phone(), "first_name": "Ada"}
    first = _post(org, "/v1/contacts", body, key)
    org.api.ok("PATCH", f"/v1/contacts/{first.json()['id']}", {"first_name": "Grace"})

    again = _post(org, "/v1/contacts", body, key)

    assert again.content == first.content
    assert again.json()["first_name"] == "Ada"


def test_chatroom_create_replays_its_201(org: Org) -> None:
    contact = org.contact()
    key = _key()
    body = {
        "contact_id": contact["id"],
        "channel_id": org.channel_id,
        "participants": [org.admin_id],
    }

    first = _post(org, "/v1/chatrooms", body, key)
    again = _post(org, "/v1/chatrooms", body, key)
    without_key = call(org.api, "POST", "/v1/chatrooms", body)

    assert first.status_code == 201
    assert first.json()["created"] is True
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert without_key.status_code == 200  # a new request: the existing open chatroom (R2)
    assert without_key.json()["created"] is False
    chatrooms = org.api.ok("GET", "/v1/chatrooms")["data"]
    assert [room["id"] for room in chatrooms] == [first.json()["id"]]


def test_template_send_is_idempotent(org: Org) -> None:
    chatroom = org.chatroom()
    template = org.template()
    path = f"/v1/chatrooms/{chatroom['id']}/template-messages"
    body = {
        "template": template["name"],
        "language": template["language"],
        "variables": {"body": ["Ada", "#1"]},
    }
    key = _key()

    first = _post(org, path, body, key, relay_response="true")
    again = _post(org, path, body, key, relay_response="true")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert [m["id"] for m in _outbound(org, chatroom["id"])] == [first.json()["id"]]


def test_template_send_with_other_flags_under_the_same_key_is_422(org: Org) -> None:
    chatroom = org.chatroom()
    template = org.template()
    path = f"/v1/chatrooms/{chatroom['id']}/template-messages"
    body = {
        "template": template["name"],
        "language": template["language"],
        "variables": {"body": ["Ada", "#1"]},
    }
    key = _key()
    _post(org, path, body, key, relay_response="true")

    response = _post(org, path, body, key, relay_response="false")

    expect_problem(response, 422, "idempotency_key_reused")
    assert len(_outbound(org, chatroom["id"])) == 1


def test_another_caller_of_the_organization_reusing_a_key_gets_422_not_a_replay(org: Org) -> None:
    chatroom = _open_chatroom(org)
    path = f"/v1/chatrooms/{chatroom['id']}/messages"
    key = _key()
    admin = org.login(org.admin_email)
    first = call(org.api, "POST", path, {"text": "Hi"}, headers={"Idempotency-Key": key})
    assert first.status_code == 201

    again = call(admin, "POST", path, {"text": "Hi"}, headers={"Idempotency-Key": key})

    expect_problem(again, 422, "idempotency_key_reused")
    assert [m["id"] for m in _outbound(org, chatroom["id"])] == [first.json()["id"]]


def test_keys_older_than_three_days_are_forgotten_by_housekeeping(
    org: Org, clock: ManualClock
) -> None:
    chatroom = _open_chatroom(org)
    path = f"/v1/chatrooms/{chatroom['id']}/messages"
    key = _key()
    first = _post(org, path, {"text": "Hi"}, key)
    clock.advance(timedelta(hours=71))
    org.database.write_sync(do_housekeeping)
    assert _post(org, path, {"text": "Hi"}, key).headers["idempotent-replayed"] == "true"

    clock.advance(timedelta(hours=2))
    org.customer_says(chatroom["id"], "still there?")  # the window is 24 hours; reopen it
    org.database.write_sync(do_housekeeping)
    fresh = _post(org, path, {"text": "Hi"}, key)

    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
