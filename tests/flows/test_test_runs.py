"""Test runs: scripted replies and HTTP answers, a frozen clock, seeded ids, and nothing written
(SPEC "Flows": a test run is deterministic and its writes never reach the real tables)."""

from __future__ import annotations

from typing import Any

from tests.factories import Org
from tests.flows.conftest import say

ASK: dict[str, Any] = {
    "id": "ask",
    "action": "wait_for_reply",
    "params": {"chatInstanceId": "{chatInstanceId}", "timeout_seconds": 600},
}


def _flow(org: Org, document: dict[str, Any]) -> str:
    flow_id: str = org.api.ok("POST", "/v1/flows", {"name": "T", "document": document}, status=201)[
        "id"
    ]
    return flow_id


CONVERSATION: dict[str, Any] = {
    "trigger": {"type": "message_received"},
    "start": "q",
    "nodes": [
        say("q", "Hi {contact.first_name}, track your order?"),
        ASK,
        {
            "id": "lookup",
            "action": "http_request",
            "params": {
                "method": "GET",
                "url": "https://shop.example/orders/{steps.ask.reply.text}",
                "save": {"state": "body.state"},
            },
        },
        say("tell", "Order {steps.ask.reply.text} is {state}"),
        say("bye", "Talk soon"),
    ],
    "edges": [
        {"from": "q", "outcome": "sent", "to": "ask"},
        {"from": "ask", "outcome": "reply", "to": "lookup"},
        {"from": "ask", "outcome": "timeout", "to": "bye"},
        {"from": "lookup", "outcome": "success", "to": "tell"},
    ],
}


def test_a_test_run_follows_scripted_replies_and_http_answers_and_writes_nothing(org: Org) -> None:
    flow_id = _flow(org, CONVERSATION)
    events_before = len(org.events())
    result = org.api.ok(
        "POST",
        f"/v1/flows/{flow_id}/test-runs",
        {
            "trigger": {"contact": {"first_name": "Ada"}, "message": {"text": "hello"}},
            "replies": [{"text": "A-17", "after_seconds": 30}],
            "http": [{"node": "lookup", "status": 200, "body": {"state": "shipped"}}],
            "now": "2026-06-01T08:00:00Z",
        },
    )
    assert result["status"] == "completed"
    assert [(m["direction"], m["text"]) for m in result["transcript"]] == [
        ("inbound", "hello"),
        ("outbound", "Hi Ada, track your order?"),
        ("inbound", "A-17"),
        ("outbound", "Order A-17 is shipped"),
    ]
    assert [s["outcome"] for s in result["steps"]] == ["sent", "reply", "success", "sent"]
    assert result["steps"][1]["ended_at"] == "2026-06-01T08:00:30.000Z"
    [request] = result["http_requests"]
    assert request["url"] == "https://shop.example/orders/A-17"
    assert request["idempotency_key"] == f"{result['run_id']}.3"
    assert result["run_id"] == "run_t0001"
    assert [e["type"] for e in result["side_effects"]] == ["message.sent", "message.sent"]
    # Nothing reached the real tables: no run, no event, no message.
    assert org.api.ok("GET", f"/v1/flows/{flow_id}/runs")["data"] == []
    assert len(org.events()) == events_before


def test_a_scripted_timeout_and_an_unanswered_wait(org: Org) -> None:
    flow_id = _flow(org, CONVERSATION)
    timed_out = org.api.ok(
        "POST", f"/v1/flows/{flow_id}/test-runs", {"replies": [{"timeout": True}]}
    )
    assert [s["outcome"] for s in timed_out["steps"]] == ["sent", "timeout", "sent"]
    assert timed_out["steps"][1]["ended_at"] == "2026-01-01T00:10:00.000Z"
    waiting = org.api.ok("POST", f"/v1/flows/{flow_id}/test-runs", {})
    assert waiting["status"] == "waiting"
    assert waiting["waiting"] == {
        "kind": "reply",
        "node": "ask",
        "until": "2026-01-01T00:10:00.000Z",
    }


def test_a_test_run_meets_a_closed_window_as_the_real_run_would_r4(org: Org) -> None:
    flow_id = _flow(
        org,
        {
            "trigger": {"type": "chatroom_created"},
            "start": "q",
            "nodes": [say("q", "Hi")],
            "edges": [],
        },
    )
    result = org.api.ok(
        "POST", f"/v1/flows/{flow_id}/test-runs", {"trigger": {"window_open": False}}
    )
    assert result["status"] == "failed"
    assert result["steps"][0]["outcome"] == "window_closed"
    assert result["transcript"] == []


def test_a_test_run_of_an_invalid_document_lists_its_errors(org: Org) -> None:
    flow_id = _flow(
        org,
        {"trigger": {"type": "manual"}, "start": "q", "nodes": [say("q", "{nope}")], "edges": []},
    )
    response = org.api.post(f"/v1/flows/{flow_id}/test-runs", {})
    assert response.status_code == 422
    assert {e["parameter"] for e in response.json()["errors"]} == {"message", "chatInstanceId"}


def test_a_loop_stops_at_the_repeat_limit(org: Org) -> None:
    document = {
        "trigger": {"type": "manual"},
        "start": "a",
        "nodes": [{"id": "a", "action": "set_variable", "params": {"name": "x", "value": "1"}}],
        "edges": [{"from": "a", "outcome": "next", "to": "a"}],
    }
    result = org.api.ok("POST", f"/v1/flows/{_flow(org, document)}/test-runs", {})
    catalog = org.api.ok("GET", "/v1/flow-actions")
    assert result["status"] == "failed" and result["error"]["code"] == "repeat_limit"
    assert len(result["steps"]) == catalog["limits"]["max_node_repeats"]


def test_a_long_loop_stops_at_the_step_limit(org: Org) -> None:
    ids = [f"n{i}" for i in range(8)]
    document = {
        "trigger": {"type": "manual"},
        "start": "n0",
        "nodes": [
            {"id": i, "action": "set_variable", "params": {"name": "x", "value": i}} for i in ids
        ],
        "edges": [
            {"from": a, "outcome": "next", "to": b}
            for a, b in zip(ids, [*ids[1:], ids[0]], strict=True)
        ],
    }
    result = org.api.ok("POST", f"/v1/flows/{_flow(org, document)}/test-runs", {})
    limits = org.api.ok("GET", "/v1/flow-actions")["limits"]
    assert result["error"]["code"] == "step_limit"
    assert len(result["steps"]) == limits["max_steps_per_run"]


def test_a_run_older_than_the_age_limit_fails_when_it_wakes(org: Org) -> None:
    month = 30 * 24 * 3600
    document = {
        "trigger": {"type": "manual"},
        "start": "a",
        "nodes": [
            {"id": "a", "action": "delay", "params": {"seconds": month}},
            {"id": "b", "action": "delay", "params": {"seconds": month}},
            {"id": "c", "action": "end"},
        ],
        "edges": [
            {"from": "a", "outcome": "next", "to": "b"},
            {"from": "b", "outcome": "next", "to": "c"},
        ],
    }
    result = org.api.ok("POST", f"/v1/flows/{_flow(org, document)}/test-runs", {})
    assert result["status"] == "failed" and result["error"]["code"] == "run_age_limit"
    assert [s["node"] for s in result["steps"]] == ["a"]
