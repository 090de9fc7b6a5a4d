"""Where each consumer of the whole event log has got to, moved in the transaction that
consumes the events, so a batch is consumed exactly once however processes crash."""

from __future__ import annotations

import sqlalchemy as sa

from chatflow.storage.database import Tx
from chatflow.storage.tables import consumer_cursors


def lock_cursor(tx: Tx, name: str) -> tuple[int, int]:
    """The consumer's position, held until this transaction ends: two processes consuming the
    same log take turns (on SQLite the write transaction itself takes turns)."""
    if tx.dialect == "postgresql":
        tx.conn.exec_driver_sql(
            "INSERT INTO consumer_cursors (name, txid, position, updated_at) "
            "VALUES (%(name)s, 0, 0, %(now)s) ON CONFLICT (name) DO NOTHING",
            {"name": name, "now": tx.now},
        )
        query = sa.select(consumer_cursors).where(consumer_cursors.c.name == name)
        locked = tx.execute(query.with_for_update()).one()
        return (int(locked.txid), int(locked.position))
    row = tx.execute(sa.select(consumer_cursors).where(consumer_cursors.c.name == name)).first()
    if row is None:
        tx.execute(
            consumer_cursors.insert().values(name=name, txid=0, position=0, updated_at=tx.now)
        )
        return (0, 0)
    return (int(row.txid), int(row.position))


def move_cursor(tx: Tx, name: str, position: tuple[int, int]) -> None:
    tx.execute(
        consumer_cursors.update()
        .where(consumer_cursors.c.name == name)
        .values(txid=position[0], position=position[1], updated_at=tx.now)
    )


def read_cursor(tx: Tx, name: str) -> tuple[int, int]:
    row = tx.execute(sa.select(consumer_cursors).where(consumer_cursors.c.name == name)).first()
    return (0, 0) if row is None else (int(row.txid), int(row.position))
