"""The fake Graph API and the webhook payload builders that the WhatsApp channel tests use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_graph import ACCESS_TOKEN, API_VERSION, FakeGraph
from tests.whatsapp_payloads import (
    PHONE_NUMBER_ID,
    WABA_ID,
    batch,
    button_tap,
    encode,
    sign,
    status_update,
    text_message,
)

MESSAGES = f"/{API_VERSION}/{PHONE_NUMBER_ID}/messages"
TEMPLATES = f"/{API_VERSION}/{WABA_ID}/message_templates"
TEXT = {"messaging_product": "whatsapp", "to": "+1 650-555-1234", "type": "text"}


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@pytest.fixture
def client(graph: FakeGraph) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    with httpx.Client(base_url=graph.url, headers=headers, trust_env=False, timeout=5) as http:
        yield http


def send_text(client: httpx.Client, body: str = "hello") -> httpx.Response:
    return client.post(MESSAGES, json={**TEXT, "text": {"body": body}})


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def test_text_send_answers_a_wamid_and_is_recorded(graph: FakeGraph, client: httpx.Client) -> None:
    response = send_text(client)

    assert response.status_code == 200
    answer = response.json()
    [message] = answer["messages"]
    assert message["id"].startswith("wamid.")
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": "+1 650-555-1234", "wa_id": "16505551234"}]
    [send] = graph.wait_for_sends(1)
    assert (send.phone_number_id, send.api_version, send.wamid) == (
        PHONE_NUMBER_ID,
        API_VERSION,
        message["id"],
    )
    assert send.body["text"] == {"body": "hello"}
    assert (send.to, send.type) == ("+1 650-555-1234", "text")


def test_every_send_gets_its_own_wamid(client: httpx.Client) -> None:
    wamids = {send_text(client).json()["messages"][0]["id"] for _ in range(5)}

    assert len(wamids) == 5


def test_template_send_needs_name_and_language_code(graph: FakeGraph, client: httpx.Client) -> None:
    template = {"name": "order_update", "language": {"policy": "deterministic"}}

    response = client.post(MESSAGES, json={**TEXT, "type": "template", "template": template})

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["type"]) == (100, "OAuthException")
    assert "template['language']['code']" in error["message"]
    assert graph.sends == []


def test_wrong_token_answers_401_with_code_190_and_sends_nothing(graph: FakeGraph) -> None:
    with httpx.Client(base_url=graph.url, trust_env=False) as stranger:
        response = stranger.post(
            MESSAGES,
            json={**TEXT, "text": {"body": "hi"}},
            headers={"Authorization": "Bearer not-the-token"},
        )

    assert response.status_code == 401
    error = error_of(response)
    assert (error["code"], error["type"]) == (190, "OAuthException")
    assert error["fbtrace_id"]
    assert graph.sends == []
    [request] = graph.received
    assert (request.method, request.path) == ("POST", MESSAGES)


def test_unknown_phone_number_id_is_graphs_missing_object_error(client: httpx.Client) -> None:
    response = client.post(f"/{API_VERSION}/999/messages", json={**TEXT, "text": {"body": "x"}})

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["error_subcode"], error["type"]) == (
        100,
        33,
        "GraphMethodException",
    )


def test_scripted_429_is_answered_once_then_sends_succeed(
    graph: FakeGraph, client: httpx.Client
) -> None:
    graph.fail_next(429, 130429, "Rate limit hit", retry_after=3)

    refused = send_text(client)
    accepted = send_text(client)

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"
    error = error_of(refused)
    assert error["code"] == 130429
    assert error["message"] == "(#130429) Rate limit hit"
    assert error["error_data"] == {"messaging_product": "whatsapp", "details": "Rate limit hit"}
    assert accepted.status_code == 200
    [send] = graph.sends
    assert send.wamid == accepted.json()["messages"][0]["id"]


def test_scripted_failure_for_messages_leaves_template_listing_alone(
    graph: FakeGraph, client: httpx.Client
) -> None:
    graph.fail_next(500, 131000, "Something went wrong", times=2)

    assert client.get(TEMPLATES).status_code == 200
    assert [send_text(client).status_code for _ in range(3)] == [500, 500, 200]


def test_dropped_send_closes_the_connection_and_is_not_recorded(
    graph: FakeGraph, client: httpx.Client
) -> None:
    graph.drop_next()

    with pytest.raises(httpx.RemoteProtocolError):
        send_text(client)

    assert graph.sends == []
    assert send_text(client).status_code == 200


def test_delayed_send_times_out_the_client_but_is_recorded(
    graph: FakeGraph, client: httpx.Client
) -> None:
    graph.delay_next(2.0)

    with pytest.raises(httpx.ReadTimeout):
        client.post(MESSAGES, json={**TEXT, "text": {"body": "slow"}}, timeout=0.2)

    [send] = graph.wait_for_sends(1)
    assert send.body["text"] == {"body": "slow"}


def test_check_templates_refuses_a_template_that_is_not_approved(client: httpx.Client) -> None:
    template_send = {
        **TEXT,
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "en_US"}},
    }
    with FakeGraph(check_templates=True) as strict:
        strict.add_template("order_update", status="PENDING")
        refused = client.post(f"{strict.url}{MESSAGES}", json=template_send)
        strict.set_template_status("order_update", "en_US", "APPROVED")
        accepted = client.post(f"{strict.url}{MESSAGES}", json=template_send)

    assert (refused.status_code, error_of(refused)["code"]) == (404, 132001)
    assert accepted.status_code == 200
    assert accepted.json()["messages"][0]["message_status"] == "accepted"


def test_created_template_is_pending_and_listed_with_cursor_paging(
    graph: FakeGraph, client: httpx.Client
) -> None:
    for name in ("welcome", "order_update", "survey"):
        graph.add_template(name)
    definition = {
        "name": "shipping_notice",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Your order {{1}} shipped", "example": {}}],
    }

    created = client.post(TEMPLATES, json=definition)
    first = client.get(TEMPLATES, params={"limit": 3})
    second = client.get(first.json()["paging"]["next"])

    assert created.status_code == 200
    assert created.json()["status"] == "PENDING"
    assert created.json()["category"] == "UTILITY"
    assert created.json()["id"].isdigit()
    first_page, second_page = first.json(), second.json()
    assert [t["name"] for t in first_page["data"]] == ["welcome", "order_update", "survey"]
    assert first_page["paging"]["cursors"]["after"]
    [listed] = second_page["data"]
    assert listed == {
        "name": "shipping_notice",
        "language": "en_US",
        "status": "PENDING",
        "category": "UTILITY",
        "id": created.json()["id"],
        "components": definition["components"],
    }
    assert "next" not in second_page["paging"]
    assert second.request.url.params["limit"] == "3"
    listing = graph.received[-1]
    assert (listing.method, listing.path) == ("GET", TEMPLATES)
    assert "after=" in listing.query


def test_review_result_shows_in_the_listing(graph: FakeGraph, client: httpx.Client) -> None:
    graph.add_template("promo", category="MARKETING", status="PENDING")

    rejected = graph.set_template_status("promo", "en_US", "REJECTED", "INCORRECT_CATEGORY")
    [listed] = client.get(TEMPLATES).json()["data"]

    assert (listed["id"], listed["status"], listed["rejected_reason"]) == (
        rejected.id,
        "REJECTED",
        "INCORRECT_CATEGORY",
    )


def test_creating_a_template_twice_in_one_language_is_refused(client: httpx.Client) -> None:
    definition = {
        "name": "welcome",
        "language": "en_US",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hi"}],
    }

    assert client.post(TEMPLATES, json=definition).status_code == 200
    again = client.post(TEMPLATES, json=definition)

    assert (again.status_code, error_of(again)["error_subcode"]) == (400, 2388024)


def test_sign_matches_the_documented_test_vector() -> None:
    assert sign(b"test", "secret") == (
        "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    )


def test_encode_escapes_non_ascii_as_meta_signs_it() -> None:
    body = encode(text_message("J'ai mangé des pâtes"))

    assert b"mang\\u00e9" in body
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["text"] == {
        "body": "J'ai mangé des pâtes"
    }


def test_button_tap_carries_the_template_wamid_as_context() -> None:
    payload = button_tap("YES", "Yes please", context_id="wamid.TEMPLATE", timestamp=1749416383)

    [entry] = payload["entry"]
    [change] = entry["changes"]
    [message] = change["value"]["messages"]
    assert (entry["id"], change["field"]) == (WABA_ID, "messages")
    assert message["context"]["id"] == "wamid.TEMPLATE"
    assert message["button"] == {"payload": "YES", "text": "Yes please"}
    assert message["timestamp"] == "1749416383"


def test_batch_merges_messages_and_statuses_of_one_number_into_one_change() -> None:
    first, second = text_message("one"), text_message("two")
    status = status_update("wamid.OUT", "delivered")

    merged = batch(first, second, status)

    [entry] = merged["entry"]
    [change] = entry["changes"]
    value = change["value"]
    assert [m["text"]["body"] for m in value["messages"]] == ["one", "two"]
    assert len(value["contacts"]) == 1
    assert [s["status"] for s in value["statuses"]] == ["delivered"]
