"""Periodic upkeep, run by `chatflow serve` (by default) and `chatflow worker`."""

from __future__ import annotations

from chatflow.services.chatrooms import do_close_idle
from chatflow.storage import idempotency
from chatflow.storage.database import Tx

IDEMPOTENCY_RETENTION_MILLIS = 72 * 60 * 60 * 1000
"""Stored responses are kept three days: a client retrying later sends a new request."""

HOUSEKEEPING_SECONDS = 30.0


def do_housekeeping(tx: Tx) -> None:
    do_close_idle(tx)
    idempotency.prune(tx, tx.now - IDEMPOTENCY_RETENTION_MILLIS)
