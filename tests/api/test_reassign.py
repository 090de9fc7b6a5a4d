"""R9: the Chatroom Reassign API sets the chatroom's agents and discards pending assignments."""

from __future__ import annotations

from typing import Any

from tests.factories import Api, Org, expect_problem, list_entries, quick_agent, snapshot


def _get(org: Org, chatroom_id: str) -> dict[str, Any]:
    chatroom: dict[str, Any] = org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}")
    return chatroom


def _participants(chatroom: dict[str, Any]) -> list[str]:
    return sorted(p["agent_id"] for p in chatroom["participants"])


def _reassign(api: Api, chatroom_id: str, agent_ids: list[str]) -> Any:
    return api.post(f"/v1/chatrooms/{chatroom_id}/reassign", {"agent_ids": agent_ids})


def _events(org: Org, chatroom_id: str, type: str) -> list[dict[str, Any]]:
    return [e["data"] for e in org.events(chatroom_id=chatroom_id, type=type)]


def test_reassign_sets_exactly_the_named_agents_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    cy, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])

    response = _reassign(org.api, chatroom["id"], [bob["id"], cy["id"]])

    assert response.status_code == 200, response.text
    assert _participants(response.json()) == sorted([bob["id"], cy["id"]])
    assert _participants(_get(org, chatroom["id"])) == sorted([bob["id"], cy["id"]])


def test_reassign_removes_leavers_with_chatroom_unassigned_r9(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])

    _reassign(org.api, chatroom["id"], [bob["id"]])

    unassigned = _events(org, chatroom["id"], "chatroom.unassigned")
    assert [u["agent_ids"] for u in unassigned] == [[ada["id"]]]
    assert list_entries(org, ada["id"]) == []
    expect_problem(ada_api.get(f"/v1/chatrooms/{chatroom['id']}"), 404, "not_found")


def test_reassign_adds_joiners_with_chatroom_assigned_reason_reassign_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]])
    newer = org.chatroom(participants=[bob["id"]])

    _reassign(org.api, chatroom["id"], [ada["id"], bob["id"]])

    assigned = _events(org, chatroom["id"], "chatroom.assigned")
    assert [(a["reason"], a["agent_ids"]) for a in assigned] == [
        ("created", [ada["id"]]),
        ("reassign", [bob["id"]]),
    ]
    assert [e["id"] for e in list_entries(org, bob["id"])] == [chatroom["id"], newer["id"]]
    assert _events(org, chatroom["id"], "chatroom.unassigned") == []


def test_reassign_keeps_the_order_key_of_agents_who_stay_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])
    org.chatroom(participants=[ada["id"]])
    before = {e["id"]: e["agent_bump_key"] for e in list_entries(org, ada["id"])}

    _reassign(org.api, chatroom["id"], [ada["id"]])

    after = {e["id"]: e["agent_bump_key"] for e in list_entries(org, ada["id"])}
    assert after == before


def test_reassign_discards_the_pending_assign_on_handover_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]], assign_on_handover=True)

    reassigned = org.api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/reassign", {"agent_ids": [bob["id"]]}
    )

    assert reassigned["pending_agent_ids"] == []
    assert _participants(reassigned) == [bob["id"]]
    assigned_before = _events(org, chatroom["id"], "chatroom.assigned")
    org.customer_says(chatroom["id"], "Hello?")
    fresh = _get(org, chatroom["id"])
    assert _participants(fresh) == [bob["id"]]
    assert fresh["pending_agent_ids"] == []
    assert _events(org, chatroom["id"], "chatroom.assigned") == assigned_before
    assert list_entries(org, ada["id"]) == []


def test_reassign_to_nobody_discards_the_pending_assign_on_handover_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]], assign_on_handover=True)

    reassigned = org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/reassign", {"agent_ids": []})

    assert reassigned["pending_agent_ids"] == []
    (unassigned,) = _events(org, chatroom["id"], "chatroom.unassigned")
    assert unassigned["agent_ids"] == [ada["id"]]
    assert unassigned["pending"] is True
    org.customer_says(chatroom["id"], "Hello?")
    assert _get(org, chatroom["id"])["participants"] == []
    assert list_entries(org, ada["id"]) == []


def test_reassign_to_an_unknown_agent_is_404_and_changes_nothing_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]], assign_on_handover=True)
    before = snapshot(org)

    response = _reassign(org.api, chatroom["id"], [ada["id"], "ag_01jd3m6x0v8k2c4w9a7b5e1f3g"])

    expect_problem(response, 404, "not_found")
    assert snapshot(org) == before
    assert _get(org, chatroom["id"])["pending_agent_ids"] == [ada["id"]]


def test_reassign_to_a_deactivated_agent_is_409_agent_inactive_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]])
    org.api.ok("PATCH", f"/v1/agents/{bob['id']}", {"active": False})
    before = snapshot(org)

    response = _reassign(org.api, chatroom["id"], [bob["id"]])

    expect_problem(response, 409, "agent_inactive")
    assert snapshot(org) == before


def test_an_agent_may_hand_its_chatroom_to_a_colleague_r9(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]])

    reassigned = ada_api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/reassign", {"agent_ids": [bob["id"]]}
    )

    assert _participants(reassigned) == [bob["id"]]
    assert [e["id"] for e in list_entries(org, bob["id"])] == [chatroom["id"]]


def test_an_agent_cannot_reassign_a_chatroom_it_does_not_see_r9(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    chatroom = org.chatroom(participants=[org.admin_id])
    before = snapshot(org)

    response = _reassign(ada_api, chatroom["id"], [ada["id"]])

    expect_problem(response, 404, "not_found")
    assert snapshot(org) == before


def test_an_admin_session_may_reassign_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    _, admin_api = quick_agent(org, role="admin")
    chatroom = org.chatroom(participants=[org.admin_id])

    response = _reassign(admin_api, chatroom["id"], [ada["id"]])

    assert response.status_code == 200, response.text
    assert _participants(response.json()) == [ada["id"]]


def test_reassign_naming_an_agent_twice_is_422_and_changes_nothing_r9(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[org.admin_id])
    before = snapshot(org)

    response = _reassign(org.api, chatroom["id"], [ada["id"], ada["id"]])

    expect_problem(response, 422, "validation_error")
    assert snapshot(org) == before
