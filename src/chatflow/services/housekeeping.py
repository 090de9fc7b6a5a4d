"""Periodic upkeep, run by `chatflow serve` (by default) and `chatflow worker`."""

from __future__ import annotations

from chatflow.services.chatrooms import do_close_idle
from chatflow.storage import idempotency
from chatflow.storage import webhooks as webhook_store
from chatflow.storage.database import Tx

IDEMPOTENCY_RETENTION_MILLIS = 72 * 60 * 60 * 1000
"""Stored responses are kept three days: a client retrying later sends a new request."""

DELIVERY_LOG_RETENTION_MILLIS = 30 * 24 * 60 * 60 * 1000
"""Finished webhook deliveries and their attempts are kept 30 days, as Stripe keeps its log."""

HOUSEKEEPING_SECONDS = 30.0


def do_housekeeping(tx: Tx) -> None:
    do_close_idle(tx)
    idempotency.prune(tx, tx.now - IDEMPOTENCY_RETENTION_MILLIS)
    webhook_store.prune(tx, finished_before=tx.now - DELIVERY_LOG_RETENTION_MILLIS, limit=5_000)
