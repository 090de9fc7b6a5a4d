"""R8: assign on handover; R7: agents and automation send into one chatroom side by side."""

from __future__ import annotations

from typing import Any

from tests.factories import Api, Org, expect_problem, list_entries, quick_agent


def _get(org: Org, chatroom_id: str) -> dict[str, Any]:
    chatroom: dict[str, Any] = org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}")
    return chatroom


def _participants(org: Org, chatroom_id: str) -> list[str]:
    return sorted(p["agent_id"] for p in _get(org, chatroom_id)["participants"])


def _order(org: Org, agent_id: str) -> list[str]:
    return [entry["id"] for entry in list_entries(org, agent_id)]


def _assigned(org: Org, chatroom_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in org.events(chatroom_id=chatroom_id, type="chatroom.assigned")]


def _send(api: Api, chatroom_id: str, text: str) -> dict[str, Any]:
    message: dict[str, Any] = api.ok(
        "POST", f"/v1/chatrooms/{chatroom_id}/messages", {"text": text}, status=201
    )
    return message


def _pending_room(org: Org, *agent_ids: str) -> dict[str, Any]:
    return org.chatroom(participants=list(agent_ids), assign_on_handover=True)


# -- R8 -------------------------------------------------------------------------------------------


def test_assign_on_handover_makes_the_named_agents_pending_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)

    chatroom = _pending_room(org, ada["id"], bob["id"])

    assert chatroom["participants"] == []
    assert chatroom["pending_agent_ids"] == sorted([ada["id"], bob["id"]])
    assert _get(org, chatroom["id"])["pending_agent_ids"] == sorted([ada["id"], bob["id"]])
    assert _assigned(org, chatroom["id"]) == []


def test_pending_agents_do_not_see_the_chatroom_in_their_list_even_when_it_bumps_r8(
    org: Org,
) -> None:
    ada, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"])

    org.send_template(chatroom["id"], org.template())  # bumps: but not for pending agents

    assert list_entries(org, ada["id"]) == []
    assert _participants(org, chatroom["id"]) == []


