"""R2: one open chatroom per contact and channel; close, reopen and idle close; per-chatroom seq."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.factories import Org, list_entries, quick_agent

from chatflow.clock import ManualClock
from chatflow.services.chatrooms import do_close_idle


def _create(org: Org, contact: dict[str, Any], participants: list[str]) -> Any:
    return org.api.post(
        "/v1/chatrooms",
        {"contact_id": contact["id"], "channel_id": org.channel_id, "participants": participants},
    )


def _get(org: Org, chatroom_id: str) -> dict[str, Any]:
    chatroom: dict[str, Any] = org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}")
    return chatroom


def _types(org: Org, chatroom_id: str) -> list[str]:
    return [event["type"] for event in org.events(chatroom_id=chatroom_id)]


def test_creating_a_chatroom_returns_201_created_r2(org: Org) -> None:
    contact = org.contact()

    response = _create(org, contact, [org.admin_id])

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True
    assert body["status"] == "open"
    assert body["contact_id"] == contact["id"]
    assert body["channel_id"] == org.channel_id
    assert [p["agent_id"] for p in body["participants"]] == [org.admin_id]
    assert _get(org, body["id"])["status"] == "open"


def test_creating_again_while_open_returns_the_same_chatroom_with_200_r2(org: Org) -> None:
    contact = org.contact()
    first = org.chatroom(contact=contact)

    response = _create(org, contact, [org.admin_id])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created"] is False
    assert body["id"] == first["id"]
    assert body["status"] == "open"


def test_creating_again_while_open_leaves_participants_untouched_r2(org: Org) -> None:
    other, _ = quick_agent(org)
    contact = org.contact()
    first = org.chatroom(contact=contact, participants=[org.admin_id])

    response = _create(org, contact, [other["id"]])

    assert response.status_code == 200, response.text
    assert [p["agent_id"] for p in response.json()["participants"]] == [org.admin_id]
    assert [p["agent_id"] for p in _get(org, first["id"])["participants"]] == [org.admin_id]
    assert _get(org, first["id"])["pending_agent_ids"] == []
    assert list_entries(org, other["id"]) == []


def test_creating_again_while_open_does_not_bump_r2(org: Org) -> None:
    contact = org.contact()
    older = org.chatroom(contact=contact)
    newer = org.chatroom()
    before = list_entries(org, org.admin_id)
    assert [e["id"] for e in before] == [newer["id"], older["id"]]

    response = _create(org, contact, [org.admin_id])

    assert response.status_code == 200, response.text
    assert response.json()["bump_key"] == older["bump_key"]
    after = list_entries(org, org.admin_id)
    assert [(e["id"], e["agent_bump_key"]) for e in after] == [
        (e["id"], e["agent_bump_key"]) for e in before
    ]


def test_creating_again_while_open_records_no_event_r2(org: Org) -> None:
    contact = org.contact()
    org.chatroom(contact=contact)
    before = org.events()

    response = _create(org, contact, [org.admin_id])

    assert response.status_code == 200, response.text
    assert org.events() == before


def test_close_then_create_makes_a_new_chatroom_r2(org: Org) -> None:
    contact = org.contact()
    first = org.chatroom(contact=contact)
    closed = org.api.ok("POST", f"/v1/chatrooms/{first['id']}/close")
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None

    response = _create(org, contact, [org.admin_id])

    assert response.status_code == 201, response.text
    second = response.json()
    assert second["created"] is True
    assert second["id"] != first["id"]
    assert second["status"] == "open"
    assert _get(org, first["id"])["status"] == "closed"
    assert "chatroom.closed" in _types(org, first["id"])


def test_reopen_a_closed_chatroom_opens_it_r2(org: Org) -> None:
    chatroom = org.chatroom()
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/close")

    reopened = org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/reopen")

    assert reopened["status"] == "open"
    assert reopened["closed_at"] is None
    assert _types(org, chatroom["id"])[-1] == "chatroom.reopened"


def test_reopen_while_another_is_open_for_the_contact_is_409_r2(org: Org) -> None:
    contact = org.contact()
    first = org.chatroom(contact=contact)
    org.api.ok("POST", f"/v1/chatrooms/{first['id']}/close")
    second = org.chatroom(contact=contact)
    events_before = org.events()

    response = org.api.post(f"/v1/chatrooms/{first['id']}/reopen")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "chatroom_state_conflict"
    assert _get(org, first["id"])["status"] == "closed"
    assert _get(org, second["id"])["status"] == "open"
    assert org.events() == events_before


def test_close_a_closed_chatroom_is_409_r2(org: Org) -> None:
    chatroom = org.chatroom()
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/close")
    closed = _get(org, chatroom["id"])

    response = org.api.post(f"/v1/chatrooms/{chatroom['id']}/close")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "chatroom_state_conflict"
    assert _get(org, chatroom["id"]) == closed
    assert _types(org, chatroom["id"]).count("chatroom.closed") == 1


def test_reopen_an_open_chatroom_is_409_r2(org: Org) -> None:
    chatroom = org.chatroom()

    response = org.api.post(f"/v1/chatrooms/{chatroom['id']}/reopen")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "chatroom_state_conflict"
    assert _get(org, chatroom["id"])["status"] == "open"
    assert "chatroom.reopened" not in _types(org, chatroom["id"])


def test_customer_message_to_a_closed_chatroom_reopens_it_r2(org: Org) -> None:
    chatroom = org.chatroom()
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/close")

    message = org.customer_says(chatroom["id"], "Are you still there?")

    assert message["chatroom_id"] == chatroom["id"]
    assert _get(org, chatroom["id"])["status"] == "open"
    reopened = org.events(chatroom_id=chatroom["id"], type="chatroom.reopened")
    assert len(reopened) == 1
    assert reopened[0]["data"]["chatroom"]["status"] == "open"


def test_customer_writing_first_reopens_the_contacts_closed_chatroom_r2(org: Org) -> None:
    contact = org.contact()
    chatroom = org.chatroom(contact=contact)
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/close")

    message = org.api.ok(
        "POST",
        "/v1/sandbox/inbound",
        {"channel_id": org.channel_id, "contact_id": contact["id"], "text": "Hello again"},
        status=201,
    )

    assert message["chatroom_id"] == chatroom["id"]
    assert _get(org, chatroom["id"])["status"] == "open"
    assert _types(org, chatroom["id"]).count("chatroom.reopened") == 1


def test_idle_chatroom_closes_by_itself_while_an_active_one_stays_open_r2(
    org: Org, clock: ManualClock
) -> None:
    settings = org.api.ok("PATCH", "/v1/organization", {"idle_close_seconds": 3600})
    assert settings["idle_close_seconds"] == 3600
    idle = org.chatroom()
    active = org.chatroom()
    clock.advance(timedelta(minutes=50))
    org.customer_says(active["id"], "Still here")
    clock.advance(timedelta(minutes=11))

    org.database.write_sync(do_close_idle)

    assert _get(org, idle["id"])["status"] == "closed"
    assert _get(org, active["id"])["status"] == "open"
    closed = org.events(chatroom_id=idle["id"], type="chatroom.closed")
    assert len(closed) == 1
    assert closed[0]["data"]["reason"] == "idle"
    assert org.events(chatroom_id=active["id"], type="chatroom.closed") == []


def test_a_reopened_chatroom_is_not_idle_closed_again_at_once_r2(
    org: Org, clock: ManualClock
) -> None:
    org.api.ok("PATCH", "/v1/organization", {"idle_close_seconds": 3600})
    chatroom = org.chatroom()
    clock.advance(timedelta(minutes=61))
    org.database.write_sync(do_close_idle)
    assert _get(org, chatroom["id"])["status"] == "closed"

    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/reopen")
    clock.advance(timedelta(minutes=1))
    org.database.write_sync(do_close_idle)

    assert _get(org, chatroom["id"])["status"] == "open"
    assert len(org.events(chatroom_id=chatroom["id"], type="chatroom.closed")) == 1


def test_idle_close_is_off_without_the_organization_setting_r2(
    org: Org, clock: ManualClock
) -> None:
    chatroom = org.chatroom()
    clock.advance(timedelta(days=2))

    org.database.write_sync(do_close_idle)

    assert _get(org, chatroom["id"])["status"] == "open"


def test_new_chatroom_keeps_the_customer_window_of_the_previous_one_r2(org: Org) -> None:
    contact = org.contact()
    first = org.chatroom(contact=contact)
    org.customer_says(first["id"], "Hi")
    window = _get(org, first["id"])["window_expires_at"]
    assert window is not None
    org.api.ok("POST", f"/v1/chatrooms/{first['id']}/close")

    second = org.chatroom(contact=contact)

    assert second["window_expires_at"] == window
    sent = org.api.post(f"/v1/chatrooms/{second['id']}/messages", {"text": "How can we help?"})
    assert sent.status_code == 201, sent.text


def test_events_of_one_chatroom_are_numbered_from_1_without_gaps(org: Org) -> None:
    agent, _ = quick_agent(org)
    chatroom = org.chatroom(participants=[org.admin_id])
    template = org.template()
    org.customer_says(chatroom["id"])
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "Hello"}, status=201)
    sent = org.send_template(chatroom["id"], template, bump=False)
    org.customer_taps(chatroom["id"], sent["id"])
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/reassign", {"agent_ids": [agent["id"]]})
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/close")
    org.customer_says(chatroom["id"], "Back again")
    org.chatroom()  # another chatroom's events are numbered on their own

    events = org.events(chatroom_id=chatroom["id"])

    assert len(events) >= 12
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert _get(org, chatroom["id"])["last_seq"] == len(events)


def test_a_list_page_shows_each_chatroom_as_its_own_page_does_r3_r8(org: Org) -> None:
    """Lists load the participants and pending agents of a whole page at once: each chatroom
    must still get its own, in the same order as when it is read alone."""
    ada, _ = quick_agent(org)
    bob, _ = quick_agent(org)
    plain = org.chatroom(participants=[org.admin_id])
    shared = org.chatroom(participants=[org.admin_id, ada["id"]])
    pending = org.api.ok(
        "POST",
        "/v1/chatrooms",
        {
            "contact_id": org.contact()["id"],
            "channel_id": org.channel_id,
            "participants": [bob["id"], ada["id"]],
            "assign_on_handover": True,
        },
        status=201,
    )
    rooms = [plain, shared, pending]

    whole = org.api.ok("GET", "/v1/chatrooms", params={"limit": 100})["data"]
    agents = list_entries(org, org.admin_id)

    listed = {room["id"]: room for room in whole}
    in_agent_list = {room["id"]: room for room in agents}
    for room in rooms:
        alone = _get(org, room["id"])
        assert {k: listed[room["id"]][k] for k in alone} == alone
        if room is not pending:
            assert {k: in_agent_list[room["id"]][k] for k in alone} == alone
    assert listed[pending["id"]]["participants"] == []
    assert listed[pending["id"]]["pending_agent_ids"] == sorted([ada["id"], bob["id"]])
    assert [p["agent_id"] for p in listed[shared["id"]]["participants"]] == [
        org.admin_id,
        ada["id"],
    ]


def test_a_list_page_orders_participants_by_when_they_joined_as_the_chatroom_does_r3_r9(
    org: Org, clock: ManualClock
) -> None:
    """Lists read each chatroom's people as an unordered aggregate and order them themselves:
    the admin's id sorts first, yet the admin joins a minute after Ada, so is listed second."""
    ada, _ = quick_agent(org)
    room = org.chatroom(participants=[ada["id"]])
    clock.advance(timedelta(minutes=1))
    org.api.ok(
        "POST", f"/v1/chatrooms/{room['id']}/reassign", {"agent_ids": [org.admin_id, ada["id"]]}
    )
    assert org.admin_id < ada["id"]

    alone = _get(org, room["id"])
    assert [p["agent_id"] for p in alone["participants"]] == [ada["id"], org.admin_id]
    whole = {r["id"]: r for r in org.api.ok("GET", "/v1/chatrooms", params={"limit": 100})["data"]}
    listed = {r["id"]: r for r in list_entries(org, org.admin_id)}
    assert whole[room["id"]]["participants"] == alone["participants"]
    assert listed[room["id"]]["participants"] == alone["participants"]
