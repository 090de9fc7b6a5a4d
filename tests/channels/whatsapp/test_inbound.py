"""WhatsApp inbound (issue: channels; R2, R3, R4, R6, R8): Meta's verify handshake, signed
notifications stored and answered at once, every documented payload kind applied through the one
inbound path, replays and out-of-order statuses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chatflow.channels.inbox import MAX_ATTEMPTS, RETRY_BASE_MS, Inbox
from chatflow.channels.whatsapp.process import apply_notification
from chatflow.channels.whatsapp.signature import signature_matches, signature_of
from chatflow.clock import to_millis
from chatflow.domain.models import Channel, ChannelType, JsonObject
from chatflow.storage.database import Tx
from tests.channels.whatsapp.conftest import VERIFY_TOKEN, WhatsApp
from tests.factories import expect_problem
from tests.whatsapp_payloads import (
    batch,
    button_tap,
    encode,
    image_message,
    interactive_button_reply,
    interactive_list_reply,
    reaction_message,
    sign,
    status_update,
    template_status_update,
    text_message,
    unknown_field,
    unsupported_message,
)


def test_signature_matches_the_documented_test_vector() -> None:
    expected = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    assert signature_of(b"test", "secret") == expected
    assert signature_matches(b"test", expected, "secret")
    assert not signature_matches(b"test ", expected, "secret")
    assert not signature_matches(b"test", expected, "other secret")
    assert not signature_matches(b"test", None, "secret")


def test_verify_handshake_echoes_the_challenge_only_for_the_verify_token(
    whatsapp: WhatsApp,
) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = whatsapp.client.get(whatsapp.webhook, params=params)
    assert answer.status_code == 200 and answer.text == "1158201444"

    wrong = whatsapp.client.get(whatsapp.webhook, params={**params, "hub.verify_token": "nope"})
    expect_problem(wrong, 403, "verify_token_mismatch")
    unknown = whatsapp.client.get("/channels/whatsapp/ch_unknown/webhook", params=params)
    expect_problem(unknown, 404, "not_found")


def test_a_bad_signature_is_refused_and_nothing_is_stored(whatsapp: WhatsApp) -> None:
    payload = text_message("Hello", wa_id=whatsapp.customer())
    expect_problem(
        whatsapp.post(payload, signature="sha256=" + "0" * 64), 401, "signature_mismatch"
    )
    expect_problem(whatsapp.post(payload, signature=""), 401, "signature_mismatch")
    assert whatsapp.notifications() == []
    assert whatsapp.org.events(type="message.created") == []


def test_a_rotated_app_secret_is_honoured_at_once(
    whatsapp: WhatsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The channel and its secrets are cached for the webhook; a new secret still counts at once,
    whether it was set through this process (which forgets the cached one) or another (whose
    change this process finds when the signature does not match the cached secret)."""
    runtime = whatsapp.client.app.state.runtime  # type: ignore[attr-defined]
    monkeypatch.setattr(runtime.provider_channels, "cache_seconds", 600.0)
    payload = text_message("Hello", wa_id=whatsapp.customer())
    assert whatsapp.post(payload).status_code == 200  # the channel is cached now

    whatsapp.org.api.ok(
        "PATCH", f"/v1/channels/{whatsapp.channel['id']}", {"config": {"app_secret": "rotated"}}
    )
    body = encode(text_message("Again", wa_id=whatsapp.customer()))
    expect_problem(whatsapp.post(body), 401, "signature_mismatch")
    assert whatsapp.post(body, signature=sign(body, "rotated")).status_code == 200

    _set_app_secret_elsewhere(whatsapp, "rotated again")
    body = encode(text_message("Once more", wa_id=whatsapp.customer()))
    assert whatsapp.post(body, signature=sign(body, "rotated again")).status_code == 200
    expect_problem(whatsapp.post(body, signature=sign(body, "rotated")), 401, "signature_mismatch")
    assert len(whatsapp.notifications()) == 3


