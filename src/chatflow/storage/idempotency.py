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


def prune(tx: Tx, older_than: int) -> int:
    result = tx.execute(idempotency_keys.delete().where(idempotency_keys.c.created_at < older_than))
    return int(result.rowcount)
