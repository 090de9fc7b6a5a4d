"""R6: taps on a template sent with relay_response=true are relayed as `template.response`."""

from __future__ import annotations

from typing import Any

from tests.factories import Org


def _template_responses(org: Org) -> list[dict[str, Any]]:
    return org.events(type="template.response")


def _created_messages(org: Org, chatroom_id: str) -> list[dict[str, Any]]:
    events = org.events(type="message.created", chatroom_id=chatroom_id)
    return [event["data"]["message"] for event in events]


def test_tap_on_a_relayed_template_records_a_template_response_r6(org: Org) -> None:
    contact = org.contact()
    chatroom = org.chatroom(contact=contact)
    template = org.template()
    sent = org.send_template(chatroom["id"], template, relay_response=True)

    tap = org.customer_taps(chatroom["id"], sent["id"], 1)

    [event] = _template_responses(org)
    assert event["chatroom_id"] == chatroom["id"]
    data = event["data"]
    assert data["chatroom_id"] == chatroom["id"]
    assert data["contact"]["id"] == contact["id"]
    assert data["contact"]["phone"] == contact["phone"]
    assert data["message_id"] == tap["id"]
    assert data["template_message_id"] == sent["id"]
    assert data["template"] == {"name": template["name"], "language": "en_US"}
    assert data["button"] == {"index": 1, "text": "No", "payload": f"cf1:{sent['id']}:1"}


def test_tap_on_a_relayed_template_is_also_a_button_reply_message_created_r6(org: Org) -> None:
    chatroom = org.chatroom()
    sent = org.send_template(chatroom["id"], org.template(), relay_response=True)

    tap = org.customer_taps(chatroom["id"], sent["id"], 0)

    created = [m for m in _created_messages(org, chatroom["id"]) if m["id"] == tap["id"]]
    assert len(created) == 1
    assert created[0]["kind"] == "button_reply"
    assert created[0]["direction"] == "inbound"
    assert created[0]["sender"]["type"] == "contact"
    assert created[0]["button"]["template_message_id"] == sent["id"]


def test_tap_on_a_template_sent_without_relay_records_no_template_response_r6(org: Org) -> None:
    chatroom = org.chatroom()
    sent = org.send_template(chatroom["id"], org.template(), relay_response=False)

    tap = org.customer_taps(chatroom["id"], sent["id"], 0)

    assert _template_responses(org) == []
    assert tap["kind"] == "button_reply"


def test_free_flow_text_after_a_relayed_template_records_no_template_response_r6(
    org: Org,
) -> None:
    chatroom = org.chatroom()
    org.send_template(chatroom["id"], org.template(), relay_response=True)

    org.customer_says(chatroom["id"], "Yes")

    assert _template_responses(org) == []


def test_free_flow_reply_to_a_relayed_template_records_no_template_response_r6(
    org: Org,
) -> None:
    chatroom = org.chatroom()
    sent = org.send_template(chatroom["id"], org.template(), relay_response=True)

    reply = org.customer_says(chatroom["id"], "Yes please", reply_to_message_id=sent["id"])

    assert reply["kind"] == "text"
    assert reply["reply_to_message_id"] == sent["id"]
    assert reply["button"] is None
    assert _template_responses(org) == []


def test_every_tap_is_a_message_created_naming_its_template_message_r6(org: Org) -> None:
    chatroom = org.chatroom()
    template = org.template()
    relayed = org.send_template(chatroom["id"], template, relay_response=True)
    handed_over = org.send_template(chatroom["id"], template, relay_response=False)
    silent = org.send_template(chatroom["id"], template, bump_response=False)

    taps = [
        org.customer_taps(chatroom["id"], relayed["id"], 0),
        org.customer_taps(chatroom["id"], handed_over["id"], 1),
        org.customer_taps(chatroom["id"], silent["id"], 0),
    ]

    by_id = {m["id"]: m for m in _created_messages(org, chatroom["id"])}
    assert [by_id[t["id"]]["kind"] for t in taps] == ["button_reply"] * 3
    assert [by_id[t["id"]]["button"]["template_message_id"] for t in taps] == [
        relayed["id"],
        handed_over["id"],
        silent["id"],
    ]
    assert [by_id[t["id"]]["button"]["index"] for t in taps] == [0, 1, 0]
    assert len(_template_responses(org)) == 1
