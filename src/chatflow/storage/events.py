"""The event log (outbox): written in the transaction of the change it records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatflow.domain.models import ChatroomId, Event, EventId, OrganizationId
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import events

_INSERT = Query(
    events.insert().values(
        id=param("id"),
        org_id=param("org_id"),
        type=param("type"),
        chatroom_id=param("chatroom_id"),
        seq=param("seq"),
        data=param("data"),
        created_at=param("created_at"),
    )
)


def insert_events(tx: Tx, batch: list[Event]) -> None:
    if not batch:
        return
    rows = [
        {
            "id": e.id,
            "org_id": e.org_id,
            "type": e.type,
            "chatroom_id": e.chatroom_id,
            "seq": e.seq,
            "data": json.dumps(e.data),
            "created_at": e.created_at,
        }
        for e in batch
    ]
    _INSERT.run_many(tx.conn, rows)


def _event(row: Any) -> Event:
    return Event(
        id=EventId(row.id),
        org_id=OrganizationId(row.org_id),
        type=row.type,
        chatroom_id=None if row.chatroom_id is None else ChatroomId(row.chatroom_id),
        seq=row.seq,
        data=json.loads(row.data),
        created_at=row.created_at,
        position=row.position,
    )


def list_events(
    tx: Tx,
    org_id: str,
    *,
    after: int | None,
    limit: int,
    types: list[str] | None = None,
    chatroom_id: str | None = None,
) -> list[Event]:
    query = sa.select(events).where(events.c.org_id == org_id)
    if after is not None:
        query = query.where(events.c.position > after)
    if types:
        query = query.where(events.c.type.in_(types))
    if chatroom_id is not None:
        query = query.where(events.c.chatroom_id == chatroom_id)
    rows = tx.execute(query.order_by(events.c.position).limit(limit + 1)).all()
    return [_event(r) for r in rows]