def test_a_pending_agent_session_gets_404_for_the_chatroom_r8(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    chatroom = _pending_room(org, ada["id"])

    response = ada_api.get(f"/v1/chatrooms/{chatroom['id']}")

    expect_problem(response, 404, "not_found")
    assert ada_api.ok("GET", "/v1/chatrooms")["data"] == []


def test_customer_free_flow_message_hands_over_to_the_pending_agents_r8(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"], bob["id"])
    later = org.chatroom(participants=[ada["id"], bob["id"]])
    assert _order(org, ada["id"]) == [later["id"]]

    org.customer_says(chatroom["id"], "I need a human")

    fresh = _get(org, chatroom["id"])
    assert sorted(p["agent_id"] for p in fresh["participants"]) == sorted([ada["id"], bob["id"]])
    assert fresh["pending_agent_ids"] == []
    assert _order(org, ada["id"]) == [chatroom["id"], later["id"]]
    assert _order(org, bob["id"]) == [chatroom["id"], later["id"]]
    assigned = _assigned(org, chatroom["id"])
    assert len(assigned) == 1
    assert assigned[0]["reason"] == "handover"
    assert sorted(assigned[0]["agent_ids"]) == sorted([ada["id"], bob["id"]])
    assert ada_api.ok("GET", f"/v1/chatrooms/{chatroom['id']}")["id"] == chatroom["id"]


def test_agents_who_join_at_handover_see_the_customer_message_as_unread_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"])

    org.customer_says(chatroom["id"], "I need a human")

    (entry,) = list_entries(org, ada["id"])
    assert entry["agent_unread_count"] == 1
    org.customer_says(chatroom["id"], "Hello?")
    (entry,) = list_entries(org, ada["id"])
    assert entry["agent_unread_count"] == 2


def test_a_second_customer_message_does_not_assign_again_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"])
    org.customer_says(chatroom["id"], "Hello")

    org.customer_says(chatroom["id"], "Anyone?")

    assert len(_assigned(org, chatroom["id"])) == 1
    assert _participants(org, chatroom["id"]) == [ada["id"]]


def test_tap_on_template_sent_with_relay_response_false_hands_over_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"])
    sent = org.send_template(chatroom["id"], org.template(), relay_response=False)

    org.customer_taps(chatroom["id"], sent["id"], 0)

    assert _participants(org, chatroom["id"]) == [ada["id"]]
    assert _get(org, chatroom["id"])["pending_agent_ids"] == []
    assigned = _assigned(org, chatroom["id"])
    assert [(a["reason"], a["agent_ids"]) for a in assigned] == [("handover", [ada["id"]])]
    assert _order(org, ada["id"]) == [chatroom["id"]]


def test_tap_on_template_sent_with_relay_response_true_does_not_hand_over_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"])
    sent = org.send_template(chatroom["id"], org.template(), relay_response=True)

    org.customer_taps(chatroom["id"], sent["id"], 0)

    fresh = _get(org, chatroom["id"])
    assert fresh["participants"] == []
    assert fresh["pending_agent_ids"] == [ada["id"]]
    assert _assigned(org, chatroom["id"]) == []
    assert list_entries(org, ada["id"]) == []
    assert len(org.events(chatroom_id=chatroom["id"], type="template.response")) == 1


def test_customer_text_after_a_relayed_tap_still_hands_over_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"])
    sent = org.send_template(chatroom["id"], org.template(), relay_response=True)
    org.customer_taps(chatroom["id"], sent["id"], 1)

    org.customer_says(chatroom["id"], "Actually, can I talk to someone?")

    assert _participants(org, chatroom["id"]) == [ada["id"]]
    assert [a["reason"] for a in _assigned(org, chatroom["id"])] == ["handover"]


def test_a_deactivated_pending_agent_is_skipped_at_handover_r8(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = _pending_room(org, ada["id"], bob["id"])
    deactivated = org.api.ok("PATCH", f"/v1/agents/{bob['id']}", {"active": False})
    assert deactivated["active"] is False

    org.customer_says(chatroom["id"], "Hello")

    fresh = _get(org, chatroom["id"])
    assert [p["agent_id"] for p in fresh["participants"]] == [ada["id"]]
    assert fresh["pending_agent_ids"] == []
    assert [(a["reason"], a["agent_ids"]) for a in _assigned(org, chatroom["id"])] == [
        ("handover", [ada["id"]])
    ]
    assert list_entries(org, bob["id"]) == []


def test_without_assign_on_handover_nothing_is_pending_r8(org: Org) -> None:
    ada, _ = quick_agent(org)

    chatroom = org.chatroom(participants=[ada["id"]])

    assert chatroom["pending_agent_ids"] == []
    assert [p["agent_id"] for p in chatroom["participants"]] == [ada["id"]]
    assert [(a["reason"], a["agent_ids"]) for a in _assigned(org, chatroom["id"])] == [
        ("created", [ada["id"]])
    ]
    org.customer_says(chatroom["id"], "Hello")
    assert len(_assigned(org, chatroom["id"])) == 1


# -- R7 -------------------------------------------------------------------------------------------


def test_agent_and_bot_sends_are_stored_in_order_with_their_senders_r7(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]])
    org.customer_says(chatroom["id"], "Hi")
    sent = []

    for i in range(3):
        sent.append(_send(ada_api, chatroom["id"], f"agent {i}"))
        sent.append(_send(org.api, chatroom["id"], f"bot {i}"))

    page = org.api.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages", params={"limit": 100})
    stored = list(reversed(page["data"]))[1:]  # oldest first, after the customer's message
    assert [m["id"] for m in stored] == [m["id"] for m in sent]
    assert [(m["text"], m["sender"]) for m in stored] == [
        (text, sender)
        for i in range(3)
        for text, sender in (
            (f"agent {i}", {"type": "agent", "id": ada["id"]}),
            (f"bot {i}", {"type": "bot", "id": None}),
        )
    ]


def test_a_relayed_tap_records_a_template_response_while_an_agent_chats_r7(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]])
    org.customer_says(chatroom["id"], "Hi")
    template = org.template()
    relayed = org.send_template(chatroom["id"], template, relay_response=True)
    _send(ada_api, chatroom["id"], "I am here too")

    tap = org.customer_taps(chatroom["id"], relayed["id"], 1)
    _send(ada_api, chatroom["id"], "Thanks for choosing")

    responses = org.events(chatroom_id=chatroom["id"], type="template.response")
    assert len(responses) == 1
    data = responses[0]["data"]
    assert data["template_message_id"] == relayed["id"]
    assert data["message_id"] == tap["id"]
    assert data["template"] == {"name": template["name"], "language": template["language"]}
    assert data["button"]["index"] == 1
    assert data["button"]["text"] == "No"
    page = org.api.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages", params={"limit": 100})
    assert [m["sender"]["type"] for m in reversed(page["data"])] == [
        "contact",
        "bot",
        "agent",
        "contact",
        "agent",
    ]
