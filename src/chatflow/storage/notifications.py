"""Notifications from channel providers, stored as received and processed in the background."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from chatflow.domain.models import ChannelId, JsonObject, OrganizationId
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import channel_notifications as _n

PENDING = "pending"
PROCESSED = "processed"
UNPROCESSABLE = "unprocessable"


@dataclass(frozen=True, slots=True)
class StoredNotification:
    id: str
    org_id: OrganizationId
    channel_id: ChannelId
    body: bytes
    attempts: int
    received_at: int


_INSERT = Query(
    _n.insert().values(
        id=param("id"),
        org_id=param("org_id"),
        channel_id=param("channel_id"),
        body=param("body"),
        status=PENDING,
        attempts=0,
        received_at=param("now"),
    )
)


def insert_notification(
    tx: Tx, notification_id: str, org_id: str, channel_id: str, body: bytes
) -> None:
    tx.run(
        _INSERT,
        {
            "id": notification_id,
            "org_id": org_id,
            "channel_id": channel_id,
            "body": body,
            "now": tx.now,
        },
    )


# The literal predicate matches the partial index's, so both databases use it.
_PENDING_DUE = Query(
    sa.select(_n.c.id, _n.c.org_id, _n.c.channel_id, _n.c.body, _n.c.attempts, _n.c.received_at)
    .where(
        sa.text("status = 'pending'"),
        sa.or_(_n.c.locked_until.is_(None), _n.c.locked_until <= param("now")),
    )
    .order_by(_n.c.id)
    .limit(param("limit"))
    # Concurrent processors take different notifications (PostgreSQL); SQLite runs one write
    # transaction at a time, across processes too.
    .with_for_update(skip_locked=True)
)


_ANY_PENDING = Query(
    sa.select(_n.c.id)
    .where(
        sa.text("status = 'pending'"),
        sa.or_(_n.c.locked_until.is_(None), _n.c.locked_until <= param("now")),
    )
    .limit(1)
)


def any_pending(tx: Tx) -> bool:
    """Whether a batch would find work: a read, so idle polls cost no write transaction."""
    return tx.run(_ANY_PENDING, {"now": tx.now}).first() is not None


def take_pending(tx: Tx, *, limit: int) -> list[StoredNotification]:
    """The oldest pending notifications, locked for this transaction."""
    rows = tx.run(_PENDING_DUE, {"now": tx.now, "limit": limit}).all()
    return [
        StoredNotification(
            id=r.id,
            org_id=OrganizationId(r.org_id),
            channel_id=ChannelId(r.channel_id),
            body=bytes(r.body),
            attempts=r.attempts,
            received_at=r.received_at,
        )
        for r in rows
    ]


_FINISH = Query(
    _n.update()
    .where(_n.c.id == param("id"))
    .values(
        status=param("status"),
        attempts=param("attempts"),
        locked_until=param("locked_until"),
        processed_at=param("processed_at"),
        outcome=param("outcome"),
    )
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a notification taken from the pending ones."""

    notification_id: str
    status: str
    attempts: int
    outcome: JsonObject
    retry_at: int | None = None
    """When a PENDING one may be tried again."""


def record_outcomes(tx: Tx, outcomes: list[Outcome]) -> None:
    """One statement for a batch's outcomes (on PostgreSQL, pipelined: one round trip)."""
    if not outcomes:
        return
    tx.run_many(
        _FINISH,
        [
            {
                "id": o.notification_id,
                "status": o.status,
                "attempts": o.attempts,
                "locked_until": o.retry_at,
                "processed_at": None if o.status == PENDING else tx.now,
                "outcome": json.dumps(o.outcome),
            }
            for o in outcomes
        ],
    )


def prune(tx: Tx, *, processed_before: int, limit: int) -> int:
    """Forget processed notifications (not unprocessable ones, kept for an operator)."""
    doomed = (
        sa.select(_n.c.id)
        .where(_n.c.status == PROCESSED, _n.c.processed_at < processed_before)
        .limit(limit)
        .scalar_subquery()
    )
    return int(tx.execute(_n.delete().where(_n.c.id.in_(doomed))).rowcount)
