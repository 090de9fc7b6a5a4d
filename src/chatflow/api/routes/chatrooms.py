"""Chatrooms, their messages and template messages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Cursor, Db, Limit
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response, page_response, write
from chatflow.domain.errors import ValidationError
from chatflow.domain.models import ChatroomStatus, MessageFlags
from chatflow.domain.templates import TemplateVariables
from chatflow.services import chatrooms, messages
from chatflow.views import (
    ChatroomCreated,
    ChatroomRead,
    MessageRead,
    chatroom_created_view,
    chatroom_list_entry_view,
    chatroom_view,
    message_view,
)

router = APIRouter(
    route_class=CompiledRoute,
    prefix="/v1/chatrooms",
    tags=["chatrooms"],
    responses=PROBLEM_RESPONSES,
)


@router.post(
    "",
    status_code=201,
    response_model=ChatroomCreated,
    responses={
        200: {
            "description": "The contact's open chatroom on this channel, unchanged (R2)",
            "model": ChatroomCreated,
        }
    },
)
async def create_chatroom(
    body: schemas.ChatroomCreate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Create a chatroom for a contact on a channel (R1, R2, R8).

    If the contact already has an open chatroom on the channel, that one is returned unchanged
    with `created: false` and status 200.
    """
    return await write(
        request,
        db,
        actor,
        lambda tx: chatrooms.do_create_chatroom(
            tx,
            actor,
            contact_id=body.contact_id,
            channel_id=body.channel_id,
            participant_ids=body.participants,
            assign_on_handover=body.assign_on_handover,
        ),
        lambda made: (201 if made[1] else 200, chatroom_created_view(*made)),
    )


