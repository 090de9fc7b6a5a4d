"""What happens in the database around a webhook attempt: events fanned out to endpoints as
deliveries, and each attempt's outcome recorded with its consequences (retry, give up, disable
the endpoint). Each function runs inside one write transaction."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from chatflow.domain import webhooks as rules
from chatflow.domain.models import (
    DeliveryStatus,
    DisabledReason,
    Event,
    EventHead,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryId,
    WebhookEndpoint,
)
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.storage import webhooks as store
from chatflow.storage.database import Tx
from chatflow.storage.webhooks import Claimed
from chatflow.views import webhook_endpoint_view
from chatflow.webhooks.sender import AttemptResult

AnyEvent = TypeVar("AnyEvent", Event, EventHead)


class WebhookFanOut:
    """The log consumer that turns each committed event into one delivery per endpoint that
    subscribes to it (see `events.consumers`)."""

    name = "webhook-fan-out"

    def wants(self, tx: Tx, batch: list[EventHead]) -> bool:
        return bool(_subscriptions(tx, batch))

    def handle(self, tx: Tx, batch: list[Event]) -> None:
        made = _subscriptions(tx, batch)
        if not made:
            return
        # Each chatroom's events to an endpoint form a line: its head is pending, the rest
        # held until the head's first attempt is made (see `do_record_attempt`).
        lines = [(e.id, v.chatroom_id) for e, v in made if v.chatroom_id is not None]
        busy = store.busy_lines(tx, lines)
        rows = []
        for endpoint, event in sorted(made, key=lambda pair: pair[1].seq or 0):
            status = DeliveryStatus.PENDING
            if event.chatroom_id is not None:
                line = (endpoint.id, event.chatroom_id)
                if line in busy:
                    status = DeliveryStatus.HELD
                busy.add(line)
            rows.append(store.delivery_row(new_id("whd"), endpoint, event, tx.now, status))
        store.insert_deliveries(tx, rows)


def _subscriptions(tx: Tx, batch: list[AnyEvent]) -> list[tuple[WebhookEndpoint, AnyEvent]]:
    """Each event of the batch with each enabled endpoint that subscribes to it."""
    endpoints = store.enabled_endpoints(tx, {event.org_id for event in batch})
    if not endpoints:
        return []
    return [
        (endpoint, event)
        for event in batch
        for endpoint in endpoints.get(event.org_id, ())
        # An endpoint receives what happens after it was made, not the past.
        if event.created_at >= endpoint.created_at
        and rules.subscribes_to(endpoint.event_types, event.type)
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to, for the database."""

    claimed: Claimed
    result: AttemptResult
    attempted_at: int

    @property
    def plain(self) -> bool:
        """A success to an endpoint that was not failing when claimed: it touches no endpoint."""
        return self.result.succeeded and self.claimed.endpoint.failing_since is None


def do_record_attempts(
    tx: Tx, outcomes: Sequence[Outcome], rng: random.Random | None = None
) -> None:
    """Record a batch of outcomes. Successes to endpoints that were not failing when claimed,
    the bulk of a healthy drain, are written together, a few statements for the whole batch;
    every other outcome goes through `do_record_attempt`."""
    plain = [o for o in outcomes if o.plain]
    if plain:
        deliveries = store.lock_deliveries(tx, [o.claimed.delivery.id for o in plain])
        lines: list[store.Line] = []
        finished: list[store.Finished] = []
        for outcome in plain:
            delivery = deliveries.get(outcome.claimed.delivery.id)
            if delivery is None:
                continue  # deleted with its endpoint while the attempt was under way
            if delivery.attempts == 0 and delivery.chatroom_id is not None:
                lines.append((delivery.endpoint_id, delivery.chatroom_id))
            finished.append(
                store.Finished(
                    delivery,
                    _attempt_of(delivery, outcome.result, outcome.attempted_at),
                    DeliveryStatus.SUCCEEDED,
                    tx.now,
                )
            )
        store.release_next(tx, lines)
        store.finish_attempts(tx, finished)
        store.mark_endpoints_healthy(tx, sorted({f.delivery.endpoint_id for f in finished}))
    for outcome in outcomes:
        if not outcome.plain:
            do_record_attempt(tx, outcome.claimed, outcome.result, outcome.attempted_at, rng)


