"""The in-process wake-up bus: a listener learns that something committed since it last looked,
once, however many commits there were, and waits no longer than its timeout."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from chatflow.events.bus import EventBus


async def _started() -> EventBus:
    bus = EventBus()
    await bus.start()
    return bus


def test_a_commit_before_the_wait_is_not_missed() -> None:
    async def scenario() -> bool:
        bus = await _started()
        subscription = bus.subscribe()
        bus.announce()
        return await subscription.wait(5.0)

    assert asyncio.run(scenario()) is True


def test_a_wait_without_commits_ends_at_its_timeout() -> None:
    async def scenario() -> tuple[bool, float]:
        bus = await _started()
        subscription = bus.subscribe()
        loop = asyncio.get_running_loop()
        started = loop.time()
        woken = await subscription.wait(0.05)
        return woken, loop.time() - started

    woken, waited = asyncio.run(scenario())
    assert woken is False
    assert waited >= 0.04


def test_a_commit_during_the_wait_ends_it_and_many_commits_wake_once() -> None:
    async def scenario() -> list[bool]:
        bus = await _started()
        subscription = bus.subscribe()
        loop = asyncio.get_running_loop()
        for _ in range(3):
            loop.call_soon(bus.announce)
        first = await subscription.wait(5.0)
        second = await subscription.wait(0.01)
        return [first, second]

    assert asyncio.run(scenario()) == [True, False]


def test_a_cancelled_wait_leaves_the_subscription_working() -> None:
    async def scenario() -> bool:
        bus = await _started()
        subscription = bus.subscribe()
        waiting = asyncio.create_task(subscription.wait(5.0))
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        asyncio.get_running_loop().call_soon(bus.announce)
        return await subscription.wait(5.0)

    assert asyncio.run(scenario()) is True


def test_a_closed_subscription_is_not_woken() -> None:
    async def scenario() -> bool:
        bus = await _started()
        subscription = bus.subscribe()
        subscription.close()
        bus.announce()
        return await subscription.wait(0.01)

    assert asyncio.run(scenario()) is False


def test_a_subscription_refuses_a_second_waiter() -> None:
    """Two waiters would share one future: the first would never be woken."""

    async def scenario() -> None:
        bus = await _started()
        subscription = bus.subscribe()
        first = asyncio.create_task(subscription.wait(5.0))
        await asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="one waiter"):
                await subscription.wait(5.0)
        finally:
            bus.announce()
        assert await first is True

    asyncio.run(scenario())
