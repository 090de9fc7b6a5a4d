"""Consumers of the whole event log: webhook fan-out today, flow triggers next.

A consumer reads the log in commit order from its own cursor, and handles each batch in the
same transaction that moves the cursor past it: a batch is handled exactly once, even when a
process dies in the middle, and an event that commits late is never skipped (see
`storage.events.read_log`). This is the hook the flow engine plugs its triggers into.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from chatflow.domain.models import Event, EventHead, LogPosition
from chatflow.events.bus import EventBus
from chatflow.storage import cursors
from chatflow.storage import events as event_store
from chatflow.storage.database import Database, Tx

log = logging.getLogger(__name__)

BATCH = 500


class LogConsumer(Protocol):
    name: str
    """Unique and stable: it keys the consumer's cursor in the database."""

    def wants(self, tx: Tx, batch: list[EventHead]) -> bool:
        """Whether the batch needs handling, decided by reading only, from the events' heads
        (their payloads are not even decoded). Most commits concern nobody (no endpoint, no
        flow listens): passing over them costs no write transaction."""
        ...

    def handle(self, tx: Tx, batch: list[Event]) -> None:
        """Act on a batch, inside the transaction that moves the cursor past it."""
        ...


def do_consume(
    tx: Tx, consumer: LogConsumer, *, after: LogPosition = (0, 0), limit: int = BATCH
) -> LogPosition | None:
    """Hand the next batch after the stored cursor, or after `after` if that is further, to
    `consumer`, and move the cursor past it; where it ends (None: caught up)."""
    start = max(cursors.lock_cursor(tx, consumer.name), after)
    batch = event_store.read_log(tx, after=start, limit=limit)
    if not batch:
        return None
    consumer.handle(tx, batch)
    end = batch[-1].log_position
    cursors.move_cursor(tx, consumer.name, end)
    return end


@dataclass(frozen=True, slots=True)
class _Peek:
    end: LogPosition
    size: int
    wanted: bool


def _peek(tx: Tx, consumer: LogConsumer, after: LogPosition, limit: int) -> _Peek | None:
    heads = event_store.read_log_heads(tx, after=after, limit=limit)
    if not heads:
        return None
    return _Peek(heads[-1].log_position, len(heads), consumer.wants(tx, heads))


class ConsumerLoop:
    """Runs one consumer: at once after each wake-up from the bus, and every `poll_seconds`
    besides, so a lost wake-up (or one from a process without Redis) only delays it.

    It reads ahead of the stored cursor: a batch nobody wants moves only its position in
    memory. Re-reading such a batch after a restart, or in another process, finds it unwanted
    again (an endpoint or a flow made since takes only what happens after it), and the stored
    cursor moves past it with the next batch that is handled.
    """

    def __init__(
        self,
        database: Database,
        bus: EventBus,
        consumer: LogConsumer,
        *,
        poll_seconds: float = 1.0,
        after_batch: Callable[[], None] | None = None,
        limit: int = BATCH,
    ) -> None:
        self._database = database
        self._bus = bus
        self._consumer = consumer
        self._poll_seconds = poll_seconds
        self._after_batch = after_batch
        self._limit = limit
        self._position: LogPosition | None = None
        self._reading = asyncio.Lock()

    async def catch_up(self) -> int:
        """Consume until the log's end; how many events were read. Calls from several tasks
        take turns (the flow timers catch the triggers up too)."""
        async with self._reading:
            return await self._catch_up()

    async def _catch_up(self) -> int:
        name = self._consumer.name
        if self._position is None:
            self._position = await self._database.read(lambda tx: cursors.read_cursor(tx, name))
        total = 0
        while True:
            after = self._position
            peek = await self._database.read(
                partial(_peek, consumer=self._consumer, after=after, limit=self._limit)
            )
            if peek is None:
                return total
            total += peek.size
            if peek.wanted:
                end = await self._database.write(
                    partial(do_consume, consumer=self._consumer, after=after, limit=self._limit)
                )
                if self._after_batch is not None:
                    self._after_batch()
                # None: another process handled it all meanwhile.
                self._position = peek.end if end is None else end
            else:
                self._position = peek.end
            if peek.size < self._limit:
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
