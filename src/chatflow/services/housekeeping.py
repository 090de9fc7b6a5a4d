"""Periodic upkeep, run by `chatflow serve` (by default) and `chatflow worker`."""

from __future__ import annotations

from chatflow.services.chatrooms import do_close_idle
from chatflow.storage import flows as flow_store
from chatflow.storage import idempotency
from chatflow.storage import notifications as notification_store
from chatflow.storage import outbound as outbound_store
from chatflow.storage import webhooks as webhook_store
from chatflow.storage.database import Tx

IDEMPOTENCY_RETENTION_MILLIS = 72 * 60 * 60 * 1000
"""Stored responses are kept three days: a client retrying later sends a new request."""

DELIVERY_LOG_RETENTION_MILLIS = 30 * 24 * 60 * 60 * 1000
"""Finished webhook deliveries and their attempts are kept 30 days, as Stripe keeps its log."""

NOTIFICATION_RETENTION_MILLIS = 7 * 24 * 60 * 60 * 1000
"""Applied provider notifications are kept a week, to answer "what did Meta send us?"."""

EARLY_STATUS_RETENTION_MILLIS = 24 * 60 * 60 * 1000
"""A status report for a message id still unknown after a day is for no message of ours."""

FLOW_RUN_RETENTION_MILLIS = 14 * 24 * 60 * 60 * 1000
"""The default of `Settings.flow_run_retention_days`."""

HOUSEKEEPING_SECONDS = 30.0


def do_housekeeping(tx: Tx, *, flow_run_retention_ms: int = FLOW_RUN_RETENTION_MILLIS) -> None:
    do_close_idle(tx)
    idempotency.prune(tx, tx.now - IDEMPOTENCY_RETENTION_MILLIS)
    webhook_store.prune(tx, finished_before=tx.now - DELIVERY_LOG_RETENTION_MILLIS, limit=5_000)
    notification_store.prune(
        tx, processed_before=tx.now - NOTIFICATION_RETENTION_MILLIS, limit=5_000
    )
    outbound_store.prune_early_statuses(tx, received_before=tx.now - EARLY_STATUS_RETENTION_MILLIS)
    flow_store.prune_runs(tx, ended_before=tx.now - flow_run_retention_ms, limit=5_000)
