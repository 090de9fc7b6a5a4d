"""The event log (outbox): written in the transaction of the change it records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from chatflow.domain.models import ChatroomId, Event, EventHead, EventId, OrganizationId
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import events


def _bigint_sql(name: str, *, default: str, postgresql: str) -> type[FunctionElement[int]]:
    """A SQL expression that renders as `postgresql` on PostgreSQL and `default` elsewhere."""
    function: type[FunctionElement[int]] = type(
        name, (FunctionElement,), {"type": sa.BigInteger(), "inherit_cache": True}
    )
    compiles(function)(lambda element, compiler, **kw: default)
    compiles(function, "postgresql")(lambda element, compiler, **kw: postgresql)
    return function


# The writing transaction's id (0 on SQLite, whose write transactions are serial).
current_txid = _bigint_sql(
    "current_txid", default="0", postgresql="pg_current_xact_id()::text::bigint"
)
# Every transaction of this database with a smaller id has ended: rows below it are final.
#
# The oldest transaction still running in the reader's own snapshot, not counting those known to
# run in another database of the same server (they cannot write here): a long transaction
# elsewhere on a shared server must not hold this log back. The in-progress ids come from the
# snapshot itself, so the answer agrees with what the reader's query sees; pg_stat_activity,
# read a moment later, only excludes ids, and an id it does not show (ended since, or hidden
# from this role) counts as this database's, which can only delay, never skip.
visible_horizon = _bigint_sql(
    "visible_horizon",
    default="1",
    postgresql="(SELECT coalesce(min(x::text::bigint), "
    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint) "
    "FROM pg_snapshot_xip(pg_current_snapshot()) AS x "
    "WHERE mod(x::text::bigint, 4294967296) NOT IN ("
    "SELECT a.backend_xid::text::bigint FROM pg_stat_activity AS a "
    "WHERE a.backend_xid IS NOT NULL AND a.datid IS DISTINCT FROM "
    "(SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())))",
)


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
        cause=param("cause"),
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
            "cause": None if e.cause is None else json.dumps(e.cause),
        }
        for e in batch
    ]
    tx.run_many(_INSERT, rows)


def event_of(row: Any) -> Event:
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
        cause=json.loads(row.cause),
    )


def _after(tx: Tx, after: tuple[int, int]) -> sa.ColumnElement[bool]:
    """Events after `(txid, position)`, as a condition an index range scan can use. SQLite's
    planner takes only the first column of a row-value comparison into its range, and every
    SQLite event has the same txid (0): there it is a range on position alone."""
    txid, position = after
    if tx.dialect == "sqlite":
        return sa.and_(events.c.txid == txid, events.c.position > position)
    return sa.tuple_(events.c.txid, events.c.position) > sa.tuple_(txid, position)


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
    query = sa.select(events).where(events.c.org_id == org_id)
    if tx.dialect != "sqlite":
        # On SQLite every event is final (txid 0, horizon 1), and stating so there made its
        # planner take the range on txid instead of the cursor's: the organization's index
        # no longer served the page, and a page after a cursor scanned every organization's
        # log from there.
        query = query.where(events.c.txid < visible_horizon())
    if after is not None:
        query = query.where(_after(tx, after))
    if types:
        query = query.where(events.c.type.in_(types))
    if chatroom_id is not None:
        query = query.where(events.c.chatroom_id == chatroom_id)
    rows = tx.execute(query.order_by(events.c.txid, events.c.position).limit(limit + 1)).all()
    return [event_of(r) for r in rows]


# See `_after`: the same condition, as each database's planner can seek it, with parameters.
_LOG_AFTER = {
    "sqlite": sa.and_(events.c.txid == param("txid"), events.c.position > param("position")),
    "postgresql": (
        sa.tuple_(events.c.txid, events.c.position) > sa.tuple_(param("txid"), param("position"))
    ),
}


def _log_read(*columns: sa.ColumnElement[Any] | sa.Table) -> dict[str, Query]:
    """The log after a position, in order, final events only, per dialect."""
    return {
        dialect: Query(
            sa.select(*columns)
            .where(events.c.txid < visible_horizon(), after)
            .order_by(events.c.txid, events.c.position)
            .limit(param("limit"))
        )
        for dialect, after in _LOG_AFTER.items()
    }


_READ_LOG = _log_read(events)
_READ_LOG_HEADS = _log_read(
    events.c.org_id,
    events.c.type,
    events.c.chatroom_id,
    events.c.created_at,
    events.c.position,
    events.c.txid,
)


def read_log_heads(tx: Tx, *, after: tuple[int, int], limit: int) -> list[EventHead]:
    """What `read_log` would return, without the payloads: for deciding whether to read it."""
    params = {"txid": after[0], "position": after[1], "limit": limit}
    return [
        EventHead(
            org_id=OrganizationId(r.org_id),
            type=r.type,
            chatroom_id=None if r.chatroom_id is None else ChatroomId(r.chatroom_id),
            created_at=r.created_at,
            position=r.position,
            txid=r.txid,
        )
        for r in tx.run(_READ_LOG_HEADS[tx.dialect], params)
    ]


def read_log(tx: Tx, *, after: tuple[int, int], limit: int) -> list[Event]:
    """Every organization's events after `(txid, position)`, in that order, final ones only (see
    `list_events`): what the consumers of the whole log (fan-out, live stream) read."""
    rows = tx.run(_READ_LOG[tx.dialect], {"txid": after[0], "position": after[1], "limit": limit})
    return [event_of(r) for r in rows]


def log_end(tx: Tx) -> tuple[int, int]:
    """The position of the newest final event: a consumer starting now begins there."""
    query = (
        sa.select(events.c.txid, events.c.position)
        .where(events.c.txid < visible_horizon())
        .order_by(events.c.txid.desc(), events.c.position.desc())
        .limit(1)
    )
    row = tx.execute(query).first()
    return (0, 0) if row is None else (int(row.txid), int(row.position))


_POSITION = Query(sa.select(events.c.txid, events.c.position).where(events.c.id == param("id")))


def position_of(tx: Tx, event_id: str) -> tuple[int, int] | None:
    """Where an event stands in the log, in the order consumers read it."""
    row = tx.run(_POSITION, {"id": event_id}).first()
    return None if row is None else (int(row.txid), int(row.position))
