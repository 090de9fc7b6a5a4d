"""Webhook endpoints, their deliveries (one per event and endpoint) and every attempt made."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from chatflow.domain.models import (
    ChatroomId,
    DeliveryStatus,
    DisabledReason,
    Event,
    EventId,
    OrganizationId,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryId,
    WebhookEndpoint,
    WebhookEndpointId,
)
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.events import event_of
from chatflow.storage.sql import InQuery, Query, param
from chatflow.storage.tables import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

# -- endpoints ---------------------------------------------------------------------------------


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=WebhookEndpointId(row.id),
        org_id=OrganizationId(row.org_id),
        url=row.url,
        description=row.description,
        event_types=json.loads(row.event_types),
        enabled=bool(row.enabled),
        disabled_reason=None
        if row.disabled_reason is None
        else DisabledReason(row.disabled_reason),
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        failing_since=row.failing_since,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _endpoint_values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": json.dumps(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": None
        if endpoint.disabled_reason is None
        else endpoint.disabled_reason.value,
        "secret": endpoint.secret,
        "previous_secret": endpoint.previous_secret,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "failing_since": endpoint.failing_since,
        "updated_at": endpoint.updated_at,
    }


def insert_endpoint(tx: Tx, endpoint: WebhookEndpoint) -> None:
    tx.execute(
        webhook_endpoints.insert().values(
            id=endpoint.id,
            org_id=endpoint.org_id,
            created_at=endpoint.created_at,
            **_endpoint_values(endpoint),
        )
    )


def update_endpoint(tx: Tx, endpoint: WebhookEndpoint) -> None:
    tx.execute(
        webhook_endpoints.update()
        .where(webhook_endpoints.c.id == endpoint.id)
        .values(**_endpoint_values(endpoint))
    )


def delete_endpoint(tx: Tx, endpoint_id: str) -> None:
    """The endpoint and its whole delivery log (the foreign keys cascade)."""
    tx.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == endpoint_id))


def get_endpoint(
    tx: Tx, org_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint | None:
    query = sa.select(webhook_endpoints).where(
        webhook_endpoints.c.org_id == org_id, webhook_endpoints.c.id == endpoint_id
    )
    if lock:
        # NO KEY UPDATE: deliveries being inserted for the endpoint (their foreign key takes a
        # KEY SHARE lock) do not wait for it, nor it for them.
        query = query.with_for_update(key_share=True)
    row = tx.execute(query).first()
    return None if row is None else _endpoint(row)


def list_endpoints(tx: Tx, org_id: str, *, after: str | None, limit: int) -> list[WebhookEndpoint]:
    query = sa.select(webhook_endpoints).where(webhook_endpoints.c.org_id == org_id)
    if after is not None:
        query = query.where(webhook_endpoints.c.id > after)
    rows = tx.execute(query.order_by(webhook_endpoints.c.id).limit(limit + 1))
    return [_endpoint(r) for r in rows]


_ENABLED_OF = InQuery(
    lambda among: (
        sa.select(webhook_endpoints)
        .where(among(webhook_endpoints.c.org_id), webhook_endpoints.c.enabled.is_(True))
        .order_by(webhook_endpoints.c.id)
    )
)


def enabled_endpoints(tx: Tx, org_ids: Iterable[str]) -> dict[str, list[WebhookEndpoint]]:
    """Each organization's enabled endpoints, for fanning a batch of events out (read for
    every batch of the log, so compiled once)."""
    by_org: dict[str, list[WebhookEndpoint]] = {}
    wanted = sorted(set(org_ids))
    if not wanted:
        return by_org
    for row in _ENABLED_OF.run(tx.conn, wanted):
        endpoint = _endpoint(row)
        by_org.setdefault(endpoint.org_id, []).append(endpoint)
    return by_org


# -- deliveries --------------------------------------------------------------------------------


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=WebhookDeliveryId(row.id),
        org_id=OrganizationId(row.org_id),
        endpoint_id=WebhookEndpointId(row.endpoint_id),
        event_id=EventId(row.event_id),
        event_type=row.event_type,
        chatroom_id=None if row.chatroom_id is None else ChatroomId(row.chatroom_id),
        seq=row.seq,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def delivery_row(
    delivery_id: str,
    endpoint: WebhookEndpoint,
    event: Event,
    now: int,
    status: DeliveryStatus = DeliveryStatus.PENDING,
) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "org_id": endpoint.org_id,
        "endpoint_id": endpoint.id,
        "event_id": event.id,
        "event_type": event.type,
        "chatroom_id": event.chatroom_id,
        "seq": event.seq,
        "status": status.value,
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "last_attempt_at": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


def insert_deliveries(tx: Tx, rows: list[dict[str, Any]]) -> None:
    if rows:
        tx.conn.execute(webhook_deliveries.insert(), rows)


def get_delivery(tx: Tx, org_id: str, delivery_id: str) -> WebhookDelivery | None:
    row = tx.execute(
        sa.select(webhook_deliveries).where(
            webhook_deliveries.c.org_id == org_id, webhook_deliveries.c.id == delivery_id
        )
    ).first()
    return None if row is None else _delivery(row)


def list_deliveries(
    tx: Tx,
    endpoint_id: str,
    *,
    before: str | None,
    limit: int,
    status: DeliveryStatus | None,
    event_id: str | None,
) -> list[WebhookDelivery]:
    """Newest first: the log is read to see what just happened."""
    query = sa.select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(webhook_deliveries.c.id < before)
    if status is DeliveryStatus.PENDING:
        query = query.where(webhook_deliveries.c.status.in_([_PENDING, _HELD]))
    elif status is not None:
        query = query.where(webhook_deliveries.c.status == status.value)
    if event_id is not None:
        query = query.where(webhook_deliveries.c.event_id == event_id)
    rows = tx.execute(query.order_by(webhook_deliveries.c.id.desc()).limit(limit + 1))
    return [_delivery(r) for r in rows]


def list_attempts(tx: Tx, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
    by_delivery: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return by_delivery
    rows = tx.execute(
        sa.select(webhook_attempts)
        .where(webhook_attempts.c.delivery_id.in_(delivery_ids))
        .order_by(webhook_attempts.c.id)
    )
    for row in rows:
        by_delivery[row.delivery_id].append(
            WebhookAttempt(
                id=row.id,
                delivery_id=WebhookDeliveryId(row.delivery_id),
                attempted_at=row.attempted_at,
                latency_ms=row.latency_ms,
                status_code=row.status_code,
                error=row.error,
                response_excerpt=row.response_excerpt,
            )
        )
    return by_delivery


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken for one attempt, with what the attempt needs."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    event: Event


_d = webhook_deliveries
_PENDING = DeliveryStatus.PENDING.value
_HELD = DeliveryStatus.HELD.value
_WAITING = [_PENDING, _HELD]

# Written into the SQL, not bound: PostgreSQL's generic plan for a prepared statement can use a
# partial index (`WHERE status = 'pending'`) only when the query states the same literal.
_IS_PENDING = _d.c.status == sa.literal_column("'pending'")
_IS_HELD = _d.c.status == sa.literal_column("'held'")
_NEVER_ATTEMPTED = _d.c.attempts == sa.literal_column("0")

Line = tuple[str, str]
"""An endpoint and a chatroom: first attempts of the chatroom's events to it go in seq order."""


