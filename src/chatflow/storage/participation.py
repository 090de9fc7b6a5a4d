"""Who takes part in which chatrooms, for many chatrooms at once (the live stream's audience)."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from chatflow.storage.database import Tx
from chatflow.storage.tables import participants


def participants_by_chatroom(tx: Tx, chatroom_ids: Collection[str]) -> dict[str, set[str]]:
    """The agent ids of each chatroom's participants now; every chatroom asked for has an entry,
    empty when nobody (or no such chatroom) is there."""
    found: dict[str, set[str]] = {chatroom_id: set() for chatroom_id in chatroom_ids}
    if not found:
        return found
    # An expanding IN: one cached statement whatever the number of chatrooms in a batch.
    query = sa.select(participants.c.chatroom_id, participants.c.agent_id).where(
        participants.c.chatroom_id.in_(list(found))
    )
    for row in tx.execute(query):
        found[row.chatroom_id].add(row.agent_id)
    return found
