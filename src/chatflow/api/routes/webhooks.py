"""Webhook endpoints, their delivery log, redelivery, recovery and the test ping."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Cursor, Db, Limit, RuntimeDep
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response, page_response, write
from chatflow.clock import to_millis
from chatflow.domain.models import DeliveryStatus
from chatflow.services import webhooks
from chatflow.views import (
    WebhookDeliveryRead,
    WebhookEndpointCreated,
    WebhookEndpointRead,
    WebhookPingResult,
    WebhookRecovery,
    webhook_delivery_view,
    webhook_endpoint_created_view,
    webhook_endpoint_view,
)

router = APIRouter(route_class=CompiledRoute, tags=["webhooks"], responses=PROBLEM_RESPONSES)
ENDPOINTS = "/v1/webhook-endpoints"


def _delivery(log: webhooks.DeliveryLog) -> WebhookDeliveryRead:
    return webhook_delivery_view(log.delivery, log.attempts)


@router.post(ENDPOINTS, status_code=201, response_model=WebhookEndpointCreated)
async def create_endpoint(
    body: schemas.WebhookEndpointCreate,
    request: Request,
    actor: CurrentActor,
    runtime: RuntimeDep,
) -> Response:
    """Register a URL to receive events, signed per Standard Webhooks. The answer carries the
    signing secret, shown this once. URLs that resolve into internal networks are refused."""
    await webhooks.check_url(runtime.url_guard, body.url)
    return await write(
        request,
        runtime.database,
        actor,
        lambda tx: webhooks.do_create_endpoint(
            tx,
            actor,
            url=body.url,
            description=body.description,
            event_types=body.event_types,
            enabled=body.enabled,
        ),
        lambda endpoint: (201, webhook_endpoint_created_view(endpoint)),
    )


@router.get(ENDPOINTS)
async def list_endpoints(
    actor: CurrentActor, db: Db, cursor: Cursor = None, limit: Limit = 20
) -> Response:
    page = await db.read(lambda tx: webhooks.list_endpoints(tx, actor, cursor=cursor, limit=limit))
    return page_response(page, webhook_endpoint_view)


@router.get(ENDPOINTS + "/{endpoint_id}", response_model=WebhookEndpointRead)
async def get_endpoint(endpoint_id: str, actor: CurrentActor, db: Db) -> Response:
    endpoint = await db.read(lambda tx: webhooks.access_endpoint(tx, actor, endpoint_id))
    return json_response(webhook_endpoint_view(endpoint))


@router.patch(ENDPOINTS + "/{endpoint_id}", response_model=WebhookEndpointRead)
async def update_endpoint(
    endpoint_id: str,
    body: schemas.WebhookEndpointUpdate,
    request: Request,
    actor: CurrentActor,
    runtime: RuntimeDep,
) -> Response:
    """Change the URL, description, event types, or enable/disable. Disabling fails what is
    waiting; enabling sends only new events (use `recover` for the rest)."""
    if body.url is not None:
        await webhooks.check_url(runtime.url_guard, body.url)
    return await write(
        request,
        runtime.database,
        actor,
        lambda tx: webhooks.do_update_endpoint(
            tx,
            actor,
            endpoint_id,
            url=body.url,
            description=body.description,
            event_types=body.event_types,
            enabled=body.enabled,
        ),
        lambda endpoint: (200, webhook_endpoint_view(endpoint)),
    )


@router.delete(ENDPOINTS + "/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, actor: CurrentActor, db: Db) -> Response:
    """Delete the endpoint and its delivery log; nothing more is sent to it."""
    await db.write(lambda tx: webhooks.do_delete_endpoint(tx, actor, endpoint_id))
    return Response(status_code=204)


@router.post(ENDPOINTS + "/{endpoint_id}/rotate-secret", response_model=WebhookEndpointCreated)
async def rotate_secret(
    endpoint_id: str, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """A new signing secret, shown this once. For a day, both the new and the old secret sign
    every request (`webhook-signature` carries both), so the receiver can switch at leisure."""
    return await write(
        request,
        db,
        actor,
        lambda tx: webhooks.do_rotate_secret(tx, actor, endpoint_id),
        lambda endpoint: (200, webhook_endpoint_created_view(endpoint)),
    )


@router.post(ENDPOINTS + "/{endpoint_id}/ping", response_model=WebhookPingResult)
async def ping_endpoint(endpoint_id: str, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """Send a signed `webhook.ping` now and report what the receiver answered. Not logged as a
    delivery; works on a disabled endpoint too, to test it before enabling it again."""
    endpoint = await runtime.database.read(
        lambda tx: webhooks.access_endpoint(tx, actor, endpoint_id)
    )
    result = await webhooks.ping(runtime.webhook_sender, endpoint, to_millis(runtime.clock.now()))
    return json_response(
        WebhookPingResult(
            succeeded=result.succeeded,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
    )


@router.get(ENDPOINTS + "/{endpoint_id}/deliveries")
async def list_deliveries(
    endpoint_id: str,
    actor: CurrentActor,
    db: Db,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    event_id: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Response:
    """The delivery log, newest first: every attempt with its time, status code, latency,
    error and the start of the answer."""
    page = await db.read(
        lambda tx: webhooks.list_deliveries(
            tx,
            actor,
            endpoint_id,
            cursor=cursor,
            limit=limit,
            status=None if status is None else DeliveryStatus(status),
            event_id=event_id,
        )
    )
    return page_response(page, _delivery)


@router.post(ENDPOINTS + "/{endpoint_id}/recover", status_code=202, response_model=WebhookRecovery)
async def recover(
    endpoint_id: str,
    body: schemas.WebhookRecover,
    request: Request,
    actor: CurrentActor,
    db: Db,
) -> Response:
    """Redeliver everything since a time: failed deliveries are queued again, and events the
    endpoint missed while disabled are delivered."""
    since = to_millis(body.since)
    return await write(
        request,
        db,
        actor,
        lambda tx: webhooks.do_recover(tx, actor, endpoint_id, since),
        lambda made: (202, WebhookRecovery(requeued=made.requeued, created=made.created)),
    )


@router.get("/v1/webhook-deliveries/{delivery_id}", response_model=WebhookDeliveryRead)
async def get_delivery(delivery_id: str, actor: CurrentActor, db: Db) -> Response:
    log = await db.read(lambda tx: webhooks.access_delivery(tx, actor, delivery_id))
    return json_response(_delivery(log))


@router.post(
    "/v1/webhook-deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=WebhookDeliveryRead,
)
async def redeliver(delivery_id: str, request: Request, actor: CurrentActor, db: Db) -> Response:
    """Send this delivery again now, with the same `webhook-id`."""
    return await write(
        request,
        db,
        actor,
        lambda tx: webhooks.do_redeliver(tx, actor, delivery_id),
        lambda log: (202, _delivery(log)),
    )