def busy_lines(tx: Tx, lines: Sequence[Line]) -> set[Line]:
    """The lines that already have an event waiting for its first attempt.

    The heads found are locked until this transaction ends. Recording a head's first attempt
    locks the head too, then releases the next held delivery: so either that recording ends
    first, and the head is no longer found here, or it waits for this transaction and then
    releases what it holds back. No delivery is ever held behind a line that has moved on.
    (SQLite writes one transaction at a time.)
    """
    wanted = set(lines)
    if not wanted:
        return set()
    endpoint_ids = sorted({e for e, _ in wanted})
    chatroom_ids = sorted({c for _, c in wanted})
    in_lines = sa.and_(_d.c.endpoint_id.in_(endpoint_ids), _d.c.chatroom_id.in_(chatroom_ids))
    heads = tx.execute(
        sa.select(_d.c.endpoint_id, _d.c.chatroom_id)
        .where(in_lines, _IS_PENDING, _NEVER_ATTEMPTED)
        .order_by(_d.c.id)
        .with_for_update()
    )
    held = tx.execute(
        sa.select(_d.c.endpoint_id, _d.c.chatroom_id).where(in_lines, _IS_HELD).distinct()
    )
    return {(row.endpoint_id, row.chatroom_id) for row in [*heads, *held]} & wanted


