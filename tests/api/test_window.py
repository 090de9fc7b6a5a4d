"""R4: the 24-hour customer-service window, on the sandbox (which emulates it) and elsewhere."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2 as httpx
from tests.factories import Org, snapshot

from chatflow.clock import ManualClock, iso, to_millis

DAY = timedelta(hours=24)

WHATSAPP_CONFIG = {
    "phone_number_id": "1234567890",
    "waba_id": "9876543210",
    "access_token": "EAAG-test-token",
    "app_secret": "app-secret",
    "verify_token": "verify-me",
}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _send(org: Org, chatroom_id: str, text: str = "Hello") -> httpx.Response:
    return org.api.post(f"/v1/chatrooms/{chatroom_id}/messages", {"text": text})


def _window(org: Org, chatroom_id: str) -> str | None:
    expires: str | None = org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}")["window_expires_at"]
    return expires


def _in(clock: ManualClock, delta: timedelta) -> str:
    """The API's time format for now + `delta`."""
    return iso(to_millis(clock.now() + delta))


def test_free_form_before_any_customer_message_is_refused_and_says_to_send_a_template_r4(
    org: Org,
) -> None:
    chatroom = org.chatroom()
    before = snapshot(org)

    problem = _problem(_send(org, chatroom["id"]), 409, "customer_window_closed")

    assert "template" in problem["detail"]
    assert "/template-messages" in problem["detail"]
    assert problem["chatroom_id"] == chatroom["id"]
    assert snapshot(org) == before


def test_free_form_after_a_customer_message_is_sent_r4(org: Org, clock: ManualClock) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"])

    response = _send(org, chatroom["id"])

    assert response.status_code == 201, response.text
    assert _window(org, chatroom["id"]) == _in(clock, DAY)


def test_window_is_open_at_23h59m_and_closed_at_24h_after_the_customer_message_r4(
    org: Org, clock: ManualClock
) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"])

    clock.advance(timedelta(hours=23, minutes=59))
    assert _send(org, chatroom["id"], "still open").status_code == 201

    clock.advance(timedelta(minutes=1))
    before = snapshot(org)
    _problem(_send(org, chatroom["id"], "too late"), 409, "customer_window_closed")
    assert snapshot(org) == before


def test_window_runs_from_the_customer_messages_own_timestamp_r4(
    org: Org, clock: ManualClock
) -> None:
    chatroom = org.chatroom()
    written = clock.now() - timedelta(hours=23)

    org.customer_says(chatroom["id"], timestamp=written.isoformat())

    assert _window(org, chatroom["id"]) == iso(to_millis(written + DAY))
    clock.advance(timedelta(minutes=59))
    assert _send(org, chatroom["id"]).status_code == 201
    clock.advance(timedelta(minutes=1))
    _problem(_send(org, chatroom["id"]), 409, "customer_window_closed")


def test_a_late_delivered_older_customer_message_never_shortens_the_window_r4(
    org: Org, clock: ManualClock
) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "latest")
    expires = _in(clock, DAY)

    older = clock.now() - timedelta(hours=5)
    org.customer_says(chatroom["id"], "written earlier", timestamp=older.isoformat())

    assert _window(org, chatroom["id"]) == expires
    clock.advance(timedelta(hours=23, minutes=59))
    assert _send(org, chatroom["id"]).status_code == 201


def test_a_template_does_not_open_the_window_r4(org: Org) -> None:
    chatroom = org.chatroom()
    org.send_template(chatroom["id"], org.template())

    assert _window(org, chatroom["id"]) is None
    _problem(_send(org, chatroom["id"]), 409, "customer_window_closed")


def test_our_own_sends_never_refresh_the_window_r4(org: Org, clock: ManualClock) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"])
    expires = _in(clock, DAY)

    clock.advance(timedelta(hours=23))
    assert _send(org, chatroom["id"], "free-form").status_code == 201
    org.send_template(chatroom["id"], org.template())
    assert _window(org, chatroom["id"]) == expires

    clock.advance(timedelta(hours=1))
    _problem(_send(org, chatroom["id"]), 409, "customer_window_closed")


def test_a_button_tap_refreshes_the_window_r4(org: Org, clock: ManualClock) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"])
    template_message = org.send_template(chatroom["id"], org.template())

    clock.advance(timedelta(hours=20))
    org.customer_taps(chatroom["id"], template_message["id"], 0)
    assert _window(org, chatroom["id"]) == _in(clock, DAY)

    clock.advance(timedelta(hours=10))  # 30 hours after the text, 10 after the tap
    assert _send(org, chatroom["id"]).status_code == 201
    clock.advance(timedelta(hours=14))  # 24 hours after the tap
    _problem(_send(org, chatroom["id"]), 409, "customer_window_closed")


def test_a_button_tap_opens_a_closed_window_r4(org: Org) -> None:
    chatroom = org.chatroom()
    template_message = org.send_template(chatroom["id"], org.template())
    _problem(_send(org, chatroom["id"]), 409, "customer_window_closed")

    org.customer_taps(chatroom["id"], template_message["id"], 1)

    assert _send(org, chatroom["id"]).status_code == 201


def test_sandbox_channel_with_the_window_off_needs_no_customer_message_r4(org: Org) -> None:
    channel = org.api.ok(
        "POST",
        "/v1/channels",
        {"type": "sandbox", "name": "No window", "customer_window": False},
        status=201,
    )
    assert channel["customer_window"] is False
    chatroom = org.chatroom(channel_id=channel["id"])

    response = _send(org, chatroom["id"])

    assert response.status_code == 201, response.text


def test_default_sandbox_channel_emulates_the_window_r4(org: Org) -> None:
    channel = org.api.ok("POST", "/v1/channels", {"type": "sandbox", "name": "Demo"}, status=201)
    assert channel["customer_window"] is True
    chatroom = org.chatroom(channel_id=channel["id"])

    _problem(_send(org, chatroom["id"]), 409, "customer_window_closed")


def test_webchat_channel_has_no_window_r4(org: Org) -> None:
    channel = org.api.ok("POST", "/v1/channels", {"type": "webchat", "name": "Website"}, status=201)
    assert channel["customer_window"] is False
    chatroom = org.chatroom(channel_id=channel["id"])

    response = _send(org, chatroom["id"])

    assert response.status_code == 201, response.text


def test_whatsapp_channel_cannot_be_created_without_the_window_r4(org: Org) -> None:
    before = snapshot(org)

    response = org.api.post(
        "/v1/channels",
        {
            "type": "whatsapp",
            "name": "WhatsApp",
            "customer_window": False,
            "config": WHATSAPP_CONFIG,
        },
    )

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/customer_window"]
    assert snapshot(org) == before


def test_whatsapp_channel_cannot_turn_the_window_off_r4(org: Org) -> None:
    channel = org.api.ok(
        "POST",
        "/v1/channels",
        {"type": "whatsapp", "name": "WhatsApp", "config": WHATSAPP_CONFIG},
        status=201,
    )
    assert channel["customer_window"] is True

    response = org.api.patch(f"/v1/channels/{channel['id']}", {"customer_window": False})

    problem = _problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/customer_window"]
    assert org.api.ok("GET", f"/v1/channels/{channel['id']}")["customer_window"] is True
