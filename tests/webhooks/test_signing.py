from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from chatflow.webhooks.signing import new_secret, sign, webhook_headers

# The example of the Standard Webhooks specification and of Svix's documentation.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secret_is_whsec_and_32_random_bytes_in_base64() -> None:
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_signature_matches_the_published_test_vector_and_a_plain_hmac() -> None:
    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    signed_content = f"{VECTOR_ID}.{VECTOR_TIMESTAMP}.".encode() + VECTOR_BODY
    by_hand = base64.b64encode(hmac.new(key, signed_content, hashlib.sha256).digest()).decode()

    signature = sign([VECTOR_SECRET], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    assert signature == VECTOR_SIGNATURE == f"v1,{by_hand}"


def test_signed_request_verifies_with_the_reference_library() -> None:
    secret = new_secret()
    body = '{"type":"message.created","data":{"text":"café ☕"}}'.encode()

    headers = webhook_headers([secret], "evt_01", int(time.time()), body)

    assert Webhook(secret).verify(body, headers) == {
        "type": "message.created",
        "data": {"text": "café ☕"},
    }


def test_during_rotation_either_secret_verifies_and_no_other_does() -> None:
    current, previous = new_secret(), new_secret()
    body = b'{"type":"chatroom.created"}'

    headers = webhook_headers([current, previous], "evt_02", int(time.time()), body)

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(current).verify(body, headers)
    Webhook(previous).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_current_secret_signs_first() -> None:
    current, previous = new_secret(), new_secret()

    both = sign([current, previous], "evt_03", 1_700_000_000, b"{}")

    assert both == " ".join(
        [
            sign([current], "evt_03", 1_700_000_000, b"{}"),
            sign([previous], "evt_03", 1_700_000_000, b"{}"),
        ]
    )


def test_tampered_body_or_timestamp_fails_verification() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = webhook_headers([secret], "evt_04", now, b'{"amount":1}')

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"amount":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"amount":1}', headers | {"webhook-timestamp": str(now - 1)})


def test_headers_carry_id_unix_timestamp_signature_type_and_agent() -> None:
    headers = webhook_headers([VECTOR_SECRET], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": VECTOR_SIGNATURE,
        "content-type": "application/json",
        "user-agent": "chatflow-webhooks/1",
    }


def test_signing_refuses_no_secret_and_an_id_with_a_dot() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        sign([], "evt_05", VECTOR_TIMESTAMP, b"{}")
    with pytest.raises(ValueError, match="must not contain"):
        sign([VECTOR_SECRET], "evt.05", VECTOR_TIMESTAMP, b"{}")
