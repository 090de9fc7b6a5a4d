"""R10, end to end: the seed's "Send a Message to a Chat Instance" example, tested, deployed, and
sent to `{chatInstanceId}` when its trigger fires."""

from __future__ import annotations

from typing import Any

from tests.factories import Org
from tests.flows.conftest import Engine, bot_texts, deployed_flow, run_detail, runs_of

CONFIRMATION = "Your order has been confirmed. Let us know if you need further assistance."

SEED_FLOW: dict[str, Any] = {
    "trigger": {
        "type": "message_received",
        "params": {"text_operator": "contains", "text": "order"},
    },
    "start": "confirm",
    "nodes": [
        {
            "id": "confirm",
            "action": "send_message",
            "params": {"message": CONFIRMATION, "chatInstanceId": "{chatInstanceId}"},
        }
    ],
    "edges": [],
    "layout": {"confirm": {"x": 240, "y": 120}},
}


def test_the_catalog_describes_send_a_message_to_a_chat_instance_as_the_seed_does(
    org: Org,
) -> None:
    catalog = org.api.ok("GET", "/v1/flow-actions")
    action = next(a for a in catalog["actions"] if a["key"] == "send_message")
    assert action["title"] == "Send a Message to a Chat Instance"
    assert action["category"] == "Chat Management"
    params = {p["name"]: p for p in action["parameters"]}
    assert params["message"]["type"] == "string" and params["message"]["required"] is True
    assert params["chatInstanceId"]["type"] == "string"
    assert params["chatInstanceId"]["required"] is True
    assert params["chatInstanceId"]["example"] == "{chatInstanceId}"
    assert [o["name"] for o in action["outcomes"]] == ["sent", "window_closed", "failed"]
    keys = {a["key"] for a in catalog["actions"]}
    assert {
        "send_template",
        "create_contact",
        "create_chatroom",
        "reassign_chatroom",
        "http_request",
        "set_variable",
        "condition",
        "wait_for_reply",
        "delay",
        "end",
    } <= keys
    assert catalog["limits"]["max_steps_per_run"] > 0


def test_seed_example_test_run_then_deploy_then_the_trigger_sends_it(
    org: Org, engine: Engine
) -> None:
    flow = org.api.ok(
        "POST", "/v1/flows", {"name": "Order confirmation", "document": SEED_FLOW}, status=201
    )
    assert org.api.ok("POST", f"/v1/flows/{flow['id']}/validate")["valid"] is True

    # Test before deploying (the seed's tip): nothing is sent for real.
    test = org.api.ok(
        "POST",
        f"/v1/flows/{flow['id']}/test-runs",
        {"trigger": {"contact": {"first_name": "Ada"}, "message": {"text": "my order 42"}}},
    )
    assert test["status"] == "completed"
    outbound = [m for m in test["transcript"] if m["direction"] == "outbound"]
    assert [m["text"] for m in outbound] == [CONFIRMATION]
    assert test["steps"][0]["params"]["chatInstanceId"] == outbound[0]["chatroom_id"]
    assert test["steps"][0]["outcome"] == "sent"

    org.api.ok("POST", f"/v1/flows/{flow['id']}/deploy", {"message": "first"}, status=201)
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "Hi, about my order")
    engine.triggers()

    assert bot_texts(org, chatroom["id"]) == [CONFIRMATION]
    [run] = runs_of(org, flow["id"])
    assert run["status"] == "completed" and run["chatroom_id"] == chatroom["id"]
    detail = run_detail(org, run["id"])
    [step] = detail["steps"]
    assert step["action"] == "send_message" and step["outcome"] == "sent"
    # Parameters are recorded after interpolation: the real chatroom, not the variable.
    assert step["params"] == {"message": CONFIRMATION, "chatInstanceId": chatroom["id"]}
    types = [e["type"] for e in org.events(chatroom_id=chatroom["id"])]
    assert "flow_run.completed" in types

    # Handled once: reading the log again starts nothing more.
    engine.triggers()
    assert len(runs_of(org, flow["id"])) == 1
    # A message that does not match the trigger's text starts nothing.
    org.customer_says(chatroom["id"], "thanks!")
    engine.triggers()
    assert len(runs_of(org, flow["id"])) == 1


def test_the_test_run_is_byte_identical_for_the_same_input(org: Org) -> None:
    flow = deployed_flow(org, SEED_FLOW)
    body = {"trigger": {"message": {"text": "order"}}, "now": "2026-05-01T10:00:00Z"}
    first = org.api.post(f"/v1/flows/{flow['id']}/test-runs", body)
    second = org.api.post(f"/v1/flows/{flow['id']}/test-runs", body)
    assert first.status_code == 200
    assert first.content == second.content
    # Nothing reached the real tables.
    assert runs_of(org, flow["id"]) == []
