"""R3: the order key lives on the participant; what bumps and what does not; paging; unread."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.factories import Api, Org, list_entries, quick_agent


def _order(org: Org, agent_id: str) -> list[str]:
    return [entry["id"] for entry in list_entries(org, agent_id)]


def _keys(org: Org, agent_id: str) -> dict[str, int]:
    return {entry["id"]: entry["agent_bump_key"] for entry in list_entries(org, agent_id)}


def _unread(org: Org, agent_id: str) -> dict[str, int]:
    return {entry["id"]: entry["agent_unread_count"] for entry in list_entries(org, agent_id)}


def _send(api: Api, chatroom_id: str, text: str = "On it", **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = api.ok(
        "POST", f"/v1/chatrooms/{chatroom_id}/messages", {"text": text, **extra}, status=201
    )
    return message


def test_each_agent_list_is_ordered_by_its_own_key_newest_first_r3(org: Org) -> None:
    ada, _ = quick_agent(org, name="Ada")
    bob, _ = quick_agent(org, name="Bob")
    shared = org.chatroom(participants=[ada["id"], bob["id"]])
    ada_only = org.chatroom(participants=[ada["id"]])
    bob_only = org.chatroom(participants=[bob["id"]])
    org.customer_says(shared["id"])  # bumps the shared chatroom for both

    ada_list = list_entries(org, ada["id"])
    bob_list = list_entries(org, bob["id"])

    assert [e["id"] for e in ada_list] == [shared["id"], ada_only["id"]]
    assert [e["id"] for e in bob_list] == [shared["id"], bob_only["id"]]
    for entries in (ada_list, bob_list):
        keys = [e["agent_bump_key"] for e in entries]
        assert keys == sorted(keys, reverse=True)
        assert len(set(keys)) == len(keys)


def test_a_message_bumps_the_chatroom_to_the_top_of_every_participant_list_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    both = [ada["id"], bob["id"]]
    first = org.chatroom(participants=both)
    org.customer_says(first["id"])
    second = org.chatroom(participants=both)
    assert _order(org, ada["id"]) == [second["id"], first["id"]]
    keys_before = _keys(org, bob["id"])

    _send(org.api, first["id"])

    assert _order(org, ada["id"]) == [first["id"], second["id"]]
    assert _order(org, bob["id"]) == [first["id"], second["id"]]
    assert _keys(org, bob["id"])[first["id"]] > keys_before[second["id"]]
    bumped = org.events(chatroom_id=first["id"], type="chatroom.bumped")
    assert bumped[-1]["data"]["cause"] == "message"
    assert sorted(bumped[-1]["data"]["agent_ids"]) == sorted(both)


def test_a_new_chatroom_comes_to_the_top_of_each_participant_list_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    older_ada = org.chatroom(participants=[ada["id"]])
    older_bob = org.chatroom(participants=[bob["id"]])

    new = org.chatroom(participants=[ada["id"], bob["id"]])

    assert _order(org, ada["id"]) == [new["id"], older_ada["id"]]
    assert _order(org, bob["id"]) == [new["id"], older_bob["id"]]


def test_template_sent_with_bump_false_does_not_move_the_chatroom_r3(org: Org) -> None:
    template = org.template()
    first = org.chatroom()
    second = org.chatroom()
    keys_before = _keys(org, org.admin_id)
    chatroom_before = org.api.ok("GET", f"/v1/chatrooms/{first['id']}")

    sent = org.send_template(first["id"], template, bump=False)

    assert sent["flags"]["bump"] is False
    assert _order(org, org.admin_id) == [second["id"], first["id"]]
    assert _keys(org, org.admin_id) == keys_before
    chatroom_after = org.api.ok("GET", f"/v1/chatrooms/{first['id']}")
    assert chatroom_after["bump_key"] == chatroom_before["bump_key"]
    assert org.events(chatroom_id=first["id"], type="chatroom.bumped") == []


def test_template_sent_with_bump_true_bumps_the_chatroom_r3(org: Org) -> None:
    template = org.template()
    first = org.chatroom()
    second = org.chatroom()

    org.send_template(first["id"], template)

    assert _order(org, org.admin_id) == [first["id"], second["id"]]


def test_customer_free_flow_message_always_bumps_r3(org: Org) -> None:
    template = org.template()
    first = org.chatroom()
    org.send_template(first["id"], template, bump=False, bump_response=False)
    second = org.chatroom()
    assert _order(org, org.admin_id) == [second["id"], first["id"]]

    org.customer_says(first["id"], "I have a question")

    assert _order(org, org.admin_id) == [first["id"], second["id"]]


def test_tap_on_template_sent_with_bump_response_false_does_not_bump_r3(org: Org) -> None:
    template = org.template()
    first = org.chatroom()
    sent = org.send_template(first["id"], template, bump_response=False)
    second = org.chatroom()
    keys_before = _keys(org, org.admin_id)
    bumps_before = org.events(chatroom_id=first["id"], type="chatroom.bumped")

    tap = org.customer_taps(first["id"], sent["id"], 1)

    assert tap["kind"] == "button_reply"
    assert _order(org, org.admin_id) == [second["id"], first["id"]]
    assert _keys(org, org.admin_id) == keys_before
    assert org.events(chatroom_id=first["id"], type="chatroom.bumped") == bumps_before


def test_tap_on_template_sent_with_bump_response_true_bumps_r3(org: Org) -> None:
    template = org.template()
    first = org.chatroom()
    sent = org.send_template(first["id"], template, bump_response=True)
    second = org.chatroom()

    org.customer_taps(first["id"], sent["id"], 0)

    assert _order(org, org.admin_id) == [first["id"], second["id"]]


def test_joining_a_new_chatroom_sets_only_the_joining_agents_key_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    shared = org.chatroom(participants=[ada["id"], bob["id"]])
    bob_keys = _keys(org, bob["id"])

    new = org.chatroom(participants=[ada["id"]])

    assert _order(org, ada["id"]) == [new["id"], shared["id"]]
    assert _keys(org, bob["id"]) == bob_keys


def test_joining_by_reassign_sets_only_the_joining_agents_key_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    target = org.chatroom(participants=[ada["id"]])
    newer = org.chatroom(participants=[ada["id"], bob["id"]])
    ada_keys = _keys(org, ada["id"])

    org.api.ok(
        "POST", f"/v1/chatrooms/{target['id']}/reassign", {"agent_ids": [ada["id"], bob["id"]]}
    )

    assert _keys(org, ada["id"]) == ada_keys
    assert _order(org, ada["id"]) == [newer["id"], target["id"]]
    assert _order(org, bob["id"]) == [target["id"], newer["id"]]


def test_joining_by_handover_puts_the_chatroom_on_top_of_the_joiners_list_only_r3(
    org: Org,
) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    pending = org.chatroom(participants=[bob["id"]], assign_on_handover=True)
    ada_room = org.chatroom(participants=[ada["id"]])
    bob_room = org.chatroom(participants=[bob["id"]])
    ada_keys = _keys(org, ada["id"])

    org.customer_says(pending["id"])

    assert _order(org, bob["id"]) == [pending["id"], bob_room["id"]]
    assert _keys(org, ada["id"]) == ada_keys
    assert _order(org, ada["id"]) == [ada_room["id"]]


def test_cursor_paging_walks_every_chatroom_once_in_order_r3(org: Org) -> None:
    made = [org.chatroom()["id"] for _ in range(7)]
    org.customer_says(made[2])  # not creation order: the list is in bump order
    expected = _order(org, org.admin_id)
    assert expected == [made[2], *reversed(made[3:]), *reversed(made[:2])]

    walked: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"agent_id": org.admin_id, "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = org.api.ok("GET", "/v1/chatrooms", params=params)
        pages += 1
        assert len(page["data"]) <= 2
        walked.extend(entry["id"] for entry in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert walked == expected
    assert pages == 4


def _encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        _encoded(["agent_chatrooms", "1; DROP TABLE chatrooms", "cr_x"]),
        _encoded(["messages", "msg_x"]),
        _encoded({"agent_chatrooms": 1}),
    ],
    ids=["garbage", "wrong-type", "other-list", "not-a-list"],
)
def test_tampered_cursor_is_400_invalid_cursor_r3(org: Org, cursor: str) -> None:
    org.chatroom()

    response = org.api.get("/v1/chatrooms", agent_id=org.admin_id, cursor=cursor)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_cursor"


def test_an_agent_may_not_read_another_agents_list_r3(org: Org) -> None:
    _, ada_api = quick_agent(org)
    bob, _ = quick_agent(org)
    org.chatroom(participants=[bob["id"]])

    response = ada_api.get("/v1/chatrooms", agent_id=bob["id"])

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"


def test_an_agent_reads_its_own_list_r3(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    mine = org.chatroom(participants=[ada["id"]])
    org.chatroom(participants=[org.admin_id])

    page = ada_api.ok("GET", "/v1/chatrooms", params={"agent_id": ada["id"]})

    assert [entry["id"] for entry in page["data"]] == [mine["id"]]


def test_customer_messages_count_unread_for_each_participant_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])
    assert _unread(org, ada["id"])[chatroom["id"]] == 0

    org.customer_says(chatroom["id"], "One")
    org.customer_says(chatroom["id"], "Two")

    assert _unread(org, ada["id"])[chatroom["id"]] == 2
    assert _unread(org, bob["id"])[chatroom["id"]] == 2


def test_an_agents_own_send_resets_only_the_senders_unread_count_r3(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])
    org.customer_says(chatroom["id"], "One")
    org.customer_says(chatroom["id"], "Two")

    message = _send(ada_api, chatroom["id"])

    assert message["sender"] == {"type": "agent", "id": ada["id"]}
    assert _unread(org, ada["id"])[chatroom["id"]] == 0
    assert _unread(org, bob["id"])[chatroom["id"]] == 2


def test_a_bot_send_resets_no_unread_count_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])
    org.customer_says(chatroom["id"], "One")

    message = _send(org.api, chatroom["id"])

    assert message["sender"] == {"type": "bot", "id": None}
    assert _unread(org, ada["id"])[chatroom["id"]] == 1
    assert _unread(org, bob["id"])[chatroom["id"]] == 1


def test_mark_read_as_an_agent_resets_its_own_unread_count_r3(org: Org) -> None:
    ada, ada_api = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])
    org.customer_says(chatroom["id"], "One")

    read = ada_api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/read")

    unread = {p["agent_id"]: p["unread_count"] for p in read["participants"]}
    assert unread == {ada["id"]: 0, bob["id"]: 1}
    assert _unread(org, ada["id"])[chatroom["id"]] == 0
    assert _unread(org, bob["id"])[chatroom["id"]] == 1


def test_mark_read_with_the_api_key_resets_the_named_agents_count_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"], bob["id"]])
    org.customer_says(chatroom["id"], "One")

    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/read", {"agent_id": bob["id"]})

    assert _unread(org, ada["id"])[chatroom["id"]] == 1
    assert _unread(org, bob["id"])[chatroom["id"]] == 0


def test_mark_read_with_the_api_key_and_no_agent_is_422_r3(org: Org) -> None:
    ada, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[ada["id"]])
    org.customer_says(chatroom["id"], "One")

    response = org.api.post(f"/v1/chatrooms/{chatroom['id']}/read")

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert _unread(org, ada["id"])[chatroom["id"]] == 1


# -- the model: an agent's list is its chatrooms ordered by their last bumping operation --------

ROOMS = 3
Operation = tuple[str, int, bool, bool]
operations = st.tuples(
    # Templates and taps twice as likely: the flags are where the rules differ.
    st.sampled_from(
        ["agent", "bot", "template", "template", "customer_text", "customer_tap", "customer_tap"]
    ),
    st.integers(0, ROOMS - 1),
    st.booleans(),
    st.booleans(),
)


@pytest.fixture
def two_agents(org: Org) -> tuple[str, str]:
    ada, _ = quick_agent(org, name="Ada")
    bob, _ = quick_agent(org, name="Bob")
    return ada["id"], bob["id"]


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    membership=st.lists(
        st.sampled_from([(True, True), (True, False), (False, True)]),
        min_size=ROOMS,
        max_size=ROOMS,
    ),
    script=st.lists(operations, min_size=3, max_size=10),
)
def test_each_agent_list_follows_the_last_bumping_operation_r3(
    org: Org,
    two_agents: tuple[str, str],
    membership: list[tuple[bool, bool]],
    script: list[Operation],
) -> None:
    """Whatever happens, in any order, each agent sees its chatrooms ordered by their last bump.

    Chatrooms of earlier examples are never bumped again, so this example's chatrooms are the
    top of each agent's list.
    """
    agents = list(two_agents)
    members = [
        [a for a, joined in zip(agents, flags, strict=True) if joined] for flags in membership
    ]
    rooms = [org.chatroom(participants=m)["id"] for m in members]
    template = org.template()
    last_bump = dict.fromkeys(rooms, 0)
    clock = 0
    templates: list[tuple[str, str, bool]] = []  # chatroom, template message, bump_response

    def bumped(room: str) -> None:
        nonlocal clock
        clock += 1
        last_bump[room] = clock

    for room in rooms:  # the customer opens the window: free-form sends are allowed
        org.customer_says(room)
        bumped(room)

    def check() -> None:
        for agent in agents:
            mine = [room for room, m in zip(rooms, members, strict=True) if agent in m]
            expected = sorted(mine, key=lambda room: last_bump[room], reverse=True)
            top = [e["id"] for e in list_entries(org, agent, limit=ROOMS)][: len(mine)]
            assert top == expected, (agent, script)

    check()
    for kind, index, first, second in script:
        room = rooms[index]
        if kind == "agent":
            _send(org.api, room, as_agent_id=agents[0] if first else agents[1])
            bumped(room)
        elif kind == "bot":
            _send(org.api, room)
            bumped(room)
        elif kind == "template":
            sent = org.send_template(room, template, bump=first, bump_response=second)
            templates.append((room, sent["id"], second))
            if first:
                bumped(room)
        elif kind == "customer_text":
            org.customer_says(room, "Hello")
            bumped(room)
        elif templates:  # a tap on one of the last templates sent, in whichever chatroom
            tapped, message_id, bump_response = templates[-1 - index % len(templates)]
            org.customer_taps(tapped, message_id, 1 if second else 0)
            if bump_response:
                bumped(tapped)
        check()
