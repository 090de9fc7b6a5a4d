"""The event log (outbox): written in the transaction of the change it records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from chatflow.domain.models import ChatroomId, Event, EventId, OrganizationId
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import events


class current_txid(sa.sql.expression.FunctionElement[int]):  # noqa: N801 (a SQL function)
    """The writing transaction's id on PostgreSQL; 0 elsewhere."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(current_txid)
def _current_txid(element: current_txid, compiler: Any, **kw: Any) -> str:
    return "0"


@compiles(current_txid, "postgresql")
def _current_txid_postgresql(element: current_txid, compiler: Any, **kw: Any) -> str:
    return "pg_current_xact_id()::text::bigint"


class visible_horizon(sa.sql.expression.FunctionElement[int]):  # noqa: N801 (a SQL function)
    """Every transaction with a smaller id has ended (PostgreSQL): rows below it are final."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(visible_horizon)
def _visible_horizon(element: visible_horizon, compiler: Any, **kw: Any) -> str:
    return "1"


@compiles(visible_horizon, "postgresql")
def _visible_horizon_postgresql(element: visible_horizon, compiler: Any, **kw: Any) -> str:
    return "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


_INSERT = Query(
    events.insert().values(
        txid=current_txid(),
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
        txid=row.txid,
    )


def list_events(
    tx: Tx,
    org_id: str,
    *,
    after: tuple[int, int] | None,
    limit: int,
    types: list[str] | None = None,
    chatroom_id: str | None = None,
) -> list[Event]:
    """The organization's events after the cursor `(txid, position)`, in that order.

    On PostgreSQL, positions are taken at insert and transactions commit in any order, so a
    reader that went past position 101 could later miss 100. Reading in (txid, position) order,
    and only events of transactions older than the oldest one still running, every event a page
    returns is final and nothing can appear before the cursor afterwards. A long transaction
    holds readers back until it ends; it never makes them skip.
    """
    query = sa.select(events).where(events.c.org_id == org_id, events.c.txid < visible_horizon())
    if after is not None:
        query = query.where(sa.tuple_(events.c.txid, events.c.position) > sa.tuple_(*after))
    if types:
        query = query.where(events.c.type.in_(types))
    if chatroom_id is not None:
        query = query.where(events.c.chatroom_id == chatroom_id)
    rows = tx.execute(query.order_by(events.c.txid, events.c.position).limit(limit + 1)).all()
    return [_event(r) for r in rows]
