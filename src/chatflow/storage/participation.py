"""Who is in which chatrooms, for many chatrooms at once (the live stream's audience)."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from chatflow.storage.database import Tx
from chatflow.storage.tables import chatrooms, participants


def customer_key(contact_id: str, channel_id: str) -> str:
    """How the live stream names a chatroom's customer among its audience: agent ids (`ag_…`)
    never contain `@`."""
    return f"{contact_id}@{channel_id}"


def audience_by_chatroom(tx: Tx, chatroom_ids: Collection[str]) -> dict[str, set[str]]:
    """Who is in each chatroom now: its participants' agent ids and its customer (as
    `customer_key`), in one statement. Every chatroom asked for has an entry."""
    found: dict[str, set[str]] = {chatroom_id: set() for chatroom_id in chatroom_ids}
    if not found:
        return found
    ids = list(found)
    members = sa.select(
        participants.c.chatroom_id,
        participants.c.agent_id.label("member"),
        sa.null().label("channel_id"),
    ).where(participants.c.chatroom_id.in_(ids))
    customers = sa.select(
        chatrooms.c.id.label("chatroom_id"),
        chatrooms.c.contact_id.label("member"),
        chatrooms.c.channel_id,
    ).where(chatrooms.c.id.in_(ids))
    for row in tx.execute(sa.union_all(members, customers)):
        member = row.member if row.channel_id is None else customer_key(row.member, row.channel_id)
        found[row.chatroom_id].add(member)
    return found
