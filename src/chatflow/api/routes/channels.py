"""Channels."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Cursor, Db, Limit, RuntimeDep
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response, page_response, write
from chatflow.domain.models import ChannelType
from chatflow.services import channels
from chatflow.views import ChannelRead, channel_view

router = APIRouter(
    route_class=CompiledRoute, prefix="/v1/channels", tags=["channels"], responses=PROBLEM_RESPONSES
)


@router.post("", status_code=201, response_model=ChannelRead)
async def create_channel(
    body: schemas.ChannelCreate,
    request: Request,
    actor: CurrentActor,
    db: Db,
    runtime: RuntimeDep,
) -> Response:
    channel_type = ChannelType(body.type)
    return await write(
        request,
        db,
        actor,
        lambda tx: channels.do_create_channel(
            tx,
            actor,
            runtime.channel_rules(channel_type),
            type=channel_type,
            name=body.name,
            customer_window=body.customer_window,
            config=body.config,
        ),
        lambda channel: (201, channel_view(channel)),
    )


@router.get("")
async def list_channels(
    actor: CurrentActor, db: Db, cursor: Cursor = None, limit: Limit = 20
) -> Response:
    page = await db.read(lambda tx: channels.list_channels(tx, actor, cursor=cursor, limit=limit))
    return page_response(page, channel_view)


@router.get("/{channel_id}", response_model=ChannelRead)
async def get_channel(channel_id: str, actor: CurrentActor, db: Db) -> Response:
    return json_response(
        channel_view(await db.read(lambda tx: channels.access_channel(tx, actor, channel_id)))
    )


@router.patch("/{channel_id}", response_model=ChannelRead)
async def update_channel(
    channel_id: str,
    body: schemas.ChannelUpdate,
    request: Request,
    actor: CurrentActor,
    db: Db,
    runtime: RuntimeDep,
) -> Response:
    response = await write(
        request,
        db,
        actor,
        lambda tx: channels.do_update_channel(
            tx,
            actor,
            runtime.channel_rules,
            channel_id,
            name=body.name,
            customer_window=body.customer_window,
            config=body.config,
        ),
        lambda channel: (200, channel_view(channel)),
    )
    # New secrets take effect at once for the provider's calls to this process.
    runtime.provider_channels.forget(channel_id)
    return response