def _set_app_secret_elsewhere(whatsapp: WhatsApp, secret: str) -> None:
    """As another server process would: in the database, unseen by this process's cache."""
    import json

    import sqlalchemy as sa

    from chatflow.storage.tables import channels

    where = channels.c.id == whatsapp.channel["id"]
    stored = whatsapp.org.database.read_sync(
        lambda tx: tx.execute(sa.select(channels.c.secrets).where(where)).scalar_one()
    )
    secrets = {**json.loads(stored), "app_secret": secret}
    whatsapp.org.database.write_sync(
        lambda tx: tx.execute(channels.update().where(where).values(secrets=json.dumps(secrets)))
    )


def test_a_notification_is_stored_and_answered_before_it_is_applied(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    response = whatsapp.post(text_message("Hello", wa_id=wa_id))
    assert response.status_code == 200
    [stored] = whatsapp.notifications()
    assert stored.status == "pending"
    assert whatsapp.org.events(type="message.created") == []

    whatsapp.apply()
    [stored] = whatsapp.notifications()
    assert stored.status == "processed"
    assert len(whatsapp.org.events(type="message.created")) == 1


def test_a_new_customer_becomes_a_contact_with_a_chatroom_r2(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    sent_at = whatsapp.clock.now() - timedelta(hours=3)
    whatsapp.deliver(
        text_message(
            "Does it come in another color?",
            wa_id=wa_id,
            profile_name="Sheena Nelson",
            timestamp=str(int(sent_at.timestamp())),
        )
    )

    contact = whatsapp.org.api.ok("GET", "/v1/contacts", params={"phone": "+" + wa_id})["data"][0]
    assert contact["first_name"] == "Sheena Nelson"
    assert contact["phone"] == "+" + wa_id
    room = whatsapp.chatroom_of(wa_id)
    assert room["status"] == "open"
    assert room["channel_id"] == whatsapp.channel["id"]
    [message] = whatsapp.messages(room["id"])
    assert message["text"] == "Does it come in another color?"
    assert message["direction"] == "inbound" and message["sender"]["type"] == "contact"
    created = [e["type"] for e in whatsapp.org.events()]
    assert created[:3] == ["contact.created", "chatroom.created", "message.created"]


def test_the_window_runs_from_the_message_timestamp_not_its_arrival_r4(
    whatsapp: WhatsApp,
) -> None:
    wa_id = whatsapp.customer()
    written = whatsapp.clock.now() - timedelta(hours=23, minutes=59)
    whatsapp.deliver(text_message("Hi", wa_id=wa_id, timestamp=str(int(written.timestamp()))))
    room = whatsapp.chatroom_of(wa_id)
    free_form = {"text": "Thanks for writing"}
    whatsapp.org.api.ok("POST", f"/v1/chatrooms/{room['id']}/messages", free_form, status=201)

    whatsapp.clock.advance(timedelta(minutes=2))
    try:
        refused = whatsapp.org.api.post(f"/v1/chatrooms/{room['id']}/messages", free_form)
        expect_problem(refused, 409, "customer_window_closed")
    finally:
        whatsapp.clock.advance(-timedelta(minutes=2))


def test_a_replayed_wamid_has_one_effect(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    payload = text_message("Only once", wa_id=wa_id)
    whatsapp.deliver(payload)
    whatsapp.deliver(payload)
    whatsapp.deliver(batch(payload, text_message("Then this", wa_id=wa_id)))

    room = whatsapp.chatroom_of(wa_id)
    assert [m["text"] for m in whatsapp.messages(room["id"])] == ["Only once", "Then this"]
    outcomes = [n.outcome for n in whatsapp.notifications()]
    assert '"duplicates":1' in outcomes[1]


def _template_sent(
    whatsapp: WhatsApp, wa_id: str, *, relay_response: bool
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A chatroom whose customer wrote first, and a template sent into it and taken by Meta."""
    whatsapp.deliver(text_message("Hi", wa_id=wa_id))
    room = whatsapp.chatroom_of(wa_id)
    whatsapp.org.api.ok("PATCH", f"/v1/contacts/{room['contact_id']}", {"opted_in": True})
    template = whatsapp.org.template()
    sent = whatsapp.org.send_template(room["id"], template, relay_response=relay_response)
    assert whatsapp.send_queued() == 1
    [graph_send] = whatsapp.graph.wait_for_sends(1)
    return room, sent, graph_send.wamid


def test_a_tap_on_a_relayed_template_is_matched_and_relayed_r6(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    room, sent, wamid = _template_sent(whatsapp, wa_id, relay_response=True)
    payload = whatsapp.graph.sends[0].body["template"]["components"][-1]["parameters"][0]["payload"]

    whatsapp.deliver(button_tap(payload, "No", context_id=wamid, wa_id=wa_id))

    [relay] = whatsapp.org.events(type="template.response")
    assert relay["data"]["template_message_id"] == sent["id"]
    assert relay["data"]["button"] == {"index": 1, "text": "No", "payload": payload}
    tap = whatsapp.messages(room["id"])[-1]
    assert tap["kind"] == "button_reply" and tap["reply_to_message_id"] == sent["id"]


def test_a_tap_is_matched_by_its_context_when_the_payload_is_not_ours_r6(
    whatsapp: WhatsApp,
) -> None:
    wa_id = whatsapp.customer()
    _, sent, wamid = _template_sent(whatsapp, wa_id, relay_response=True)

    whatsapp.deliver(button_tap("Yes", "Yes", context_id=wamid, wa_id=wa_id))

    [relay] = whatsapp.org.events(type="template.response")
    assert relay["data"]["template_message_id"] == sent["id"]


def test_a_tap_on_a_non_relayed_template_hands_over_r8(whatsapp: WhatsApp) -> None:
    agent, _ = whatsapp.org.agent()
    contact = whatsapp.org.contact()
    wa_id = contact["phone"].removeprefix("+")
    room = whatsapp.org.chatroom(
        contact=contact,
        participants=[agent["id"]],
        assign_on_handover=True,
        channel_id=whatsapp.channel["id"],
    )
    template = whatsapp.org.template()
    whatsapp.org.send_template(room["id"], template, relay_response=False)
    whatsapp.send_queued()
    [graph_send] = whatsapp.graph.wait_for_sends(1)
    payload = graph_send.body["template"]["components"][-1]["parameters"][0]["payload"]

    whatsapp.deliver(button_tap(payload, "No", context_id=graph_send.wamid, wa_id=wa_id))

    [assigned] = whatsapp.org.events(type="chatroom.assigned", chatroom_id=room["id"])[-1:]
    assert assigned["data"]["reason"] == "handover"
    assert whatsapp.org.events(type="template.response") == []


def test_interactive_replies_are_free_flow_button_replies(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    whatsapp.deliver(text_message("Hi", wa_id=wa_id))
    whatsapp.deliver(
        interactive_button_reply("opt-1", "Track order", context_id="wamid.x", wa_id=wa_id)
    )
    whatsapp.deliver(
        interactive_list_reply(
            "row-2", "Returns", "How to return", context_id="wamid.y", wa_id=wa_id
        )
    )

    room = whatsapp.chatroom_of(wa_id)
    replies = whatsapp.messages(room["id"])[1:]
    assert [(m["kind"], m["text"]) for m in replies] == [
        ("button_reply", "Track order"),
        ("button_reply", "Returns"),
    ]
    assert [m["button"]["payload"] for m in replies] == ["opt-1", "row-2"]
    assert whatsapp.org.events(type="template.response") == []


def test_media_reactions_and_unsupported_messages_are_free_flow_text(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    whatsapp.deliver(image_message(caption="My receipt", wa_id=wa_id))
    whatsapp.deliver(reaction_message("wamid.any", emoji="👍", wa_id=wa_id))
    whatsapp.deliver(unsupported_message(wa_id=wa_id))

    room = whatsapp.chatroom_of(wa_id)
    texts = [m["text"] for m in whatsapp.messages(room["id"])]
    assert texts == ["[image] My receipt", "[reaction] 👍", "[unsupported]"]
    bumped = whatsapp.org.events(type="chatroom.bumped", chatroom_id=room["id"])
    assert len(bumped) == 3


def test_statuses_move_forward_only_and_failed_keeps_metas_reason(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    whatsapp.deliver(text_message("Hi", wa_id=wa_id))
    room = whatsapp.chatroom_of(wa_id)
    first = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room['id']}/messages", {"text": "One"}, status=201
    )
    second = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room['id']}/messages", {"text": "Two"}, status=201
    )
    assert first["status"] == "queued"
    whatsapp.send_queued()
    one, two = (s.wamid for s in whatsapp.graph.wait_for_sends(2))

    whatsapp.deliver(status_update(one, "read", recipient_id=wa_id))
    whatsapp.deliver(status_update(one, "delivered", recipient_id=wa_id))  # late: ignored
    whatsapp.deliver(status_update(one, "sent", recipient_id=wa_id))  # late: ignored
    whatsapp.deliver(status_update(two, "failed", recipient_id=wa_id))
    whatsapp.deliver(status_update(two, "delivered", recipient_id=wa_id))  # after failed: ignored

    by_id = {m["id"]: m for m in whatsapp.messages(room["id"])}
    assert by_id[first["id"]]["status"] == "read"
    assert by_id[second["id"]]["status"] == "failed"
    assert by_id[second["id"]]["error"]["code"] == 131026
    assert by_id[second["id"]]["error"]["title"] == "Message undeliverable"
    updates = whatsapp.org.events(type="message.status_updated", chatroom_id=room["id"])
    assert [(u["data"]["message"]["id"], u["data"]["message"]["status"]) for u in updates] == [
        (first["id"], "sent"),
        (second["id"], "sent"),
        (first["id"], "read"),
        (second["id"], "failed"),
    ]


def test_a_status_that_arrives_before_the_send_is_recorded_applies_once_it_is(
    whatsapp: WhatsApp,
) -> None:
    wa_id = whatsapp.customer()
    whatsapp.deliver(text_message("Hi", wa_id=wa_id))
    room = whatsapp.chatroom_of(wa_id)
    whatsapp.graph.delay_next(0.5)
    sent = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room['id']}/messages", {"text": "Early"}, status=201
    )
    assert whatsapp.client.portal is not None
    sending = whatsapp.client.portal.start_task_soon(whatsapp.sender.send_due)
    [graph_send] = whatsapp.graph.wait_for_sends(1)
    whatsapp.deliver(status_update(graph_send.wamid, "delivered", recipient_id=wa_id))
    sending.result(timeout=5)

    [message] = [m for m in whatsapp.messages(room["id"]) if m["id"] == sent["id"]]
    assert message["status"] == "delivered"
    assert message["channel_message_id"] == graph_send.wamid


def test_template_status_updates_change_the_template(whatsapp: WhatsApp) -> None:
    template = whatsapp.org.template(approve=False)
    whatsapp.deliver(
        template_status_update("REJECTED", "5512", template["name"], reason="INVALID_FORMAT")
    )
    rejected = whatsapp.org.api.ok("GET", f"/v1/templates/{template['id']}")
    assert rejected["status"] == "REJECTED"
    assert rejected["rejection_reason"] == "INVALID_FORMAT"
    [event] = whatsapp.org.events(type="template.status_updated")
    assert event["data"]["previous_status"] == "PENDING"


def test_unknown_shapes_are_kept_and_answered_200_not_lost(whatsapp: WhatsApp) -> None:
    wa_id = whatsapp.customer()
    whatsapp.deliver(unknown_field("account_update", {"event": "VERIFIED_ACCOUNT"}))
    whatsapp.deliver(b"not json at all")
    whatsapp.deliver(batch(text_message("Still here", wa_id=wa_id), unknown_field("x", {})))
    other_number = text_message("Not ours", wa_id=wa_id, phone_number_id="999")
    whatsapp.deliver(other_number)

    stored = whatsapp.notifications()
    assert [n.status for n in stored] == ["processed"] * 4
    assert all("unhandled" in n.outcome for n in stored)
    assert bytes(stored[1].body) == b"not json at all"
    room = whatsapp.chatroom_of(wa_id)
    assert [m["text"] for m in whatsapp.messages(room["id"])] == ["Still here"]


def test_one_free_flow_message_bumps_and_hands_over_r3_r8(whatsapp: WhatsApp) -> None:
    agent, _ = whatsapp.org.agent()
    contact = whatsapp.org.contact()
    room = whatsapp.org.chatroom(
        contact=contact,
        participants=[agent["id"]],
        assign_on_handover=True,
        channel_id=whatsapp.channel["id"],
    )
    wa_id = contact["phone"].removeprefix("+")
    whatsapp.deliver(text_message("I need help", wa_id=wa_id))

    [assigned] = whatsapp.org.events(type="chatroom.assigned", chatroom_id=room["id"])[-1:]
    assert assigned["data"]["reason"] == "handover"
    assert assigned["data"]["agent_ids"] == [agent["id"]]
    assert whatsapp.org.chatroom_list(agent["id"]) == [room["id"]]
    assert to_millis(whatsapp.clock.now()) > 0


def test_a_notification_that_fails_to_apply_is_retried_then_kept_unprocessable(
    whatsapp: WhatsApp,
) -> None:
    calls: list[str] = []

    def broken(tx: Tx, channel: Channel, body: bytes) -> JsonObject:
        calls.append(channel.id)
        raise RuntimeError("a bug in applying")

    inbox = Inbox(whatsapp.org.database, {ChannelType.WHATSAPP: broken})
    assert whatsapp.post(text_message("Hi", wa_id=whatsapp.customer())).status_code == 200
    assert whatsapp.client.portal is not None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert whatsapp.client.portal.call(inbox.apply_pending) == 1
        assert whatsapp.client.portal.call(inbox.apply_pending) == 0, "not again at once"
        whatsapp.clock.advance(timedelta(milliseconds=RETRY_BASE_MS * 2**attempt))

    [stored] = whatsapp.notifications()
    assert stored.status == "unprocessable" and stored.attempts == MAX_ATTEMPTS
    assert "a bug in applying" in stored.outcome
    # Each attempt: once in the batch without savepoints, then alone in its own.
    assert len(calls) == 2 * MAX_ATTEMPTS
    assert whatsapp.org.events(type="message.created") == [], "its effects rolled back"


def test_a_failing_notification_rolls_back_alone_and_the_rest_of_its_batch_applies(
    whatsapp: WhatsApp,
) -> None:
    first, failing, last = (whatsapp.customer() for _ in range(3))

    def fails_after_writing(tx: Tx, channel: Channel, body: bytes) -> JsonObject:
        outcome = apply_notification(tx, channel, body)
        if failing.encode() in body:
            raise RuntimeError("a bug in applying")
        return outcome

    inbox = Inbox(whatsapp.org.database, {ChannelType.WHATSAPP: fails_after_writing})
    for wa_id in (first, failing, last):
        assert whatsapp.post(text_message(f"Hi from {wa_id}", wa_id=wa_id)).status_code == 200
    assert whatsapp.client.portal is not None
    assert whatsapp.client.portal.call(inbox.apply_pending) == 3

    stored = whatsapp.notifications()
    assert [(n.status, n.attempts) for n in stored] == [
        ("processed", 1),
        ("pending", 1),
        ("processed", 1),
    ]
    assert "a bug in applying" in stored[1].outcome
    for wa_id in (first, last):
        [message] = whatsapp.messages(whatsapp.chatroom_of(wa_id)["id"])
        assert message["text"] == f"Hi from {wa_id}"
    failing_contacts = whatsapp.org.api.ok("GET", "/v1/contacts", params={"phone": "+" + failing})
    assert failing_contacts["data"] == [], "the failing one's contact rolled back with it"
    assert len(whatsapp.org.events(type="message.created")) == 2
