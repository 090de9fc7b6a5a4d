"""Web chat: channels found by their public key, and visitors.

A visitor is a web-chat customer's browser: a contact of the organization and a token the page
keeps. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from chatflow.domain.models import Channel, ChannelType, ContactId, OrganizationId
from chatflow.storage import channels as channel_store
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import chatrooms, webchat_visitors


@dataclass(frozen=True, slots=True)
class VisitorRow:
    id: str
    org_id: OrganizationId
    channel_id: str
    contact_id: ContactId
    created_at: int
    last_seen_at: int


def find_channel_by_key(tx: Tx, key: str) -> Channel | None:
    """The web-chat channel whose public `key` this is (an indexed column of channels)."""
    channel = channel_store.get_channel_by_public_key(tx, key)
    return channel if channel is not None and channel.type is ChannelType.WEBCHAT else None


_INSERT_VISITOR = Query(
    webchat_visitors.insert().values({c.name: param(c.name) for c in webchat_visitors.c})
)


def insert_visitor(tx: Tx, visitor: VisitorRow, token_hash: str) -> None:
    tx.run(
        _INSERT_VISITOR,
        {
            "id": visitor.id,
            "org_id": visitor.org_id,
            "channel_id": visitor.channel_id,
            "contact_id": visitor.contact_id,
            "token_hash": token_hash,
            "created_at": visitor.created_at,
            "last_seen_at": visitor.last_seen_at,
        },
    )


_BY_TOKEN = Query(
    sa.select(webchat_visitors).where(webchat_visitors.c.token_hash == param("token_hash"))
)


def get_visitor_by_token_hash(tx: Tx, token_hash: str) -> VisitorRow | None:
    row = tx.run(_BY_TOKEN, {"token_hash": token_hash}).first()
    if row is None:
        return None
    return VisitorRow(
        id=row.id,
        org_id=OrganizationId(row.org_id),
        channel_id=row.channel_id,
        contact_id=ContactId(row.contact_id),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


_TOUCH = Query(
    webchat_visitors.update()
    .where(webchat_visitors.c.id == param("id"))
    .values(last_seen_at=param("now"))
)


def touch_visitor(tx: Tx, visitor_id: str) -> None:
    tx.run(_TOUCH, {"id": visitor_id, "now": tx.now})


def visitor_chatroom_ids(tx: Tx, contact_id: str, channel_id: str) -> list[str]:
    """The chatrooms of this contact on this channel, oldest first (usually one, per R2)."""
    rows = tx.execute(
        sa.select(chatrooms.c.id)
        .where(chatrooms.c.contact_id == contact_id, chatrooms.c.channel_id == channel_id)
        .order_by(chatrooms.c.created_at, chatrooms.c.id)
    )
    return [row.id for row in rows]
