"""Reading the event log."""

from __future__ import annotations

from chatflow.domain.access import Actor, check_administers
from chatflow.domain.models import Event
from chatflow.domain.paging import Page, decode_cursor, encode_cursor
from chatflow.storage import events as store
from chatflow.storage.database import Tx


def list_events(
    tx: Tx,
    actor: Actor,
    *,
    cursor: str | None,
    limit: int,
    types: list[str] | None,
    chatroom_id: str | None,
) -> Page[Event]:
    """Oldest first. The cursor always comes back, so a reader can poll for what comes next."""
    check_administers(actor)
    after = None
    if cursor:
        txid, position = decode_cursor("events", cursor, [int, int])
        after = (int(txid), int(position))
    rows = store.list_events(
        tx, actor.org_id, after=after, limit=limit, types=types, chatroom_id=chatroom_id
    )
    items = rows[:limit]
    last = items[-1].log_position if items else after
    return Page(items, None if last is None else encode_cursor("events", list(last)))
