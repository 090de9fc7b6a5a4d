"""Outbound messages waiting for their channel's provider, and provider statuses that came early."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from chatflow.domain.models import JsonObject, Message
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import InQuery, Query, param
from chatflow.storage.tables import chatrooms
from chatflow.storage.tables import early_message_statuses as _early
from chatflow.storage.tables import outbound_sends as _s

_ENQUEUE = Query(
    _s.insert().values(
        message_id=param("message_id"),
        org_id=param("org_id"),
        channel_id=param("channel_id"),
        chatroom_id=param("chatroom_id"),
        attempts=0,
        next_attempt_at=param("now"),
        created_at=param("now"),
    )
)


def enqueue(tx: Tx, message: Message, channel_id: str) -> None:
    tx.run(
        _ENQUEUE,
        {
            "message_id": message.id,
            "org_id": message.org_id,
            "channel_id": channel_id,
            "chatroom_id": message.chatroom_id,
            "now": tx.now,
        },
    )


@dataclass(frozen=True, slots=True)
class PendingSend:
    message_id: str
    org_id: str
    channel_id: str
    chatroom_id: str
    contact_id: str
    attempts: int
    created_at: int


_DUE = Query(
    sa.select(_s, chatrooms.c.contact_id)
    .join(chatrooms, chatrooms.c.id == _s.c.chatroom_id)
    .where(
        _s.c.next_attempt_at <= param("now"),
        sa.or_(_s.c.locked_until.is_(None), _s.c.locked_until <= param("now")),
    )
    .order_by(_s.c.next_attempt_at, _s.c.message_id)
    .limit(param("limit"))
    .with_for_update(skip_locked=True, of=_s)
)
_ANY_DUE = Query(
    sa.select(_s.c.message_id)
    .where(
        _s.c.next_attempt_at <= param("now"),
        sa.or_(_s.c.locked_until.is_(None), _s.c.locked_until <= param("now")),
    )
    .limit(1)
)


def any_due(tx: Tx) -> bool:
    """Whether a claim would find work: a read, so idle wake-ups cost no write transaction."""
    return tx.run(_ANY_DUE, {"now": tx.now}).first() is not None


_LEASE = InQuery(
    lambda among: _s.update().where(among(_s.c.message_id)).values(locked_until=param("until"))
)


def claim_due(tx: Tx, *, limit: int, lease_ms: int) -> list[PendingSend]:
    """Take up to `limit` due sends for `lease_ms`: other claimers skip them meanwhile, and a
    worker killed mid-send leaves them to be claimed again once the lease runs out."""
    rows = tx.run(_DUE, {"now": tx.now, "limit": limit}).all()
    if not rows:
        return []
    _LEASE.run(tx.conn, [r.message_id for r in rows], {"until": tx.now + lease_ms})
    return [
        PendingSend(
            r.message_id,
            r.org_id,
            r.channel_id,
            r.chatroom_id,
            r.contact_id,
            r.attempts,
            r.created_at,
        )
        for r in rows
    ]


_DONE = Query(_s.delete().where(_s.c.message_id == param("id")))


def finish(tx: Tx, message_id: str) -> None:
    tx.run(_DONE, {"id": message_id})


_RETRY = Query(
    _s.update()
    .where(_s.c.message_id == param("id"))
    .values(
        attempts=param("attempts"),
        next_attempt_at=param("next_attempt_at"),
        locked_until=None,
        last_error=param("last_error"),
    )
)


def reschedule(
    tx: Tx, message_id: str, *, attempts: int, next_attempt_at: int, error: JsonObject
) -> None:
    tx.run(
        _RETRY,
        {
            "id": message_id,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "last_error": json.dumps(error),
        },
    )


# -- statuses reported before their message's provider id was recorded ---------------------------

_KEEP_EARLY = Query(
    _early.insert().values(
        org_id=param("org_id"),
        channel_message_id=param("channel_message_id"),
        status=param("status"),
        timestamp=param("timestamp"),
        error=param("error"),
        received_at=param("now"),
    )
)


def keep_early_status(
    tx: Tx,
    org_id: str,
    channel_message_id: str,
    status: str,
    timestamp: int,
    error: JsonObject | None,
) -> None:
    tx.run(
        _KEEP_EARLY,
        {
            "org_id": org_id,
            "channel_message_id": channel_message_id,
            "status": status,
            "timestamp": timestamp,
            "error": None if error is None else json.dumps(error),
            "now": tx.now,
        },
    )


@dataclass(frozen=True, slots=True)
class EarlyStatus:
    status: str
    timestamp: int
    error: JsonObject | None


_EARLY = Query(
    sa.select(_early.c.id, _early.c.status, _early.c.timestamp, _early.c.error)
    .where(
        _early.c.org_id == param("org_id"),
        _early.c.channel_message_id == param("channel_message_id"),
    )
    .order_by(_early.c.id)
)
_FORGET = InQuery(lambda among: _early.delete().where(among(_early.c.id)))


def take_early_statuses(tx: Tx, org_id: str, channel_message_id: str) -> list[EarlyStatus]:
    rows = tx.run(_EARLY, {"org_id": org_id, "channel_message_id": channel_message_id}).all()
    if rows:
        _FORGET.run(tx.conn, [r.id for r in rows])
    return [EarlyStatus(r.status, r.timestamp, json.loads(r.error)) for r in rows]


def prune_early_statuses(tx: Tx, *, received_before: int) -> None:
    tx.execute(_early.delete().where(_early.c.received_at < received_before))
