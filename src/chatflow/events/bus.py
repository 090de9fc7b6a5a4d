"""Telling every consumer of the event log, in every process, that new events have committed.

The bus carries wake-ups, never events: consumers (the live stream, webhook fan-out, flow triggers)
read the log itself from their own position, so a lost wake-up only delays them until their next
poll, and the log stays the one source of truth.

- `EventBus` wakes the listeners of this process; `chatflow serve` as one process needs nothing
  more.
- `RedisEventBus` also publishes each wake-up on a Redis channel and turns the wake-ups other
  processes publish into local ones, so any number of `serve` and `worker` processes see each
  other's commits within a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence

import redis.asyncio as aioredis

from chatflow.domain.models import Event

log = logging.getLogger(__name__)

CHANNEL = "chatflow:events-committed"


class Subscription:
    """One listener's view of the bus: `wait` returns once something committed since last time.

    Every commit wakes every listener of the process, so waiting is kept cheap: a future and a
    timer, where `asyncio.wait_for` made a task as well (twice the cost, five listeners a
    commit).
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None = None) -> bool:
        """True when woken, False when `timeout` seconds passed first. One waiter at a time:
        each listener has a subscription of its own."""
        if self._waiter is not None:
            raise RuntimeError("A subscription has one waiter at a time")
        if not self._woken:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        woken, self._woken = self._woken, False
        return woken

    def close(self) -> None:
        self._bus._subscriptions.discard(self)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class EventBus:
    """In-process wake-ups. Call `start` on the event loop that listeners wait on."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    async def close(self) -> None:
        self._loop = None

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscriptions.add(subscription)
        return subscription

    def announce(self, events: Sequence[Event] = ()) -> None:
        """Events committed in this process: wake everyone. Safe to call from any thread."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._thread:
            self._committed_here()
        else:
            loop.call_soon_threadsafe(self._committed_here)

    def _committed_here(self) -> None:
        self.wake_local()

    def wake_local(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.wake()


class RedisEventBus(EventBus):
    """Wake-ups across processes through Redis pub/sub.

    Publishing is coalesced: while one PUBLISH is in flight, further commits only mark that
    another is due, so a burst of commits costs a couple of round trips, not one each.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._publish_due = False
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        await super().start()
        self._client = aioredis.Redis.from_url(self._url)
        self._subscribed = asyncio.Event()
        self._listener = asyncio.create_task(self._listen())
        # Listening before serving: a wake-up published by another process right after this
        # one started is not missed.
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def close(self) -> None:
        for task in (self._listener, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await super().close()

    def _committed_here(self) -> None:
        self.wake_local()
        self._publish_due = True
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.get_running_loop().create_task(self._publish())

    async def _publish(self) -> None:
        while self._publish_due and self._client is not None:
            self._publish_due = False
            try:
                await self._client.publish(CHANNEL, b"1")
            except Exception:
                # Other processes fall back on their poll; nothing is lost, only delayed.
                log.warning("Could not publish a wake-up to Redis", exc_info=True)
                return

    async def _listen(self) -> None:
        assert self._client is not None
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._subscribed.set()
                    # Whatever was published while (re)connecting is unknown: look now.
                    self.wake_local()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wake_local()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("Lost the Redis subscription; reconnecting", exc_info=True)
                await asyncio.sleep(1)


def create_bus(redis_url: str | None) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else EventBus()
