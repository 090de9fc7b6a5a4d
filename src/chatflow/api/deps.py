"""What routes depend on, as `Annotated` aliases: the database, the caller, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from chatflow.clock import Clock
from chatflow.config import Settings
from chatflow.domain.access import Actor
from chatflow.domain.paging import MAX_LIMIT
from chatflow.events.bus import EventBus
from chatflow.live.hub import StreamHub
from chatflow.services.authenticator import Authenticator
from chatflow.services.channels import ChannelRulebook
from chatflow.services.provider_channels import ProviderChannels
from chatflow.storage.database import Database
from chatflow.webhooks.guard import UrlGuard
from chatflow.webhooks.sender import WebhookSender

SESSION_COOKIE = "chatflow_session"


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything the composition root built that requests need."""

    settings: Settings
    clock: Clock
    database: Database
    authenticator: Authenticator
    bus: EventBus
    url_guard: UrlGuard
    webhook_sender: WebhookSender
    hub: StreamHub
    channel_rules: ChannelRulebook
    provider_channels: ProviderChannels


# Every dependency is `async def`: FastAPI runs plain functions in a thread pool, a thread hop
# per request per dependency.
async def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return request.cookies.get(SESSION_COOKIE)


async def current_actor(request: Request) -> Actor:
    runtime: Runtime = request.app.state.runtime
    return await runtime.authenticator.authenticate(bearer_token(request))


async def database(request: Request) -> Database:
    return request.app.state.runtime.database  # type: ignore[no-any-return]


CurrentActor = Annotated[Actor, Depends(current_actor)]
Db = Annotated[Database, Depends(database)]
RuntimeDep = Annotated[Runtime, Depends(runtime)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1–{MAX_LIMIT}.")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page; omit for the first."),
]
