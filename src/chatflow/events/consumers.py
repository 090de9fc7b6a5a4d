"""Consumers of the whole event log: webhook fan-out today, flow triggers next.

A consumer reads the log in commit order from its own cursor, and handles each batch in the
same transaction that moves the cursor past it: a batch is handled exactly once, even when a
process dies in the middle, and an event that commits late is never skipped (see
`storage.events.read_log`). This is the hook the flow engine plugs its triggers into.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from chatflow.domain.models import Event
from chatflow.events.bus import EventBus
from chatflow.storage import cursors
from chatflow.storage import events as event_store
from chatflow.storage.database import Database, Tx

log = logging.getLogger(__name__)

BATCH = 500


class LogConsumer(Protocol):
    name: str
    """Unique and stable: it keys the consumer's cursor in the database."""

    def handle(self, tx: Tx, batch: list[Event]) -> None:
        """Act on a batch, inside the transaction that moves the cursor past it."""
        ...


def do_consume(tx: Tx, consumer: LogConsumer, *, limit: int = BATCH) -> int:
    """Hand the next batch to `consumer`; how many events it was (0: caught up)."""
    after = cursors.lock_cursor(tx, consumer.name)
    batch = event_store.read_log(tx, after=after, limit=limit)
    if batch:
        consumer.handle(tx, batch)
        cursors.move_cursor(tx, consumer.name, (batch[-1].txid, batch[-1].position))
    return len(batch)


class ConsumerLoop:
    """Runs one consumer: at once after each wake-up from the bus, and every `poll_seconds`
    besides, so a lost wake-up (or one from a process without Redis) only delays it."""

    def __init__(
        self,
        database: Database,
        bus: EventBus,
        consumer: LogConsumer,
        *,
        poll_seconds: float = 1.0,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        self._database = database
        self._bus = bus
        self._consumer = consumer
        self._poll_seconds = poll_seconds
        self._after_batch = after_batch

    async def catch_up(self) -> int:
        """Consume until the log's end; how many events were read."""
        total = 0
        while True:
            count = await self._database.write(lambda tx: do_consume(tx, self._consumer))
            total += count
            if count and self._after_batch is not None:
                self._after_batch()
            if count < BATCH:
                return total

    async def run(self) -> None:
        subscription = self._bus.subscribe()
        try:
            while True:
                try:
                    await self.catch_up()
                except Exception:
                    log.exception(
                        "Consumer %s failed; its batch is handled again shortly",
                        self._consumer.name,
                    )
                await subscription.wait(self._poll_seconds)
        finally:
            subscription.close()
