"""WhatsApp outbound (issue: channels; R4, R5, R6): sends leave after commit through the
outbox, in the Cloud API's format; 429 and 5xx are retried with backoff, permanent errors fail
the message with Meta's code; templates are submitted for review and synced from the account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chatflow.channels.outbound import RETRY_DELAYS_MS, SEND_DEADLINE_MS
from tests.channels.whatsapp.conftest import WhatsApp
from tests.factories import expect_problem
from tests.fake_graph import ACCESS_TOKEN, API_VERSION
from tests.whatsapp_payloads import PHONE_NUMBER_ID, WABA_ID, text_message


def _open_chatroom(whatsapp: WhatsApp) -> tuple[str, str]:
    wa_id = whatsapp.customer()
    whatsapp.deliver(text_message("Hi", wa_id=wa_id))
    return whatsapp.chatroom_of(wa_id)["id"], wa_id


def _message(whatsapp: WhatsApp, chatroom_id: str, message_id: str) -> dict[str, Any]:
    found: dict[str, Any] = whatsapp.org.api.ok(
        "GET", f"/v1/chatrooms/{chatroom_id}/messages/{message_id}"
    )
    return found


def _later(whatsapp: WhatsApp, millis: int) -> None:
    whatsapp.clock.advance(timedelta(milliseconds=millis))


def test_a_text_is_queued_in_the_request_and_sent_after_commit(whatsapp: WhatsApp) -> None:
    room, wa_id = _open_chatroom(whatsapp)
    sent = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room}/messages", {"text": "How can I help?"}, status=201
    )
    assert sent["status"] == "queued"
    assert whatsapp.graph.sends == []

    assert whatsapp.send_queued() == 1
    [graph_send] = whatsapp.graph.sends
    assert graph_send.phone_number_id == PHONE_NUMBER_ID
    assert graph_send.api_version == API_VERSION
    assert graph_send.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": wa_id,
        "type": "text",
        "text": {"preview_url": False, "body": "How can I help?"},
    }
    message = _message(whatsapp, room, sent["id"])
    assert message["status"] == "sent"
    assert message["channel_message_id"] == graph_send.wamid
    assert whatsapp.send_queued() == 0, "a sent message is not sent again"


def test_a_template_carries_its_variables_and_one_payload_per_quick_reply_r6(
    whatsapp: WhatsApp,
) -> None:
    room, wa_id = _open_chatroom(whatsapp)
    whatsapp.org.api.ok(
        "PATCH", f"/v1/contacts/{whatsapp.chatroom_of(wa_id)['contact_id']}", {"opted_in": True}
    )
    template = whatsapp.org.template()
    sent = whatsapp.org.send_template(room, template, relay_response=True)
    whatsapp.send_queued()

    [graph_send] = whatsapp.graph.sends
    assert graph_send.body["type"] == "template"
    assert graph_send.body["template"] == {
        "name": template["name"],
        "language": {"policy": "deterministic", "code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": f"cf1:{sent['id']}:0"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "1",
                "parameters": [{"type": "payload", "payload": f"cf1:{sent['id']}:1"}],
            },
        ],
    }


def test_rate_limits_and_server_errors_are_retried_with_backoff(whatsapp: WhatsApp) -> None:
    room, _ = _open_chatroom(whatsapp)
    sent = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room}/messages", {"text": "Eventually"}, status=201
    )
    whatsapp.graph.fail_next(429, 130429, "Rate limit hit")
    whatsapp.graph.fail_next(500, 131000, "Something went wrong")

    assert whatsapp.send_queued() == 1
    assert _message(whatsapp, room, sent["id"])["status"] == "queued"
    assert whatsapp.send_queued() == 0, "not due before its backoff"
    _later(whatsapp, RETRY_DELAYS_MS[0])
    assert whatsapp.send_queued() == 1
    assert whatsapp.send_queued() == 0
    _later(whatsapp, RETRY_DELAYS_MS[1])
    assert whatsapp.send_queued() == 1

    assert _message(whatsapp, room, sent["id"])["status"] == "sent"
    assert len(whatsapp.graph.sends) == 1


def test_a_permanent_error_fails_the_message_with_metas_code(whatsapp: WhatsApp) -> None:
    room, _ = _open_chatroom(whatsapp)
    sent = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room}/messages", {"text": "Undeliverable"}, status=201
    )
    whatsapp.graph.fail_next(400, 131026, "Message undeliverable")

    whatsapp.send_queued()

    failed = _message(whatsapp, room, sent["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == 131026
    assert failed["error"]["http_status"] == 400
    [update] = whatsapp.org.events(type="message.status_updated", chatroom_id=room)
    assert update["data"]["message"]["status"] == "failed"
    assert update["data"]["previous_status"] == "queued"
    _later(whatsapp, RETRY_DELAYS_MS[-1])
    assert whatsapp.send_queued() == 0


def test_an_expired_access_token_fails_the_message(whatsapp: WhatsApp) -> None:
    room, _ = _open_chatroom(whatsapp)
    whatsapp.org.api.ok(
        "PATCH", f"/v1/channels/{whatsapp.channel['id']}", {"config": {"access_token": "stale"}}
    )
    sent = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room}/messages", {"text": "Hello"}, status=201
    )

    whatsapp.send_queued()

    failed = _message(whatsapp, room, sent["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == 190


def test_a_message_that_cannot_be_sent_for_a_day_fails_as_expired(whatsapp: WhatsApp) -> None:
    room, _ = _open_chatroom(whatsapp)
    sent = whatsapp.org.api.ok(
        "POST", f"/v1/chatrooms/{room}/messages", {"text": "Never"}, status=201
    )
    whatsapp.graph.fail_next(503, 131000, "Service unavailable", times=1000)
    elapsed = 0
    while _message(whatsapp, room, sent["id"])["status"] == "queued":
        whatsapp.send_queued()
        _later(whatsapp, RETRY_DELAYS_MS[-1])
        elapsed += RETRY_DELAYS_MS[-1]
        assert elapsed <= SEND_DEADLINE_MS + 2 * RETRY_DELAYS_MS[-1]

    failed = _message(whatsapp, room, sent["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["expired"] is True
    assert whatsapp.graph.sends == []


def test_a_template_is_submitted_for_review_and_its_verdict_synced(whatsapp: WhatsApp) -> None:
    template = whatsapp.org.template(approve=False)
    channel = whatsapp.channel["id"]

    submitted = whatsapp.org.api.ok(
        "POST",
        f"/v1/channels/{channel}/template-submissions",
        {"template_id": template["id"]},
        status=201,
    )
    assert submitted["status"] == "PENDING"
    remote = whatsapp.graph.template(template["name"])
    assert submitted["external_id"] == remote.id
    assert remote.components == template["components"]

    whatsapp.graph.set_template_status(template["name"], "en_US", "APPROVED")
    whatsapp.graph.add_template(
        "shipping_update",
        components=[{"type": "BODY", "text": "Your parcel is on its way."}],
        status="APPROVED",
    )
    synced = whatsapp.org.api.ok("POST", f"/v1/channels/{channel}/templates/sync")

    assert [t["name"] for t in synced["updated"]] == [template["name"]]
    assert synced["updated"][0]["status"] == "APPROVED"
    assert [t["name"] for t in synced["created"]] == ["shipping_update"]
    again = whatsapp.org.api.ok("POST", f"/v1/channels/{channel}/templates/sync")
    assert again["created"] == again["updated"] == []
    assert again["unchanged"] == 2


def test_template_operations_report_metas_refusal_and_need_a_whatsapp_channel(
    whatsapp: WhatsApp,
) -> None:
    template = whatsapp.org.template(approve=False)
    whatsapp.graph.fail_next(
        400, 100, "Invalid parameter", endpoint="message_templates", error_subcode=2388024
    )
    refused = whatsapp.org.api.post(
        f"/v1/channels/{whatsapp.channel['id']}/template-submissions",
        {"template_id": template["id"]},
    )
    expect_problem(refused, 502, "provider_error")
    assert whatsapp.org.api.ok("GET", f"/v1/templates/{template['id']}")["external_id"] is None

    sandbox = whatsapp.org.api.post(f"/v1/channels/{whatsapp.org.channel_id}/templates/sync")
    expect_problem(sandbox, 409, "channel_mismatch")
    assert ACCESS_TOKEN and WABA_ID