_RELEASE_NEXT = Query(
    _d.update()
    .where(
        _d.c.id
        == sa.select(_d.c.id)
        .where(
            _d.c.endpoint_id == param("endpoint_id"),
            _d.c.chatroom_id == param("chatroom_id"),
            _IS_HELD,
        )
        .order_by(_d.c.seq)
        .limit(1)
        .scalar_subquery()
    )
    .values(status=_PENDING, next_attempt_at=param("now"), updated_at=param("now"))
)


def release_next(tx: Tx, lines: Sequence[Line]) -> None:
    """The first attempt at the head of each line was made: the next event may go."""
    if lines:
        tx.run_many(
            _RELEASE_NEXT,
            [{"endpoint_id": e, "chatroom_id": c, "now": tx.now} for e, c in lines],
        )


_DUE = Query(
    sa.select(_d.c.id)
    .where(
        _IS_PENDING,
        _d.c.next_attempt_at <= param("now"),
        sa.or_(_d.c.locked_until.is_(None), _d.c.locked_until <= param("now")),
    )
    .order_by(_d.c.next_attempt_at, _d.c.id)
    .limit(param("limit"))
    # Other claimers skip these rows (PostgreSQL); SQLite has one writer at a time anyway.
    .with_for_update(skip_locked=True, of=_d)
)
_LEASE = InQuery(
    lambda among: (
        _d.update()
        .where(among(_d.c.id))
        .values(locked_until=param("locked_until"), updated_at=param("now"))
    )
)
_CLAIMED = InQuery(
    lambda among: (
        sa.select(
            _d,
            *[c.label(f"ep__{c.name}") for c in webhook_endpoints.c],
            *[c.label(f"ev__{c.name}") for c in events.c],
        )
        .join(webhook_endpoints, webhook_endpoints.c.id == _d.c.endpoint_id)
        .join(events, events.c.id == _d.c.event_id)
        .where(among(_d.c.id))
        .order_by(_d.c.next_attempt_at, _d.c.id)
    )
)


def claim_due(tx: Tx, *, now: int, limit: int, lease_ms: int) -> list[Claimed]:
    """Take up to `limit` due deliveries for `lease_ms`; other claimers skip them meanwhile.

    On PostgreSQL concurrent claimers skip each other's rows (`FOR UPDATE SKIP LOCKED`); SQLite
    runs one write transaction at a time, across processes too.
    """
    ids = [row.id for row in tx.run(_DUE, {"now": now, "limit": limit})]
    if not ids:
        return []
    _LEASE.run(tx.conn, ids, {"locked_until": now + lease_ms, "now": now})
    claimed = []
    for row in _CLAIMED.run(tx.conn, ids):
        endpoint = _endpoint(_Prefixed(row, "ep__"))
        event = event_of(_Prefixed(row, "ev__"))
        claimed.append(Claimed(_delivery(row), endpoint, event))
    return claimed


