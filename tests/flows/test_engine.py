"""The flow engine's nodes and triggers, through the API and the background loops (R3, R4, R8,
R10)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from chatflow.storage import flows as flow_store
from tests.factories import Org
from tests.flows.conftest import (
    Engine,
    bot_texts,
    deployed_flow,
    run_detail,
    runs_of,
    say,
    webhook_flow,
)
from tests.webhook_receiver import WebhookReceiver


def _manual(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **settings: Any
) -> dict[str, Any]:
    return {
        "trigger": {"type": "manual", "params": {"chatroom": True, "inputs": ["order_id"]}},
        "start": nodes[0]["id"],
        "nodes": nodes,
        "edges": edges,
        "settings": settings,
    }


def _edge(source: str, outcome: str, target: str) -> dict[str, str]:
    return {"from": source, "outcome": outcome, "to": target}


def _start(
    org: Org, flow: dict[str, Any], chatroom_id: str, order_id: str = "42"
) -> dict[str, Any]:
    run: dict[str, Any] = org.api.ok(
        "POST",
        f"/v1/flows/{flow['id']}/runs",
        {"chatroom_id": chatroom_id, "inputs": {"order_id": order_id}},
        status=201,
    )
    return run


def _open_chatroom(org: Org) -> dict[str, Any]:
    """A chatroom whose customer wrote: the 24-hour window is open (R4)."""
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "hello")
    return chatroom


ASK: dict[str, Any] = {
    "id": "ask",
    "action": "wait_for_reply",
    "params": {"chatInstanceId": "{chatInstanceId}", "timeout_seconds": 3600},
}


def test_variables_in_both_forms_and_dotted_paths_are_filled_in_r10(
    org: Org, engine: Engine
) -> None:
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "n",
                    "action": "set_variable",
                    "params": {"name": "total", "value": "{inputs.order_id}"},
                },
                say(
                    "greet",
                    "Hi {contact.first_name}, order {{ total }} is in {chatInstanceId}. "
                    '{"json": 1}',
                ),
            ],
            [_edge("n", "next", "greet")],
        ),
    )
    chatroom = _open_chatroom(org)
    run = _start(org, flow, chatroom["id"])
    assert run["status"] == "completed"
    assert bot_texts(org, chatroom["id"]) == [
        f'Hi Ada, order 42 is in {chatroom["id"]}. {{"json": 1}}'
    ]


def test_a_closed_window_takes_the_window_closed_outcome_and_falls_back_to_a_template_r4(
    org: Org, engine: Engine
) -> None:
    template = org.template()
    flow = deployed_flow(
        org,
        _manual(
            [
                say("say", "Free text"),
                {
                    "id": "fallback",
                    "action": "send_template",
                    "params": {
                        "chatInstanceId": "{chatInstanceId}",
                        "template": template["name"],
                        "language": template["language"],
                        "variables": {"body": ["{contact.first_name}", "{inputs.order_id}"]},
                    },
                },
            ],
            [_edge("say", "window_closed", "fallback")],
        ),
    )
    chatroom = org.chatroom()  # the customer never wrote: the window is closed
    run = _start(org, flow, chatroom["id"])
    assert run["status"] == "completed"
    steps = run_detail(org, run["id"])["steps"]
    assert [(s["node"], s["outcome"]) for s in steps] == [
        ("say", "window_closed"),
        ("fallback", "sent"),
    ]
    assert steps[0]["error"]["code"] == "customer_window_closed"
    assert bot_texts(org, chatroom["id"]) == ["Hi Ada, your order 42 is ready."]


def test_an_unhandled_failure_fails_the_run_and_emits_flow_run_failed(
    org: Org, engine: Engine
) -> None:
    flow = deployed_flow(org, _manual([say("say", "Free text")], []))
    chatroom = org.chatroom()
    run = _start(org, flow, chatroom["id"])
    assert run["status"] == "failed"
    assert run["error"]["code"] == "step_failed" and run["error"]["outcome"] == "window_closed"
    assert "flow_run.failed" in [e["type"] for e in org.events(chatroom_id=chatroom["id"])]


def test_wait_for_reply_resumes_on_the_customers_reply(org: Org, engine: Engine) -> None:
    flow = deployed_flow(
        org,
        _manual(
            [
                say("q", "Shall we ship?"),
                ASK,
                say("thanks", "You said: {steps.ask.reply.text}"),
                say("late", "Too late"),
            ],
            [
                _edge("q", "sent", "ask"),
                _edge("ask", "reply", "thanks"),
                _edge("ask", "timeout", "late"),
            ],
        ),
    )
    chatroom = _open_chatroom(org)
    run = _start(org, flow, chatroom["id"])
    assert run["status"] == "waiting" and run["waiting"]["kind"] == "reply"
    assert "flow_run.waiting" in [e["type"] for e in org.events(chatroom_id=chatroom["id"])]
    org.customer_says(chatroom["id"], "Yes please")
    engine.triggers()
    assert bot_texts(org, chatroom["id"]) == ["Shall we ship?", "You said: Yes please"]
    assert run_detail(org, run["id"])["status"] == "completed"
    # The timeout of a wait that was answered never fires.
    engine.later(hours=2)
    assert bot_texts(org, chatroom["id"]) == ["Shall we ship?", "You said: Yes please"]


def test_wait_for_reply_times_out_exactly_once(org: Org, engine: Engine) -> None:
    flow = deployed_flow(
        org,
        _manual([ASK, say("late", "Still there?")], [_edge("ask", "timeout", "late")]),
    )
    chatroom = _open_chatroom(org)
    run = _start(org, flow, chatroom["id"])
    engine.later(minutes=59)
    assert run_detail(org, run["id"])["status"] == "waiting"
    engine.later(minutes=2)
    engine.later(minutes=2)
    assert bot_texts(org, chatroom["id"]) == ["Still there?"]
    detail = run_detail(org, run["id"])
    assert detail["status"] == "completed"
    assert [s["outcome"] for s in detail["steps"]] == ["timeout", "sent"]
    # A late reply finds no waiting run and starts nothing.
    org.customer_says(chatroom["id"], "sorry, here")
    engine.triggers()
    assert bot_texts(org, chatroom["id"]) == ["Still there?"]


def test_a_reply_before_the_deadline_wins_though_the_triggers_had_not_read_it(
    org: Org, engine: Engine
) -> None:
    flow = deployed_flow(
        org,
        _manual(
            [ASK, say("thanks", "Got: {steps.ask.reply.text}"), say("late", "Still there?")],
            [_edge("ask", "reply", "thanks"), _edge("ask", "timeout", "late")],
        ),
    )
    chatroom = _open_chatroom(org)
    run = _start(org, flow, chatroom["id"])
    engine.later(minutes=59)
    org.customer_says(chatroom["id"], "just in time")  # committed; the triggers lag behind
    engine.later(minutes=2)  # the timeout is due: the timers catch the triggers up first
    assert bot_texts(org, chatroom["id"]) == ["Got: just in time"]
    detail = run_detail(org, run["id"])
    assert [s["outcome"] for s in detail["steps"]] == ["reply", "sent"]
    engine.triggers()  # the triggers' own turn finds nothing left to do
    assert bot_texts(org, chatroom["id"]) == ["Got: just in time"]


def test_a_template_button_tap_takes_its_button_outcome(org: Org, engine: Engine) -> None:
    template = org.template()
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "offer",
                    "action": "send_template",
                    "params": {
                        "chatInstanceId": "{chatInstanceId}",
                        "template": template["name"],
                        "language": template["language"],
                        "variables": {"body": ["Ada", "#1"]},
                    },
                },
                ASK,
                say("no", "Maybe next time"),
                say("other", "Got it"),
            ],
            [
                _edge("offer", "sent", "ask"),
                _edge("ask", "button_1", "no"),
                _edge("ask", "reply", "other"),
            ],
        ),
    )
    chatroom = _open_chatroom(org)
    _start(org, flow, chatroom["id"])
    offer = org.api.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages")["data"][0]
    org.customer_taps(chatroom["id"], offer["id"], index=1)
    engine.triggers()
    assert bot_texts(org, chatroom["id"])[-1] == "Maybe next time"


def test_cancel_on_agent_reply_ends_the_wait_when_an_agent_writes(org: Org, engine: Engine) -> None:
    ask = {**ASK, "params": {**ASK["params"], "cancel_on_agent_reply": True}}
    flow = deployed_flow(
        org, _manual([ask, say("late", "Still there?")], [_edge("ask", "timeout", "late")])
    )
    chatroom = _open_chatroom(org)
    run = _start(org, flow, chatroom["id"])
    admin = org.login(org.admin_email)
    admin.ok("POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "I'm on it"}, status=201)
    engine.triggers()
    detail = run_detail(org, run["id"])
    assert detail["status"] == "cancelled" and detail["error"]["code"] == "agent_replied"
    engine.later(hours=2)
    assert bot_texts(org, chatroom["id"]) == []


def test_one_run_per_flow_and_chatroom_a_second_trigger_is_skipped_and_recorded(
    org: Org, engine: Engine
) -> None:
    flow = deployed_flow(org, _manual([ASK], []))
    chatroom = _open_chatroom(org)
    first = _start(org, flow, chatroom["id"])
    second = _start(org, flow, chatroom["id"])
    assert second["status"] == "skipped"
    assert second["error"] == {
        "code": "run_in_progress",
        "message": "The chatroom already has a run of this flow",
        "run_id": first["id"],
    }
    assert run_detail(org, first["id"])["status"] == "waiting"


def test_on_conflict_replace_cancels_the_running_one(org: Org, engine: Engine) -> None:
    flow = deployed_flow(org, _manual([ASK], [], on_conflict="replace"))
    chatroom = _open_chatroom(org)
    first = _start(org, flow, chatroom["id"])
    second = _start(org, flow, chatroom["id"])
    assert second["status"] == "waiting"
    old = run_detail(org, first["id"])
    assert old["status"] == "cancelled" and old["error"]["by"] == second["id"]


def test_end_on_handover_ends_the_run_when_agents_join_r8(org: Org, engine: Engine) -> None:
    flow = deployed_flow(org, _manual([ASK], [], end_on_handover=True))
    contact = org.contact()
    chatroom = org.chatroom(contact=contact, assign_on_handover=True)
    org.api.ok(
        "POST",
        f"/v1/flows/{flow['id']}/runs",
        {"chatroom_id": chatroom["id"], "inputs": {"order_id": "1"}},
        status=201,
    )
    [run] = runs_of(org, flow["id"])
    org.customer_says(chatroom["id"], "I want a human")  # R8: the pending agents join
    engine.triggers()
    detail = run_detail(org, run["id"])
    assert detail["status"] == "cancelled" and detail["error"]["code"] == "handed_over"


def test_delay_resumes_after_its_time(org: Org, engine: Engine) -> None:
    flow = deployed_flow(
        org,
        _manual(
            [
                {"id": "pause", "action": "delay", "params": {"seconds": 600}},
                say("after", "Ten minutes later"),
            ],
            [_edge("pause", "next", "after")],
        ),
    )
    chatroom = _open_chatroom(org)
    run = _start(org, flow, chatroom["id"])
    assert run["waiting"]["kind"] == "delay"
    engine.later(minutes=9)
    assert bot_texts(org, chatroom["id"]) == []
    engine.later(minutes=2)
    assert bot_texts(org, chatroom["id"]) == ["Ten minutes later"]


def test_condition_takes_the_first_branch_that_holds_else_else(org: Org, engine: Engine) -> None:
    branches = [
        {
            "outcome": "big",
            "rules": [
                {"value": "{inputs.order_id}", "operator": "greater_than", "compare_to": "100"}
            ],
        },
        {
            "outcome": "vip",
            "match": "any",
            "rules": [
                {"value": "{contact.first_name}", "operator": "equals", "compare_to": "ada"},
                {"value": "{contact.email}", "operator": "ends_with", "compare_to": "@vip.example"},
            ],
        },
    ]
    flow = deployed_flow(
        org,
        _manual(
            [
                {"id": "c", "action": "condition", "params": {"branches": branches}},
                say("big", "Big order"),
                say("vip", "Hello VIP"),
                say("else", "Hello"),
            ],
            [_edge("c", "big", "big"), _edge("c", "vip", "vip"), _edge("c", "else", "else")],
        ),
    )
    chatroom = _open_chatroom(org)
    _start(org, flow, chatroom["id"], order_id="500")
    other = _open_chatroom(org)
    _start(org, flow, other["id"], order_id="5")
    assert bot_texts(org, chatroom["id"]) == ["Big order"]
    assert bot_texts(org, other["id"]) == ["Hello VIP"]


def test_http_request_sends_an_idempotency_key_and_maps_the_response(
    org: Org, engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.respond_with(
        200, body=b'{"order": {"status": "shipped"}}', headers={"content-type": "application/json"}
    )
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "lookup",
                    "action": "http_request",
                    "params": {
                        "method": "POST",
                        "url": webhook_receiver.url_for("/orders/{inputs.order_id}"),
                        "body": {
                            "text": '{contact.first_name} said "hi"',
                            "n": "{inputs.order_id}",
                        },
                        "save": {"order_status": "body.order.status"},
                    },
                },
                say("tell", "Your order is {order_status}"),
            ],
            [_edge("lookup", "success", "tell")],
        ),
    )
    chatroom = _open_chatroom(org)
    run = _start(org, flow, chatroom["id"])
    assert run["waiting"]["kind"] == "http"
    engine.timers()
    [request] = webhook_receiver.received
    assert request.path == "/orders/42"
    assert request.headers["idempotency-key"] == f"{run['id']}.1"
    assert json.loads(request.body) == {"text": 'Ada said "hi"', "n": "42"}
    assert bot_texts(org, chatroom["id"]) == ["Your order is shipped"]
    step = run_detail(org, run["id"])["steps"][0]
    assert step["outcome"] == "success" and step["output"]["status"] == 200


def test_http_request_error_outcome(
    org: Org, engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.respond_with(503, body=b"down")
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "lookup",
                    "action": "http_request",
                    "params": {"url": webhook_receiver.url_for("/x")},
                },
                say("sorry", "Try later ({steps.lookup.status})"),
            ],
            [_edge("lookup", "error", "sorry")],
        ),
    )
    chatroom = _open_chatroom(org)
    _start(org, flow, chatroom["id"])
    engine.timers()
    assert bot_texts(org, chatroom["id"]) == ["Try later (503)"]


def test_chatroom_created_trigger_and_a_flows_own_effects_never_retrigger_it(
    org: Org, engine: Engine
) -> None:
    flow = deployed_flow(
        org,
        {
            "trigger": {"type": "chatroom_created", "params": {}},
            "start": "twin",
            "nodes": [
                {
                    "id": "contact",
                    "action": "create_contact",
                    "params": {"phone": "+14155550199", "first_name": "Twin"},
                },
                {
                    "id": "twin",
                    "action": "create_chatroom",
                    "params": {
                        "contact_id": "{steps.contact.contact_id}",
                        "channel_id": "{chatroom.channel_id}",
                    },
                },
            ],
            "edges": [],
        },
    )
    # Start at "contact": it makes the contact, then the chatroom.
    org.api.ok(
        "PUT",
        f"/v1/flows/{flow['id']}",
        {
            "revision": 1,
            "document": {
                **run_document(org, flow),
                "start": "contact",
                "edges": [
                    _edge("contact", "created", "twin"),
                    _edge("contact", "existing", "twin"),
                ],
            },
        },
    )
    org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/deploy", {"message": "start at contact"}, status=201
    )
    org.chatroom()
    for _ in range(3):
        engine.triggers()
    runs = runs_of(org, flow["id"])
    assert [r["status"] for r in runs] == ["completed"]
    steps = run_detail(org, runs[0]["id"])["steps"]
    assert [s["outcome"] for s in steps] == ["created", "created"]


def run_document(org: Org, flow: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = org.api.ok("GET", f"/v1/flows/{flow['id']}")["draft"]
    return document


def test_template_response_trigger_fires_on_a_quick_reply_tap(org: Org, engine: Engine) -> None:
    template = org.template()
    flow = deployed_flow(
        org,
        {
            "trigger": {
                "type": "template_response",
                "params": {"template": template["name"], "button_index": 0},
            },
            "start": "ok",
            "nodes": [say("ok", "Thanks for {button.text} on {template.name}")],
            "edges": [],
        },
    )
    chatroom = _open_chatroom(org)
    sent = org.send_template(chatroom["id"], template)
    org.customer_taps(chatroom["id"], sent["id"], index=1)  # not the button the flow listens to
    engine.triggers()
    assert runs_of(org, flow["id"]) == []
    org.customer_taps(chatroom["id"], sent["id"], index=0)
    engine.triggers()
    assert bot_texts(org, chatroom["id"]) == [
        "Hi Ada, your order #1 is ready.",  # the template itself, sent by the API key as the bot
        f"Thanks for Yes on {template['name']}",
    ]


def test_incoming_webhook_trigger_needs_the_flows_secret(org: Org, engine: Engine) -> None:
    flow, secret = webhook_flow(
        org,
        [
            {
                "id": "v",
                "action": "set_variable",
                "params": {"name": "who", "value": "{trigger.body.customer.name}"},
            }
        ],
    )
    url = f"/hooks/flows/{flow['id']}"
    refused = org.client.post(
        url, json={"customer": {"name": "Ada"}}, headers={"X-Chatflow-Secret": "wrong"}
    )
    assert refused.status_code == 401 and refused.json()["code"] == "flow_secret_mismatch"
    assert runs_of(org, flow["id"]) == []
    accepted = org.client.post(
        url, json={"customer": {"name": "Ada"}}, headers={"X-Chatflow-Secret": secret}
    )
    assert accepted.status_code == 202, accepted.text
    [step] = run_detail(org, accepted.json()["run_id"])["steps"]
    assert step["output"] == {"value": "Ada"}


def test_schedule_trigger_fires_at_its_cron_times_once_each(org: Org, engine: Engine) -> None:
    flow = deployed_flow(
        org,
        {
            "trigger": {
                "type": "schedule",
                "params": {"cron": "*/30 * * * *", "timezone": "Europe/Madrid"},
            },
            "start": "v",
            "nodes": [
                {
                    "id": "v",
                    "action": "set_variable",
                    "params": {"name": "at", "value": "{trigger.scheduled_at}"},
                }
            ],
            "edges": [],
        },
    )
    assert org.api.ok("GET", f"/v1/flows/{flow['id']}")["next_fire_at"] is not None
    engine.later(minutes=31)
    engine.timers()
    assert len(runs_of(org, flow["id"])) == 1
    engine.later(minutes=30)
    assert len(runs_of(org, flow["id"])) == 2


def test_a_crash_before_a_send_step_commits_sends_nothing_and_the_retry_sends_once(
    org: Org, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = deployed_flow(
        org,
        {
            "trigger": {"type": "message_received"},
            "start": "reply",
            "nodes": [say("reply", "Got: {message.text}")],
            "edges": [],
        },
    )
    chatroom = org.chatroom()
    real_insert_steps = flow_store.insert_steps

    def power_cut(tx: Any, steps: Any) -> None:
        # The message is written, the step is not: the transaction dies here.
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(flow_store, "insert_steps", power_cut)
    org.customer_says(chatroom["id"], "hi")
    with pytest.raises(sqlite3.OperationalError):
        engine.triggers()
    assert bot_texts(org, chatroom["id"]) == []
    assert runs_of(org, flow["id"]) == []

    monkeypatch.setattr(flow_store, "insert_steps", real_insert_steps)
    engine.triggers()
    engine.triggers()
    assert bot_texts(org, chatroom["id"]) == ["Got: hi"]
    assert len(runs_of(org, flow["id"])) == 1


def test_reassign_chatroom_sets_the_agents_r9(org: Org, engine: Engine) -> None:
    agent, _ = org.agent(name="Bea")
    flow = deployed_flow(
        org,
        _manual(
            [
                {
                    "id": "handoff",
                    "action": "reassign_chatroom",
                    "params": {"chatInstanceId": "{chatInstanceId}", "agents": [agent["id"]]},
                },
                {
                    "id": "bad",
                    "action": "reassign_chatroom",
                    "params": {"chatInstanceId": "{chatInstanceId}", "agents": ["ag_nobody"]},
                },
            ],
            [_edge("handoff", "done", "bad")],
        ),
    )
    chatroom = org.chatroom()
    run = _start(org, flow, chatroom["id"])
    steps = run_detail(org, run["id"])["steps"]
    assert [s["outcome"] for s in steps] == ["done", "failed"]
    assert run["status"] == "failed"
    participants = org.api.ok("GET", f"/v1/chatrooms/{chatroom['id']}")["participants"]
    assert [p["agent_id"] for p in participants] == [agent["id"]]


def test_a_chain_of_flows_past_the_depth_limit_is_skipped_and_recorded(
    org: Org, engine: Engine
) -> None:
    flow, secret = webhook_flow(org)
    headers = {"X-Chatflow-Secret": secret, "Chatflow-Flow-Depth": "6"}
    answer = org.client.post(f"/hooks/flows/{flow['id']}", json={}, headers=headers)
    assert answer.status_code == 202 and answer.json()["status"] == "skipped"
    assert run_detail(org, answer.json()["run_id"])["error"]["code"] == "chain_too_deep"
