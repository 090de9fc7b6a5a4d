"""Messages of a chatroom, ordered by id (ids are time-ordered)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatflow.domain.models import (
    ButtonTap,
    ChatroomId,
    Direction,
    Message,
    MessageFlags,
    MessageId,
    MessageKind,
    MessageStatus,
    OrganizationId,
    SenderType,
)
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, insert_row, param
from chatflow.storage.tables import messages


def _message(row: Any) -> Message:
    button = json.loads(row.button)
    return Message(
        id=MessageId(row.id),
        org_id=OrganizationId(row.org_id),
        chatroom_id=ChatroomId(row.chatroom_id),
        direction=Direction(row.direction),
        sender_type=SenderType(row.sender_type),
        sender_id=row.sender_id,
        kind=MessageKind(row.kind),
        text=row.text,
        template=json.loads(row.template),
        button=None if button is None else ButtonTap(**button),
        reply_to_message_id=row.reply_to_message_id,
        flags=MessageFlags(
            relay_response=bool(row.relay_response),
            bump=bool(row.bump),
            bump_response=bool(row.bump_response),
        ),
        status=MessageStatus(row.status),
        channel_message_id=row.channel_message_id,
        channel_timestamp=row.channel_timestamp,
        error=json.loads(row.error),
        created_at=row.created_at,
    )


_INSERT = insert_row(messages)


def insert_message(tx: Tx, message: Message) -> None:
    button = message.button
    tx.run(
        _INSERT,
        {
            "id": message.id,
            "org_id": message.org_id,
            "chatroom_id": message.chatroom_id,
            "direction": message.direction.value,
            "sender_type": message.sender_type.value,
            "sender_id": message.sender_id,
            "kind": message.kind.value,
            "text": message.text,
            "template": None if message.template is None else json.dumps(message.template),
            "button": None
            if button is None
            else json.dumps(
                {
                    "index": button.index,
                    "text": button.text,
                    "payload": button.payload,
                    "template_message_id": button.template_message_id,
                }
            ),
            "reply_to_message_id": message.reply_to_message_id,
            "relay_response": message.flags.relay_response,
            "bump": message.flags.bump,
            "bump_response": message.flags.bump_response,
            "status": message.status.value,
            "channel_message_id": message.channel_message_id,
            "channel_timestamp": message.channel_timestamp,
            "error": None if message.error is None else json.dumps(message.error),
            "created_at": message.created_at,
        },
    )


_get = sa.select(messages).where(
    messages.c.chatroom_id == param("chatroom_id"), messages.c.id == param("id")
)
_GET = Query(_get)


def get_message(tx: Tx, chatroom_id: str, message_id: str) -> Message | None:
    row = tx.run(_GET, {"chatroom_id": chatroom_id, "id": message_id}).first()
    return None if row is None else _message(row)


def list_messages(tx: Tx, chatroom_id: str, *, before: str | None, limit: int) -> list[Message]:
    """Newest first; `before` is the id of the last message of the previous page."""
    query = sa.select(messages).where(messages.c.chatroom_id == chatroom_id)
    if before is not None:
        query = query.where(messages.c.id < before)
    rows = tx.execute(query.order_by(messages.c.id.desc()).limit(limit + 1)).all()
    return [_message(r) for r in rows]


_EARLIER_INBOUND = Query(
    sa.select(messages.c.id)
    .where(
        messages.c.chatroom_id == param("chatroom_id"),
        messages.c.id < param("id"),
        messages.c.direction == "inbound",
    )
    .limit(1)
)


def has_earlier_inbound(tx: Tx, chatroom_id: str, message_id: str) -> bool:
    """Whether the customer wrote in the chatroom before this message."""
    found = tx.run(_EARLIER_INBOUND, {"chatroom_id": chatroom_id, "id": message_id}).first()
    return found is not None


_by_channel_id = sa.select(messages).where(
    messages.c.org_id == param("org_id"),
    messages.c.channel_message_id == param("channel_message_id"),
)
_BY_CHANNEL_ID = Query(_by_channel_id)


def find_by_channel_message_id(tx: Tx, org_id: str, channel_message_id: str) -> Message | None:
    row = tx.run(
        _BY_CHANNEL_ID, {"org_id": org_id, "channel_message_id": channel_message_id}
    ).first()
    return None if row is None else _message(row)


_BY_CHANNEL_ID_FOR_UPDATE = Query(_by_channel_id.with_for_update())
_GET_FOR_UPDATE = Query(_get.with_for_update())


def lock_by_channel_message_id(tx: Tx, org_id: str, channel_message_id: str) -> Message | None:
    """The message with this provider id, locked: status reports for it apply one at a time."""
    row = tx.run(
        _BY_CHANNEL_ID_FOR_UPDATE, {"org_id": org_id, "channel_message_id": channel_message_id}
    ).first()
    return None if row is None else _message(row)


def lock_message(tx: Tx, chatroom_id: str, message_id: str) -> Message | None:
    row = tx.run(_GET_FOR_UPDATE, {"chatroom_id": chatroom_id, "id": message_id}).first()
    return None if row is None else _message(row)


_UPDATE_DELIVERY = Query(
    messages.update()
    .where(messages.c.id == param("id"))
    .values(
        status=param("status"),
        channel_message_id=param("channel_message_id"),
        error=param("error"),
    )
)


def update_delivery(tx: Tx, message: Message) -> None:
    """Store `message`'s delivery progress: status, provider id, error."""
    tx.run(
        _UPDATE_DELIVERY,
        {
            "id": message.id,
            "status": message.status.value,
            "channel_message_id": message.channel_message_id,
            "error": None if message.error is None else json.dumps(message.error),
        },
    )
