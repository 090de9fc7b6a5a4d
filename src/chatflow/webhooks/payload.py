"""The body of a webhook: the same bytes on every attempt, so a signature can be checked on
exactly what was sent (Standard Webhooks: `{type, timestamp, data}`)."""

from __future__ import annotations

import orjson

from chatflow.clock import iso
from chatflow.domain.models import Event

PING_TYPE = "webhook.ping"


def body_of(event: Event) -> bytes:
    """`chatroom_id` and `seq` let a consumer put a chatroom's events in order: retries do not
    hold later events back, so they may arrive out of order."""
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": iso(event.created_at),
            "chatroom_id": event.chatroom_id,
            "seq": event.seq,
            "data": event.data,
        }
    )


def ping_body(endpoint_id: str, now: int) -> bytes:
    return orjson.dumps(
        {"type": PING_TYPE, "timestamp": iso(now), "data": {"endpoint_id": endpoint_id}}
    )
