"""The composition root: the only place that builds things and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from chatflow.api import problems
from chatflow.api.deps import Runtime
from chatflow.api.route_index import RouteIndex
from chatflow.api.routes import (
    accounts,
    channels,
    chatrooms,
    contacts,
    events,
    flows,
    stream,
    templates,
    webhooks,
)
from chatflow.background import run_background, webhook_sender
from chatflow.channels.registry import KINDS, rules_of
from chatflow.channels.work import channel_context
from chatflow.clock import Clock, SystemClock
from chatflow.config import Settings
from chatflow.events.bus import create_bus
from chatflow.live.hub import StreamHub
from chatflow.services.authenticator import Authenticator
from chatflow.services.provider_channels import ProviderChannels
from chatflow.storage.database import Database

log = logging.getLogger(__name__)

DESCRIPTION = """
chatflow is a self-hosted business-chat platform: contacts, chatrooms, messages and WhatsApp-shaped
templates, with the rules of "sending messages via automation" (bump, relay, assign on handover).

* Authenticate with `Authorization: Bearer <API key or session token>`.
* Errors are RFC 9457 `application/problem+json` with a stable `code`.
* Lists take `limit` and `cursor` and return `{"data": [...], "next_cursor": ...}`.
* POSTs accept `Idempotency-Key`: a retry with the same key and body replays the first response.
"""


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    database: Database | None = None,
) -> FastAPI:
    """Build the app. A `database` passed in is started and closed by its owner, not here."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    owns_database = database is None
    db = database or Database(settings.database_url, clock)
    sender = webhook_sender(settings, clock)
    bus = create_bus(settings.redis_url)
    runtime = Runtime(
        settings=settings,
        clock=clock,
        database=db,
        authenticator=Authenticator(db, settings.auth_cache_seconds),
        bus=bus,
        url_guard=sender.guard,
        webhook_sender=sender,
        hub=StreamHub(
            db,
            bus,
            poll_seconds=settings.stream_poll_seconds,
            max_pending=settings.stream_max_pending,
        ),
        channel_rules=rules_of,
        provider_channels=ProviderChannels(db, settings.auth_cache_seconds),
    )
    db.on_commit(runtime.bus.announce)
    channel_work = channel_context(settings, clock, db, runtime.bus)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owns_database:
            db.start()
        await runtime.bus.start()
        await runtime.hub.start()
        tasks = []
        if settings.background_work:
            tasks.append(
                asyncio.create_task(
                    run_background(
                        settings, db, runtime.bus, runtime.webhook_sender, clock, channel_work
                    )
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.webhook_sender.aclose()
            await runtime.hub.close()
            await runtime.bus.close()
            if owns_database:
                db.close()

    app = FastAPI(
        title="chatflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry checks for configured providers on every request;
        # chatflow configures none, so the check is only a cost.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    app.state.channels = channel_work
    problems.install(app)
    for module in (
        accounts,
        contacts,
        channels,
        chatrooms,
        templates,
        events,
        webhooks,
        flows,
        stream,
    ):
        # The routes themselves, not an included router: FastAPI matches included routers through
        # several layers of scope bookkeeping, a tenth of a request's time here.
        app.router.routes.extend(module.router.routes)
    for kind in KINDS.values():
        app.router.routes.extend(kind.routes)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.router.routes.insert(0, RouteIndex(app.router.routes))
    return app
