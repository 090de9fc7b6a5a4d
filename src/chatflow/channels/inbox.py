"""Notifications pushed by channel providers (WhatsApp's webhook calls): stored as received,
answered at once, applied in the background.

`accept` is all a provider's request waits for: one insert. `run` applies stored notifications in
batches. Applying is pure database work, so a batch is taken and applied in one transaction: a
crash before its commit leaves the notifications pending, and they are applied exactly once.

A notification that fails rolls back alone: it is tried again later, and after `MAX_ATTEMPTS` it
is marked unprocessable and kept for an operator. A batch is first applied without savepoints
(on PostgreSQL each is two round trips); if one of its notifications fails, the batch is rolled
back and applied again with a savepoint around each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from chatflow.domain.models import Channel, ChannelType, JsonObject
from chatflow.ids import new_id
from chatflow.storage import channels as channel_store
from chatflow.storage import notifications as store
from chatflow.storage.database import Database, Tx, is_transient_database_error

log = logging.getLogger(__name__)

Apply = Callable[[Tx, Channel, bytes], JsonObject]
"""Applies one notification's body to the channel; returns what was done."""

MAX_ATTEMPTS = 5
RETRY_BASE_MS = 5_000


class _PartFailedError(Exception):
    """A notification of a batch applied without savepoints failed: roll the batch back."""


class Inbox:
    def __init__(
        self,
        database: Database,
        appliers: Mapping[ChannelType, Apply],
        *,
        batch_size: int = 25,
        poll_seconds: float = 0.25,
    ) -> None:
        self._database = database
        self._appliers = appliers
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._arrived = asyncio.Event()

    async def accept(self, channel: Channel, body: bytes) -> str:
        """Store a notification as received; it is applied after this returns."""
        notification_id = new_id("ntf")
        await self._database.write(
            lambda tx: store.insert_notification(
                tx, notification_id, channel.org_id, channel.id, body
            )
        )
        self._arrived.set()
        return notification_id

    async def apply_pending(self) -> int:
        """Apply one batch of pending notifications; returns how many were taken."""
        if not await self._database.read(store.any_pending):
            return 0
        try:
            return await self._database.write(lambda tx: self._apply_batch(tx, isolate=False))
        except _PartFailedError:
            return await self._database.write(lambda tx: self._apply_batch(tx, isolate=True))

    async def drain(self) -> int:
        """Apply until nothing is pending (tests, benchmarks)."""
        total = 0
        while taken := await self.apply_pending():
            total += taken
        return total

    async def run(self) -> None:
        """Until cancelled. Notifications accepted by this process wake it at once; those of
        other processes are found by polling."""
        while True:
            # Cleared before reading, so an arrival during the batch is not missed.
            self._arrived.clear()
            try:
                taken = await self.apply_pending()
            except Exception:
                log.exception("Applying channel notifications failed; retrying shortly")
                taken = 0
            if taken < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), self._poll_seconds)

    def _apply_batch(self, tx: Tx, *, isolate: bool) -> int:
        pending = store.take_pending(tx, limit=self._batch_size)
        channels: dict[str, Channel | None] = {}
        outcomes: list[store.Outcome] = []
        for notification in pending:
            if notification.channel_id not in channels:
                channels[notification.channel_id] = channel_store.get_channel(
                    tx, notification.org_id, notification.channel_id
                )
            channel = channels[notification.channel_id]
            apply = None if channel is None else self._appliers.get(channel.type)
            attempts = notification.attempts + 1
            if channel is None or apply is None:
                outcomes.append(
                    store.Outcome(
                        notification.id,
                        store.UNPROCESSABLE,
                        attempts,
                        {"error": "no channel to apply it to"},
                    )
                )
                continue
            try:
                with tx.savepoint() if isolate else contextlib.nullcontext():
                    outcome = apply(tx, channel, notification.body)
            except Exception as exc:
                if is_transient_database_error(exc):
                    raise  # a race or a lost connection: the whole batch is tried again
                if not isolate:
                    raise _PartFailedError from exc
                log.exception("Notification %s of channel %s failed", notification.id, channel.id)
                outcomes.append(
                    store.Outcome(
                        notification.id,
                        store.UNPROCESSABLE if attempts >= MAX_ATTEMPTS else store.PENDING,
                        attempts,
                        {"error": f"{type(exc).__name__}: {exc}"[:500]},
                        retry_at=tx.now + RETRY_BASE_MS * 2**attempts,
                    )
                )
                continue
            outcomes.append(store.Outcome(notification.id, store.PROCESSED, attempts, outcome))
        store.record_outcomes(tx, outcomes)
        return len(pending)
