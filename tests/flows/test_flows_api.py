"""Drafts, validation, deploys, versions, manual runs, cancel and the run history's limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chatflow.clock import ManualClock
from chatflow.services.housekeeping import do_housekeeping
from tests.factories import Org
from tests.flows.conftest import Engine, deployed_flow, run_detail, say

ASK: dict[str, Any] = {
    "id": "ask",
    "action": "wait_for_reply",
    "params": {"chatInstanceId": "{chatInstanceId}", "timeout_seconds": 60},
}


def _document(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "trigger": {"type": "manual", "params": {"chatroom": True}},
        "start": nodes[0]["id"] if nodes else None,
        "nodes": list(nodes),
        "edges": edges or [],
    }


def test_saving_a_stale_revision_is_a_409_and_overwrites_nothing(org: Org) -> None:
    flow = org.api.ok("POST", "/v1/flows", {"name": "Draft"}, status=201)
    assert flow["revision"] == 1 and flow["draft"]["nodes"] == []
    saved = org.api.ok(
        "PUT", f"/v1/flows/{flow['id']}", {"revision": 1, "document": _document(say("a", "A"))}
    )
    assert saved["revision"] == 2
    stale = org.api.client.put(
        f"/v1/flows/{flow['id']}",
        json={"revision": 1, "document": _document(say("b", "B"))},
        headers={"Authorization": f"Bearer {org.api.token}"},
    )
    assert stale.status_code == 409 and stale.json()["code"] == "flow_revision_conflict"
    assert stale.json()["revision"] == 2
    assert org.api.ok("GET", f"/v1/flows/{flow['id']}")["draft"]["nodes"][0]["id"] == "a"


def test_validate_lists_every_error_with_its_node_and_parameter_r10(org: Org) -> None:
    document = _document(
        {"id": "greet", "action": "send_message", "params": {"message": "Hi {contact.nickname}"}},
        {
            "id": "wait",
            "action": "wait_for_reply",
            "params": {"chatInstanceId": "{chatInstanceId}", "timeout_seconds": 0},
        },
        edges=[{"from": "greet", "outcome": "delivered", "to": "nowhere"}],
    )
    flow = org.api.ok("POST", "/v1/flows", {"name": "Broken", "document": document}, status=201)
    result = org.api.ok("POST", f"/v1/flows/{flow['id']}/validate")
    assert result["valid"] is False
    found = {(e["code"], e["node"], e["parameter"], e["pointer"]) for e in result["errors"]}
    assert ("unknown_variable", "greet", "message", "/nodes/0/params/message") in found
    assert (
        "missing_parameter",
        "greet",
        "chatInstanceId",
        "/nodes/0/params/chatInstanceId",
    ) in found
    assert (
        "invalid_parameter",
        "wait",
        "timeout_seconds",
        "/nodes/1/params/timeout_seconds",
    ) in found
    assert ("unknown_outcome", "greet", None, "/edges/0/outcome") in found
    assert ("unknown_node", None, None, "/edges/0/to") in found
    unknown = next(e for e in result["errors"] if e["code"] == "unknown_variable")
    assert "{contact.nickname}" in unknown["message"] and "greet" in unknown["message"]
    assert [w["node"] for w in result["warnings"]] == ["wait"]

    # Deploying an invalid draft is refused, with the same errors, and deploys nothing.
    response = org.api.post(f"/v1/flows/{flow['id']}/deploy", {"message": "try"})
    assert response.status_code == 422 and response.json()["code"] == "flow_invalid"
    assert org.api.ok("GET", f"/v1/flows/{flow['id']}")["deployed_version_id"] is None


def test_chat_instance_id_is_unknown_to_a_flow_whose_trigger_has_no_chatroom(org: Org) -> None:
    document = {
        "trigger": {"type": "incoming_webhook"},
        "start": "s",
        "nodes": [say("s", "hello")],
        "edges": [],
    }
    result = org.api.ok(
        "POST",
        f"/v1/flows/{org.api.ok('POST', '/v1/flows', {'name': 'x'}, status=201)['id']}/validate",
        {"document": document},
    )
    assert [(e["code"], e["node"], e["parameter"]) for e in result["errors"]] == [
        ("unknown_variable", "s", "chatInstanceId")
    ]


def test_a_document_of_the_wrong_shape_is_refused_with_pointers(org: Org) -> None:
    response = org.api.post(
        "/v1/flows",
        {
            "name": "x",
            "document": {"trigger": {"type": "telepathy"}, "nodes": [{"id": 1}], "colour": "red"},
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "flow_invalid"
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/colour", "/trigger/type", "/nodes/0"} <= pointers
    assert org.api.ok("GET", "/v1/flows")["data"] == []


def test_runs_stay_on_the_version_they_started_on_and_rollback_redeploys(
    org: Org, engine: Engine
) -> None:
    v1 = _document(
        ASK, say("bye", "Version one"), edges=[{"from": "ask", "outcome": "reply", "to": "bye"}]
    )
    flow = deployed_flow(org, v1)
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "hi")
    waiting = org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/runs", {"chatroom_id": chatroom["id"]}, status=201
    )

    v2 = _document(say("bye", "Version two"))
    org.api.ok("PUT", f"/v1/flows/{flow['id']}", {"revision": 1, "document": v2})
    version = org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/deploy", {"message": "shorter"}, status=201
    )
    assert version["number"] == 2 and version["message"] == "shorter"

    org.customer_says(chatroom["id"], "ok")
    engine.triggers()
    assert run_detail(org, waiting["id"])["steps"][-1]["params"]["message"] == "Version one"
    other = org.chatroom()
    org.customer_says(other["id"], "hi")
    assert (
        org.api.ok(
            "POST", f"/v1/flows/{flow['id']}/runs", {"chatroom_id": other["id"]}, status=201
        )["status"]
        == "completed"
    )

    versions = org.api.ok("GET", f"/v1/flows/{flow['id']}/versions")["data"]
    assert [v["number"] for v in versions] == [2, 1]
    back = org.api.ok("POST", f"/v1/flows/{flow['id']}/rollback", {"version": 1})
    assert back["number"] == 1
    assert org.api.ok("GET", f"/v1/flows/{flow['id']}")["deployed_version_id"] == back["id"]
    missing = org.api.post(f"/v1/flows/{flow['id']}/rollback", {"version": 9})
    assert missing.status_code == 404


def test_manual_runs_check_their_inputs_and_the_flows_state(org: Org) -> None:
    document = {
        "trigger": {"type": "manual", "params": {"inputs": ["order_id"]}},
        "start": "v",
        "nodes": [
            {
                "id": "v",
                "action": "set_variable",
                "params": {"name": "o", "value": "{inputs.order_id}"},
            }
        ],
        "edges": [],
    }
    flow = org.api.ok("POST", "/v1/flows", {"name": "Manual", "document": document}, status=201)
    not_deployed = org.api.post(f"/v1/flows/{flow['id']}/runs", {"inputs": {"order_id": "1"}})
    assert not_deployed.status_code == 409 and not_deployed.json()["code"] == "flow_not_deployed"
    org.api.ok("POST", f"/v1/flows/{flow['id']}/deploy", status=201)
    bad = org.api.post(f"/v1/flows/{flow['id']}/runs", {"inputs": {"other": 1}})
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {"/inputs/order_id", "/inputs/other"}
    run = org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/runs", {"inputs": {"order_id": 7}}, status=201
    )
    assert run["status"] == "completed"
    assert run_detail(org, run["id"])["steps"][0]["output"] == {"value": 7}


def test_a_flow_that_does_not_start_by_hand_refuses_manual_runs(org: Org) -> None:
    flow = deployed_flow(
        org,
        {
            "trigger": {"type": "chatroom_created"},
            "start": "s",
            "nodes": [say("s", "hi")],
            "edges": [],
        },
    )
    response = org.api.post(f"/v1/flows/{flow['id']}/runs", {})
    assert response.status_code == 409 and response.json()["code"] == "flow_trigger_mismatch"


def test_cancel_ends_a_waiting_run_once(org: Org, engine: Engine) -> None:
    flow = deployed_flow(org, _document(ASK))
    chatroom = org.chatroom()
    run = org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/runs", {"chatroom_id": chatroom["id"]}, status=201
    )
    cancelled = org.api.ok("POST", f"/v1/runs/{run['id']}/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["waiting"] is None
    again = org.api.post(f"/v1/runs/{run['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "run_not_active"
    engine.later(minutes=5)  # its timeout never fires
    assert run_detail(org, run["id"])["steps"] == []


def test_another_organizations_flows_and_runs_answer_404(
    org: Org, client: Any, database: Any
) -> None:
    from tests.factories import make_org

    flow = deployed_flow(org, _document(ASK))
    chatroom = org.chatroom()
    run = org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/runs", {"chatroom_id": chatroom["id"]}, status=201
    )
    other = make_org(client, database)
    for path in (
        f"/v1/flows/{flow['id']}",
        f"/v1/runs/{run['id']}",
        f"/v1/flows/{flow['id']}/versions",
    ):
        assert other.api.get(path).status_code == 404
    assert other.api.post(f"/v1/runs/{run['id']}/cancel").status_code == 404
    assert other.api.post(f"/v1/flows/{flow['id']}/deploy", {}).status_code == 404


def test_agents_who_are_not_admins_may_not_manage_flows(org: Org) -> None:
    _, agent = org.agent()
    assert agent.get("/v1/flows").status_code == 403
    assert agent.post("/v1/flows", {"name": "x"}).status_code == 403


def test_run_history_is_pruned_after_its_retention_but_running_runs_are_kept(
    org: Org, engine: Engine, clock: ManualClock
) -> None:
    flow = deployed_flow(org, _document(say("s", "hi")))
    waiting_flow = deployed_flow(
        org, _document({**ASK, "params": {**ASK["params"], "timeout_seconds": 30 * 24 * 3600}})
    )
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "hi")
    done = org.api.ok(
        "POST", f"/v1/flows/{flow['id']}/runs", {"chatroom_id": chatroom["id"]}, status=201
    )
    waiting = org.api.ok(
        "POST", f"/v1/flows/{waiting_flow['id']}/runs", {"chatroom_id": chatroom["id"]}, status=201
    )
    clock.advance(timedelta(days=15))
    org.database.write_sync(do_housekeeping)
    assert org.api.get(f"/v1/runs/{done['id']}").status_code == 404
    assert run_detail(org, waiting["id"])["status"] == "waiting"
