"""Notifications pushed by channel providers (WhatsApp's webhook calls): stored as received,
answered at once, applied in the background.

`accept` is all a provider's request waits for: one insert. `run` applies stored notifications in
batches, each in its own savepoint, so one that fails rolls back alone; it is tried again later,
and after `MAX_ATTEMPTS` it is marked unprocessable and kept for an operator. Applying is pure
database work, so a batch is taken and applied in one transaction: a crash before its commit
leaves the notifications pending, and they are applied exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from sqlalchemy.exc import IntegrityError, OperationalError

from chatflow.domain.models import Channel, ChannelType, JsonObject
from chatflow.ids import new_id
from chatflow.storage import channels as channel_store
from chatflow.storage import notifications as store
from chatflow.storage.database import Database, Tx

log = logging.getLogger(__name__)

Apply = Callable[[Tx, Channel, bytes], JsonObject]
"""Applies one notification's body to the channel; returns what was done."""

MAX_ATTEMPTS = 5
RETRY_BASE_MS = 5_000


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
        return await self._database.write(self._apply_batch)

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

    def _apply_batch(self, tx: Tx) -> int:
        pending = store.take_pending(tx, limit=self._batch_size)
        channels: dict[str, Channel | None] = {}
        for notification in pending:
            if notification.channel_id not in channels:
                channels[notification.channel_id] = channel_store.get_channel(
                    tx, notification.org_id, notification.channel_id
                )
            channel = channels[notification.channel_id]
            apply = None if channel is None else self._appliers.get(channel.type)
            attempts = notification.attempts + 1
            if channel is None or apply is None:
                store.record_outcome(
                    tx,
                    notification.id,
                    status=store.UNPROCESSABLE,
                    attempts=attempts,
                    outcome={"error": "no channel to apply it to"},
                )
                continue
            try:
                with tx.savepoint():
                    outcome = apply(tx, channel, notification.body)
            except (IntegrityError, OperationalError):
                raise  # a race or a lost connection: the whole batch is retried
            except Exception as exc:
                log.exception("Notification %s of channel %s failed", notification.id, channel.id)
                store.record_outcome(
                    tx,
                    notification.id,
                    status=store.UNPROCESSABLE if attempts >= MAX_ATTEMPTS else store.PENDING,
                    attempts=attempts,
                    outcome={"error": f"{type(exc).__name__}: {exc}"[:500]},
                    retry_at=tx.now + RETRY_BASE_MS * 2**attempts,
                )
                continue
            store.record_outcome(
                tx, notification.id, status=store.PROCESSED, attempts=attempts, outcome=outcome
            )
        return len(pending)
