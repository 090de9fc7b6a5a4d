"""Bad input to flows answers a 4xx problem or fails one run, never a 500, and never reaches
across organizations."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from chatflow.storage.database import Database
from tests.factories import Org, make_org
from tests.flows.conftest import Engine, bot_texts, deployed_flow, run_detail, runs_of, webhook_flow
from tests.webhook_receiver import WebhookReceiver


def _manual(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, **params: Any
) -> dict[str, Any]:
    return {
        "trigger": {"type": "manual", "params": params},
        "start": nodes[0]["id"],
        "nodes": nodes,
        "edges": edges or [],
    }


def test_a_run_cannot_wait_in_another_organizations_chatroom(
    org: Org, engine: Engine, client: TestClient, database: Database
) -> None:
    other = make_org(client, database)
    their_chatroom = other.chatroom()
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "ask",
                    "action": "wait_for_reply",
                    "params": {"chatInstanceId": "{inputs.room}", "timeout_seconds": 60},
                }
            ],
            inputs=["room"],
        ),
    )
    run = org.api.ok(
        "POST",
        f"/v1/flows/{flow['id']}/runs",
        {"inputs": {"room": their_chatroom["id"]}},
        status=201,
    )
    assert run["status"] == "failed"
    other.customer_says(their_chatroom["id"], "my card is 4111")
    engine.triggers()
    assert run_detail(org, run["id"])["steps"] == [] or all(
        "4111" not in str(s["output"]) for s in run_detail(org, run["id"])["steps"]
    )
    empty = org.api.ok("POST", f"/v1/flows/{flow['id']}/runs", {"inputs": {"room": ""}}, status=201)
    assert empty["status"] == "failed"


def test_a_name_made_too_long_by_a_variable_fails_the_step_not_the_request(org: Org) -> None:
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "c",
                    "action": "create_contact",
                    "params": {"phone": "+14155550100", "first_name": "{inputs.name}"},
                }
            ],
            inputs=["name"],
        ),
    )
    run = org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/runs", {"inputs": {"name": "x" * 300}}, status=201
    )
    assert run["status"] == "failed"
    [step] = run_detail(org, run["id"])["steps"]
    assert step["outcome"] == "failed" and step["error"]["code"] == "validation_error"


def test_documents_of_odd_types_or_depth_are_refused_with_422(org: Org) -> None:
    flow = org.api.ok("POST", "/v1/flows", {"name": "x"}, status=201)
    for document in (
        {"trigger": {"type": ["manual"]}},
        {"trigger": {"type": "manual"}, "nodes": [{"id": "a", "action": ["end"]}]},
    ):
        checked = org.api.ok("POST", f"/v1/flows/{flow['id']}/validate", {"document": document})
        assert checked["valid"] is False
        response = org.api.post("/v1/flows", {"name": "odd", "document": document})
        assert response.status_code == 422, response.text
    deep: Any = 1
    for _ in range(60):
        deep = {"a": deep}
    response = org.api.post(
        "/v1/flows", {"name": "deep", "document": {"trigger": {"type": "manual"}, "layout": deep}}
    )
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "too_deep"


def test_a_deep_webhook_body_or_inputs_are_refused(org: Org) -> None:
    flow, secret = webhook_flow(org)
    deep: Any = 1
    for _ in range(60):
        deep = [deep]
    answer = org.client.post(
        f"/hooks/flows/{flow['id']}", json=deep, headers={"X-Chatflow-Secret": secret}
    )
    assert answer.status_code == 422
    assert runs_of(org, flow["id"]) == []


def test_test_run_scripts_of_the_wrong_types_are_refused_with_422(org: Org) -> None:
    flow = org.api.ok("POST", "/v1/flows", {"name": "x"}, status=201)
    bodies: list[dict[str, Any]] = [
        {"replies": [{"button": "x"}]},
        {"replies": [{"text": "a", "after_seconds": "abc"}]},
        {"http": [{"status": "abc"}]},
        {"http": [{"headers": []}]},
        {"trigger": {"contact": "abc"}},
        {"trigger": {"window_open": "false"}},
        {"now": "9999-12-31T23:59:00Z"},
    ]
    for body in bodies:
        response = org.api.post(f"/v1/flows/{flow['id']}/test-runs", body)
        assert response.status_code == 422, (body, response.text)


def test_a_header_with_a_line_break_is_the_steps_error_not_a_stuck_run(
    org: Org, engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "h",
                    "action": "http_request",
                    "params": {"url": webhook_receiver.url_for("/x"), "headers": {"X-A": "a\r\nb"}},
                }
            ]
        ),
    )
    run = org.api.ok("POST", f"/v1/flows/{flow['id']}/runs", {}, status=201)
    engine.timers()
    detail = run_detail(org, run["id"])
    assert detail["status"] == "failed"
    assert detail["steps"][0]["outcome"] == "error"
    assert webhook_receiver.received == []


def test_a_flow_started_by_the_handover_message_is_not_ended_by_that_handover_r8(
    org: Org, engine: Engine
) -> None:
    flow = deployed_flow(
        org,
        {
            "trigger": {"type": "message_received"},
            "start": "hi",
            "nodes": [
                {
                    "id": "hi",
                    "action": "send_message",
                    "params": {
                        "message": "An agent is coming",
                        "chatInstanceId": "{chatInstanceId}",
                    },
                },
                {
                    "id": "ask",
                    "action": "wait_for_reply",
                    "params": {"chatInstanceId": "{chatInstanceId}", "timeout_seconds": 600},
                },
            ],
            "edges": [{"from": "hi", "outcome": "sent", "to": "ask"}],
            "settings": {"end_on_handover": True},
        },
    )
    chatroom = org.chatroom(assign_on_handover=True)
    org.customer_says(chatroom["id"], "hello")  # hands over (R8) and triggers the flow
    engine.triggers()
    [run] = runs_of(org, flow["id"])
    assert run["status"] == "waiting"
    assert bot_texts(org, chatroom["id"]) == ["An agent is coming"]
