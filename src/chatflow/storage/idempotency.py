"""Stored responses of POSTs made with an `Idempotency-Key`, scoped to the organization."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import idempotency_keys


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status_code: int
    body: str


_GET = Query(
    sa.select(idempotency_keys).where(
        idempotency_keys.c.org_id == param("org_id"), idempotency_keys.c.key == param("key")
    )
)
_INSERT = Query(
    idempotency_keys.insert().values(
        org_id=param("org_id"),
        key=param("key"),
        fingerprint=param("fingerprint"),
        status_code=param("status_code"),
        body=param("body"),
        created_at=param("created_at"),
    )
)


def lock_key(tx: Tx, org_id: str, key: str) -> None:
    """Serialize requests that carry the same key, until this transaction ends.

    On PostgreSQL two requests with one key could otherwise both find nothing stored and both run
    the use case; the second now waits, then finds the first's response. SQLite runs one write
    at a time, so there is nothing to do.
    """
    if tx.dialect == "postgresql":
        tx.conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtextextended(%(lock)s, 0))",
            {"lock": f"idempotency\n{org_id}\n{key}"},
        )


def get_response(tx: Tx, org_id: str, key: str) -> StoredResponse | None:
    row = tx.run(_GET, {"org_id": org_id, "key": key}).first()
    return None if row is None else StoredResponse(row.fingerprint, row.status_code, row.body)


def store_response(
    tx: Tx, org_id: str, key: str, fingerprint: str, status_code: int, body: str
) -> None:
    tx.run(
        _INSERT,
        {
            "org_id": org_id,
            "key": key,
            "fingerprint": fingerprint,
            "status_code": status_code,
            "body": body,
            "created_at": tx.now,
        },
    )


def prune(tx: Tx, older_than: int, limit: int = 1_000) -> int:
    """Forget stored responses made before `older_than`, at most `limit` of them a call."""
    oldest = (
        sa.select(idempotency_keys.c.org_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < older_than)
        .order_by(idempotency_keys.c.created_at)
        .limit(limit)
    )
    result = tx.execute(
        idempotency_keys.delete().where(
            sa.tuple_(idempotency_keys.c.org_id, idempotency_keys.c.key).in_(oldest)
        )
    )
    return int(result.rowcount)
