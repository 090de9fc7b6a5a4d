"""Standard Webhooks signatures for outbound deliveries.

The signed content is `{msg_id}.{timestamp}.{body}`, HMAC-SHA256, written `v1,<base64>`; one
signature per secret, space-separated, so an endpoint can rotate its secret without downtime.
The HMAC itself is left to the `standardwebhooks` library, the reference implementation.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from secrets import token_bytes

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
USER_AGENT = "chatflow-webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: the current secret first, then any still-valid older one.

    `body` must be the exact UTF-8 bytes that are sent: the library signs a `str` and encodes it
    back as UTF-8, which gives the same bytes only for valid UTF-8 (JSON always is).
    """
    if not secrets:
        raise ValueError("a webhook needs at least one secret to be signed")
    if "." in msg_id:
        raise ValueError(f"a webhook id must not contain '.', got {msg_id!r}")
    moment = datetime.fromtimestamp(timestamp, UTC)
    payload = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id, moment, payload) for secret in secrets)


def webhook_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header one delivery attempt carries; `timestamp` is the attempt's, in Unix seconds."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