def _attempt_of(
    delivery: WebhookDelivery, result: AttemptResult, attempted_at: int
) -> WebhookAttempt:
    return WebhookAttempt(
        id=new_id("wha"),
        delivery_id=WebhookDeliveryId(delivery.id),
        attempted_at=attempted_at,
        latency_ms=result.latency_ms,
        status_code=result.status_code,
        error=result.error,
        response_excerpt=result.response_excerpt,
    )


def do_record_attempt(
    tx: Tx,
    claimed: Claimed,
    result: AttemptResult,
    attempted_at: int,
    rng: random.Random | None = None,
) -> None:
    """Log the attempt and decide what comes next: done, a retry on the schedule, or failed.

    A failure may change the endpoint (its failing streak, disabling it, failing its other
    deliveries), so it locks the endpoint before the delivery: every transaction that touches
    both takes them in that order, and concurrent outcomes for one endpoint never deadlock.
    A success touches the endpoint only to end a failing streak (and then locks it first too,
    as far as the claim showed the streak; a streak that began since may cost a deadlock,
    which PostgreSQL breaks and the write retries).
    """
    endpoint = None
    if not result.succeeded or claimed.endpoint.failing_since is not None:
        endpoint = store.get_endpoint(tx, claimed.endpoint.org_id, claimed.endpoint.id, lock=True)
        if endpoint is None:
            return  # the endpoint was deleted, with its log, while the attempt was under way
    delivery = store.lock_deliveries(tx, [claimed.delivery.id]).get(claimed.delivery.id)
    if delivery is None:
        return
    if delivery.attempts == 0 and delivery.chatroom_id is not None:
        # Its first attempt is made, whatever came of it: the chatroom's next event may go.
        # (The delivery's row lock, taken above, orders this against fan-out: `busy_lines`.)
        store.release_next(tx, [(delivery.endpoint_id, delivery.chatroom_id)])
    attempt = _attempt_of(delivery, result, attempted_at)
    if result.succeeded:
        store.finish_attempts(
            tx, [store.Finished(delivery, attempt, DeliveryStatus.SUCCEEDED, tx.now)]
        )
        store.mark_endpoints_healthy(tx, [delivery.endpoint_id])
        return
    assert endpoint is not None  # locked above, for every failure
    status, next_attempt_at = DeliveryStatus.FAILED, tx.now
    retry_after_ms = (
        None if result.retry_after_seconds is None else int(result.retry_after_seconds * 1000)
    )
    delay = rules.retry_delay_ms(delivery.attempts + 1, retry_after_ms=retry_after_ms, rng=rng)
    if not delivery.status.waiting:
        status = delivery.status  # failed meanwhile (its endpoint was disabled): stays so
    elif not result.gone and delay is not None:
        status, next_attempt_at = DeliveryStatus.PENDING, tx.now + delay
    store.finish_attempts(tx, [store.Finished(delivery, attempt, status, next_attempt_at)])
    if not endpoint.enabled:
        return
    failing_since = endpoint.failing_since if endpoint.failing_since is not None else attempted_at
    if result.gone:
        disable(tx, endpoint, DisabledReason.GONE)
    elif attempted_at - failing_since >= rules.DISABLE_AFTER_FAILING_MS:
        disable(tx, replace(endpoint, failing_since=failing_since), DisabledReason.FAILING)
    elif endpoint.failing_since is None:
        store.update_endpoint(tx, replace(endpoint, failing_since=failing_since))


def disable(tx: Tx, endpoint: WebhookEndpoint, reason: DisabledReason) -> WebhookEndpoint:
    """Stop sending: waiting deliveries fail (`recover` queues them again once fixed), and the
    organization is told with a `webhook_endpoint.disabled` event, unless a person did it."""
    disabled = replace(endpoint, enabled=False, disabled_reason=reason, updated_at=tx.now)
    store.update_endpoint(tx, disabled)
    store.fail_pending(tx, endpoint.id, f"endpoint disabled ({reason.value})")
    if reason is not DisabledReason.MANUAL:
        outbox.record(
            tx,
            endpoint.org_id,
            EventType.WEBHOOK_ENDPOINT_DISABLED,
            {"endpoint": webhook_endpoint_view(disabled), "reason": reason.value},
        )
    return disabled
