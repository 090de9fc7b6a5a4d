"""The sandbox customer, for demos, tests and flow test runs."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Db
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import write
from chatflow.channels.sandbox import customer
from chatflow.clock import to_millis
from chatflow.domain.errors import ValidationError
from chatflow.views import MessageRead, message_view

router = APIRouter(
    route_class=CompiledRoute, prefix="/v1/sandbox", tags=["sandbox"], responses=PROBLEM_RESPONSES
)


def _timestamp(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(
            "timestamp must be an RFC 3339 time",
            errors=[{"pointer": "/timestamp", "message": "not a time"}],
        ) from exc
    if moment.tzinfo is None:
        raise ValidationError(
            "timestamp needs a time zone (Z or an offset)",
            errors=[{"pointer": "/timestamp", "message": "no time zone"}],
        )
    return to_millis(moment)


@router.post("/inbound", status_code=201, response_model=MessageRead)
async def customer_message(
    body: schemas.SandboxInbound, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Act as the customer of a sandbox chatroom: write `text`, or tap `button`.

    It goes through the same inbound path as WhatsApp and web chat: a free-flow message bumps and
    hands over; a tap on a template follows the flags it was sent with (R3, R4, R6, R8).
    """
    if (body.text is None) == (body.button is None):
        raise ValidationError(
            "Send either text or button",
            errors=[{"pointer": "/text", "message": "exactly one of text and button"}],
        )
    if body.chatroom_id is None and (body.channel_id is None or body.contact_id is None):
        raise ValidationError(
            "Name the chatroom, or the channel and contact of a customer who writes first",
            errors=[
                {"pointer": "/chatroom_id", "message": "required without channel_id and contact_id"}
            ],
        )
    timestamp = _timestamp(body.timestamp)
    tap = None if body.button is None else (body.button.message_id, body.button.index)
    return await write(
        request,
        db,
        actor,
        lambda tx: customer.do_customer_message(
            tx,
            actor,
            chatroom_id=body.chatroom_id,
            channel_id=body.channel_id,
            contact_id=body.contact_id,
            text=body.text,
            tap=tap,
            reply_to_message_id=body.reply_to_message_id,
            timestamp=timestamp,
        ),
        lambda result: (201, message_view(result.message)),
    )
