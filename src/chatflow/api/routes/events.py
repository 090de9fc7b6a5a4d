"""The event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Cursor, Db, Limit
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import page_response
from chatflow.services import events
from chatflow.views import event_view

router = APIRouter(
    route_class=CompiledRoute, prefix="/v1/events", tags=["events"], responses=PROBLEM_RESPONSES
)


@router.get("")
async def list_events(
    actor: CurrentActor,
    db: Db,
    type: Annotated[list[str] | None, Query(description="Only these event types.")] = None,
    chatroom_id: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Response:
    """The organization's events, oldest first; follow `next_cursor` to read on."""
    page = await db.read(
        lambda tx: events.list_events(
            tx, actor, cursor=cursor, limit=limit, types=type, chatroom_id=chatroom_id
        )
    )
    return page_response(page, event_view)
