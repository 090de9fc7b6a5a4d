"""Webhook endpoints an organization manages, and its delivery log (SPEC "Events, webhooks")."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chatflow.domain import webhooks as rules
from chatflow.domain.access import Actor, check_administers
from chatflow.domain.errors import NotFoundError, WebhookEndpointDisabledError
from chatflow.domain.models import (
    DeliveryStatus,
    DisabledReason,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointId,
)
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.storage import webhooks as store
from chatflow.storage.database import Tx
from chatflow.webhooks.delivery import disable
from chatflow.webhooks.guard import UrlGuard
from chatflow.webhooks.payload import ping_body
from chatflow.webhooks.sender import AttemptResult, WebhookSender
from chatflow.webhooks.signing import new_secret, webhook_headers

KNOWN_EVENT_TYPES = frozenset(t.value for t in EventType)
RECOVER_LIMIT = 10_000
"""Events one `recover` call delivers anew at most; call again for more."""


async def check_url(guard: UrlGuard, url: str) -> None:
    """Refuse URLs that point inside the network (SSRF), before anything is stored. The check is
    made again at every attempt, since a name can resolve elsewhere later."""
    guard.check_syntax(url)
    await guard.resolve(url)


def access_endpoint(tx: Tx, actor: Actor, endpoint_id: str) -> WebhookEndpoint:
    check_administers(actor)
    endpoint = store.get_endpoint(tx, actor.org_id, endpoint_id)
    if endpoint is None:
        raise NotFoundError(f"No webhook endpoint {endpoint_id}")
    return endpoint


def do_create_endpoint(
    tx: Tx, actor: Actor, *, url: str, description: str, event_types: list[str], enabled: bool
) -> WebhookEndpoint:
    check_administers(actor)
    endpoint = WebhookEndpoint(
        id=WebhookEndpointId(new_id("whe")),
        org_id=actor.org_id,
        url=url,
        description=description,
        event_types=rules.check_event_types(event_types, KNOWN_EVENT_TYPES),
        enabled=enabled,
        disabled_reason=None if enabled else DisabledReason.MANUAL,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_expires_at=None,
        failing_since=None,
        created_at=tx.now,
        updated_at=tx.now,
    )
    store.insert_endpoint(tx, endpoint)
    return endpoint


def do_update_endpoint(
    tx: Tx,
    actor: Actor,
    endpoint_id: str,
    *,
    url: str | None,
    description: str | None,
    event_types: list[str] | None,
    enabled: bool | None,
) -> WebhookEndpoint:
    """Change what is set. Enabling clears the failing streak; what failed while disabled is
    not sent by itself (see `do_recover`)."""
    endpoint = access_endpoint(tx, actor, endpoint_id)
    updated = replace(
        endpoint,
        url=endpoint.url if url is None else url,
        description=endpoint.description if description is None else description,
        event_types=endpoint.event_types
        if event_types is None
        else rules.check_event_types(event_types, KNOWN_EVENT_TYPES),
        updated_at=tx.now,
    )
    if enabled is True and not endpoint.enabled:
        updated = replace(updated, enabled=True, disabled_reason=None, failing_since=None)
    store.update_endpoint(tx, updated)
    if enabled is False and endpoint.enabled:
        updated = disable(tx, updated, DisabledReason.MANUAL)
    return updated


def do_delete_endpoint(tx: Tx, actor: Actor, endpoint_id: str) -> None:
    access_endpoint(tx, actor, endpoint_id)
    store.delete_endpoint(tx, endpoint_id)


def do_rotate_secret(tx: Tx, actor: Actor, endpoint_id: str) -> WebhookEndpoint:
    """A new secret, shown once; the old one keeps signing for a day, next to the new one."""
    endpoint = access_endpoint(tx, actor, endpoint_id)
    rotated = replace(
        endpoint,
        secret=new_secret(),
        previous_secret=endpoint.secret,
        previous_secret_expires_at=tx.now + rules.SECRET_OVERLAP_MS,
        updated_at=tx.now,
    )
    store.update_endpoint(tx, rotated)
    return rotated


def list_endpoints(
    tx: Tx, actor: Actor, *, cursor: str | None, limit: int
) -> Page[WebhookEndpoint]:
    check_administers(actor)
    after = str(decode_cursor("webhook_endpoints", cursor, [str])[0]) if cursor else None
    rows = store.list_endpoints(tx, actor.org_id, after=after, limit=limit)
    return page_of(rows, limit, "webhook_endpoints", lambda e: [e.id])


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def list_deliveries(
    tx: Tx,
    actor: Actor,
    endpoint_id: str,
    *,
    cursor: str | None,
    limit: int,
    status: DeliveryStatus | None,
    event_id: str | None,
) -> Page[DeliveryLog]:
    """Newest first, each with every attempt made."""
    access_endpoint(tx, actor, endpoint_id)
    before = str(decode_cursor("webhook_deliveries", cursor, [str])[0]) if cursor else None
    rows = store.list_deliveries(
        tx, endpoint_id, before=before, limit=limit, status=status, event_id=event_id
    )
    page = page_of(rows, limit, "webhook_deliveries", lambda d: [d.id])
    attempts = store.list_attempts(tx, [d.id for d in page.items])
    return Page([DeliveryLog(d, attempts[d.id]) for d in page.items], page.next_cursor)


def access_delivery(tx: Tx, actor: Actor, delivery_id: str) -> DeliveryLog:
    check_administers(actor)
    delivery = store.get_delivery(tx, actor.org_id, delivery_id)
    if delivery is None:
        raise NotFoundError(f"No webhook delivery {delivery_id}")
    return DeliveryLog(delivery, store.list_attempts(tx, [delivery.id])[delivery.id])


def do_redeliver(tx: Tx, actor: Actor, delivery_id: str) -> DeliveryLog:
    """Send one delivery again, now, whatever became of it. Its endpoint must be enabled."""
    log = access_delivery(tx, actor, delivery_id)
    endpoint = access_endpoint(tx, actor, log.delivery.endpoint_id)
    _check_enabled(endpoint)
    store.requeue(tx, log.delivery.id)
    return access_delivery(tx, actor, delivery_id)


@dataclass(frozen=True, slots=True)
class Recovery:
    requeued: int
    created: int


def do_recover(tx: Tx, actor: Actor, endpoint_id: str, since: int) -> Recovery:
    """Everything since a time, again: failed deliveries are queued anew, and events the
    endpoint never got (it was disabled, or subscribed to less) become deliveries."""
    endpoint = access_endpoint(tx, actor, endpoint_id)
    _check_enabled(endpoint)
    requeued = store.requeue_failed_since(tx, endpoint.id, since)
    missed = store.undelivered_events_since(tx, endpoint, since, limit=RECOVER_LIMIT)
    store.insert_deliveries(
        tx, [store.delivery_row(new_id("whd"), endpoint, event, tx.now) for event in missed]
    )
    return Recovery(requeued=requeued, created=len(missed))


def _check_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise WebhookEndpointDisabledError(
            f"Webhook endpoint {endpoint.id} is disabled: enable it first"
        )


async def ping(sender: WebhookSender, endpoint: WebhookEndpoint, now: int) -> AttemptResult:
    """A signed `webhook.ping` sent at once, outside the log, to test the receiver."""
    body = ping_body(endpoint.id, now)
    headers = webhook_headers(endpoint.signing_secrets(now), new_id("msg"), now // 1000, body)
    return await sender.send(endpoint.url, headers, body)