@router.get("")
async def list_chatrooms(
    actor: CurrentActor,
    db: Db,
    agent_id: Annotated[
        str | None,
        Query(
            max_length=40,
            description="The agent whose list to read, in bump order (R3). "
            "Agents read their own list; without it, admins and API keys read the whole "
            "organization's chatrooms, most recently bumped first.",
        ),
    ] = None,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Response:
    """A chatroom list, newest order key first, paged by cursor."""
    target = agent_id if agent_id is not None else actor.agent_id
    if target is not None and (agent_id is not None or not actor.sees_whole_organization):
        if status is not None:
            raise ValidationError(
                "An agent's list is in bump order and is not filtered by status",
                errors=[{"pointer": "query:status", "message": "not with an agent's list"}],
            )
        page = await db.read(
            lambda tx: chatrooms.list_for_agent(tx, actor, target, cursor=cursor, limit=limit)
        )
        return page_response(page, chatroom_list_entry_view)
    org_page = await db.read(
        lambda tx: chatrooms.list_for_organization(
            tx,
            actor,
            cursor=cursor,
            limit=limit,
            status=None if status is None else ChatroomStatus(status),
        )
    )
    return page_response(org_page, chatroom_view)


@router.get("/{chatroom_id}", response_model=ChatroomRead)
async def get_chatroom(chatroom_id: str, actor: CurrentActor, db: Db) -> Response:
    return json_response(
        chatroom_view(await db.read(lambda tx: chatrooms.access_chatroom(tx, actor, chatroom_id)))
    )


@router.post("/{chatroom_id}/reassign", response_model=ChatroomRead)
async def reassign(
    chatroom_id: str, body: schemas.ReassignRequest, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """R9: set the chatroom's agents; any pending assign-on-handover is discarded."""
    return await write(
        request,
        db,
        actor,
        lambda tx: chatrooms.do_reassign(tx, actor, chatroom_id, body.agent_ids),
        lambda chatroom: (200, chatroom_view(chatroom)),
    )


@router.post("/{chatroom_id}/read", response_model=ChatroomRead)
async def mark_read(
    chatroom_id: str,
    request: Request,
    actor: CurrentActor,
    db: Db,
    body: schemas.MarkReadRequest | None = None,
) -> Response:
    """Reset an agent's unread count for the chatroom."""
    agent_id = None if body is None else body.agent_id
    return await write(
        request,
        db,
        actor,
        lambda tx: chatrooms.do_mark_read(tx, actor, chatroom_id, agent_id),
        lambda chatroom: (200, chatroom_view(chatroom)),
    )


@router.post("/{chatroom_id}/close", response_model=ChatroomRead)
async def close(chatroom_id: str, request: Request, actor: CurrentActor, db: Db) -> Response:
    return await write(
        request,
        db,
        actor,
        lambda tx: chatrooms.do_close(tx, actor, chatroom_id),
        lambda chatroom: (200, chatroom_view(chatroom)),
    )


@router.post("/{chatroom_id}/reopen", response_model=ChatroomRead)
async def reopen(chatroom_id: str, request: Request, actor: CurrentActor, db: Db) -> Response:
    """Reopen a closed chatroom, unless the contact has another open one on the channel (R2)."""
    return await write(
        request,
        db,
        actor,
        lambda tx: chatrooms.do_reopen(tx, actor, chatroom_id),
        lambda chatroom: (200, chatroom_view(chatroom)),
    )


@router.post(
    "/{chatroom_id}/messages", status_code=201, response_model=MessageRead, tags=["messages"]
)
async def send_message(
    chatroom_id: str, body: schemas.MessageCreate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Send a free-form text message (R1). It bumps the chatroom (R3).

    On a channel with the 24-hour window (WhatsApp, the sandbox by default), this is refused with
    409 `customer_window_closed` unless the customer wrote in the last 24 hours (R4).
    """
    return await write(
        request,
        db,
        actor,
        lambda tx: messages.do_send_message(
            tx, actor, chatroom_id, text=body.text, as_agent_id=body.as_agent_id
        ),
        lambda message: (201, message_view(message)),
    )


@router.get("/{chatroom_id}/messages", tags=["messages"])
async def list_messages(
    chatroom_id: str, actor: CurrentActor, db: Db, cursor: Cursor = None, limit: Limit = 20
) -> Response:
    """Newest first."""
    page = await db.read(
        lambda tx: messages.list_messages(tx, actor, chatroom_id, cursor=cursor, limit=limit)
    )
    return page_response(page, message_view)


@router.get("/{chatroom_id}/messages/{message_id}", response_model=MessageRead, tags=["messages"])
async def get_message(chatroom_id: str, message_id: str, actor: CurrentActor, db: Db) -> Response:
    return json_response(
        message_view(
            await db.read(lambda tx: messages.access_message(tx, actor, chatroom_id, message_id))
        )
    )


def _variables(body: schemas.TemplateVariablesBody) -> TemplateVariables:
    buttons: dict[int, tuple[str, ...]] = {}
    for key, values in body.buttons.items():
        if not key.isdigit():
            raise ValidationError(
                "Button variables are keyed by the button's index",
                errors=[{"pointer": f"/variables/buttons/{key}", "message": "not an index"}],
            )
        buttons[int(key)] = tuple(values)
    return TemplateVariables(header=tuple(body.header), body=tuple(body.body), buttons=buttons)


@router.post(
    "/{chatroom_id}/template-messages",
    status_code=201,
    response_model=MessageRead,
    tags=["messages"],
)
async def send_template_message(
    chatroom_id: str,
    body: schemas.TemplateMessageCreate,
    request: Request,
    actor: CurrentActor,
    db: Db,
    relay_response: Annotated[
        bool,
        Query(
            description="R6: relay taps on this message's buttons to the organization's webhook "
            "as `template.response` (and do not hand over on them)."
        ),
    ] = False,
    bump: Annotated[
        bool, Query(description="R3: false sends silently, without bumping the chatroom.")
    ] = True,
    bump_response: Annotated[
        bool, Query(description="R3: false makes the customer's taps on this message silent.")
    ] = True,
) -> Response:
    """Send Template Message (R5): an APPROVED template, to an opted-in contact, at any time.

    The three flags are recorded on the message and decide what the customer's taps do.
    """
    variables = _variables(body.variables)
    flags = MessageFlags(relay_response=relay_response, bump=bump, bump_response=bump_response)
    return await write(
        request,
        db,
        actor,
        lambda tx: messages.do_send_template(
            tx,
            actor,
            chatroom_id,
            name=body.template,
            language=body.language,
            variables=variables,
            flags=flags,
            as_agent_id=body.as_agent_id,
        ),
        lambda message: (201, message_view(message)),
    )