class _Prefixed:
    """Attribute access to the columns of a joined row that carry a prefix."""

    def __init__(self, row: Any, prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


_DELIVERIES_FOR_UPDATE = InQuery(
    lambda among: sa.select(_d).where(among(_d.c.id)).order_by(_d.c.id).with_for_update()
)


def lock_deliveries(tx: Tx, delivery_ids: Sequence[str]) -> dict[str, WebhookDelivery]:
    """The deliveries that still exist, locked, taken in id order (as every locker does)."""
    rows = _DELIVERIES_FOR_UPDATE.run(tx.conn, sorted(delivery_ids))
    return {row.id: _delivery(row) for row in rows}


_INSERT_ATTEMPT = Query(
    webhook_attempts.insert().values(
        id=param("id"),
        delivery_id=param("delivery_id"),
        org_id=param("org_id"),
        attempted_at=param("attempted_at"),
        latency_ms=param("latency_ms"),
        status_code=param("status_code"),
        error=param("error"),
        response_excerpt=param("response_excerpt"),
    )
)
_FINISH = Query(
    _d.update()
    .where(_d.c.id == param("id"))
    .values(
        status=param("status"),
        attempts=_d.c.attempts + 1,
        next_attempt_at=param("next_attempt_at"),
        locked_until=None,
        last_attempt_at=param("last_attempt_at"),
        last_status_code=param("last_status_code"),
        last_error=param("last_error"),
        updated_at=param("now"),
    )
)
_MARK_HEALTHY = Query(
    webhook_endpoints.update()
    .where(webhook_endpoints.c.id == param("id"), webhook_endpoints.c.failing_since.is_not(None))
    .values(failing_since=None)
)


@dataclass(frozen=True, slots=True)
class Finished:
    """One attempt's record and where it leaves its delivery."""

    delivery: WebhookDelivery
    attempt: WebhookAttempt
    status: DeliveryStatus
    next_attempt_at: int


def finish_attempts(tx: Tx, finished: Sequence[Finished]) -> None:
    """Log the attempts and move their deliveries on, each kind of write in one round trip."""
    if not finished:
        return
    tx.run_many(
        _INSERT_ATTEMPT,
        [
            {
                "id": f.attempt.id,
                "delivery_id": f.attempt.delivery_id,
                "org_id": f.delivery.org_id,
                "attempted_at": f.attempt.attempted_at,
                "latency_ms": f.attempt.latency_ms,
                "status_code": f.attempt.status_code,
                "error": f.attempt.error,
                "response_excerpt": f.attempt.response_excerpt,
            }
            for f in finished
        ],
    )
    tx.run_many(
        _FINISH,
        [
            {
                "id": f.delivery.id,
                "status": f.status.value,
                "next_attempt_at": f.next_attempt_at,
                "last_attempt_at": f.attempt.attempted_at,
                "last_status_code": f.attempt.status_code,
                "last_error": f.attempt.error,
                "now": tx.now,
            }
            for f in finished
        ],
    )


def mark_endpoints_healthy(tx: Tx, endpoint_ids: Sequence[str]) -> None:
    """A success ends a failing streak; written only when there is one, to keep the row cold."""
    if endpoint_ids:
        tx.run_many(_MARK_HEALTHY, [{"id": e} for e in endpoint_ids])


def fail_pending(tx: Tx, endpoint_id: str, reason: str) -> int:
    """A disabled endpoint's waiting deliveries fail at once; `recover` can queue them again."""
    result = tx.execute(
        _d.update()
        .where(_d.c.endpoint_id == endpoint_id, _d.c.status.in_(_WAITING))
        .values(status=DeliveryStatus.FAILED.value, last_error=reason, updated_at=tx.now)
    )
    return int(result.rowcount)


def requeue(tx: Tx, delivery_id: str) -> None:
    """Pending again, due now. One in flight keeps its lease, so it is not sent twice at once."""
    tx.execute(
        _d.update()
        .where(_d.c.id == delivery_id)
        .values(status=_PENDING, next_attempt_at=tx.now, updated_at=tx.now)
    )


def requeue_failed_since(tx: Tx, endpoint_id: str, since: int) -> int:
    result = tx.execute(
        _d.update()
        .where(
            _d.c.endpoint_id == endpoint_id,
            _d.c.status == DeliveryStatus.FAILED.value,
            _d.c.created_at >= since,
        )
        .values(status=_PENDING, next_attempt_at=tx.now, updated_at=tx.now)
    )
    return int(result.rowcount)


def undelivered_events_since(
    tx: Tx, endpoint: WebhookEndpoint, since: int, *, limit: int
) -> list[Event]:
    """The organization's events since `since`, of the types the endpoint subscribes to, that
    have no delivery to it (they committed while it was disabled, or before it existed)."""
    delivered = sa.exists().where(_d.c.endpoint_id == endpoint.id, _d.c.event_id == events.c.id)
    query = sa.select(events).where(
        events.c.org_id == endpoint.org_id, events.c.created_at >= since, ~delivered
    )
    if "*" not in endpoint.event_types:
        query = query.where(events.c.type.in_(endpoint.event_types))
    rows = tx.execute(query.order_by(events.c.txid, events.c.position).limit(limit))
    return [event_of(r) for r in rows]


def prune(tx: Tx, *, finished_before: int, limit: int) -> int:
    """Forget finished deliveries (and their attempts) last touched before a time."""
    old = (
        sa.select(_d.c.id)
        .where(_d.c.status.not_in(_WAITING), _d.c.updated_at < finished_before)
        .limit(limit)
    )
    ids = [row.id for row in tx.execute(old)]
    if not ids:
        return 0
    tx.execute(webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(ids)))
    tx.execute(_d.delete().where(_d.c.id.in_(ids)))
    return len(ids)
