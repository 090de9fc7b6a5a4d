"""The live stream's hub, driven directly: the hand-over from catch-up to live under racing
commits, slow subscribers, and the poll that covers a lost wake-up."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.factories import Org

from chatflow.domain.access import Actor, ActorKind
from chatflow.domain.models import LogPosition, OrganizationId
from chatflow.events import outbox
from chatflow.events.bus import EventBus
from chatflow.events.types import EventType
from chatflow.live.hub import (
    LiveEvent,
    StreamHub,
    StreamSubscriber,
    SubscriberLaggingError,
)
from chatflow.storage import events as event_store
from chatflow.storage.database import Database, Tx

DONE = "done"


def _key_actor(org: Org) -> Actor:
    return Actor(OrganizationId(org.id), ActorKind.API_KEY, "key_test")


@contextlib.asynccontextmanager
async def _running_hub(
    database: Database, **options: Any
) -> AsyncIterator[tuple[StreamHub, EventBus]]:
    """A started hub on an in-process bus, closed (bus too) when the block ends."""
    bus = EventBus()
    await bus.start()
    hub = StreamHub(database, bus, **options)
    await hub.start()
    try:
        yield hub, bus
    finally:
        await hub.close()
        await bus.close()


async def _record(database: Database, org: Org, name: str, bus: EventBus | None = None) -> None:
    """Commit one event named `name`; announce it on `bus`, if given."""

    def work(tx: Tx) -> None:
        outbox.record(tx, OrganizationId(org.id), EventType.CONTACT_UPDATED, {"name": name})

    await database.write(work)
    if bus is not None:
        bus.announce()


async def _log(database: Database, org: Org, after: LogPosition) -> list[tuple[LogPosition, str]]:
    rows = await database.read(
        lambda tx: event_store.list_events(tx, org.id, after=after, limit=10_000)
    )
    return [((e.txid, e.position), e.data["name"]) for e in rows]


async def _receive_until_done(subscriber: StreamSubscriber) -> list[str]:
    names: list[str] = []
    async for page in subscriber.catch_up():
        names.extend(item.event.data["name"] for item in page)
    while DONE not in names:
        names.extend(item.event.data["name"] for item in await subscriber.next(5))
    subscriber.close()
    return names


async def _race(database: Database, org: Org) -> None:
    start = await database.read(event_store.log_end)
    rng = random.Random(7)
    subscribers: list[tuple[LogPosition, asyncio.Task[list[str]]]] = []
    # Tiny pages: catch-ups take several pages and hand over while the hub reads too.
    async with _running_hub(database, poll_seconds=0.05, page_size=3) as (hub, bus):

        async def writer(lane: int) -> None:
            for i in range(25):
                await _record(database, org, f"{lane}.{i}", bus)

        async def subscribe_now_and_then() -> None:
            for _ in range(12):
                for _ in range(rng.randrange(1, 6)):
                    await asyncio.sleep(0)
                final = await _log(database, org, start)
                after = rng.choice([start, *(key for key, _ in final)])
                task = asyncio.create_task(_receive_until_done(hub.open(_key_actor(org), after)))
                subscribers.append((after, task))

        # Four writers at once: on PostgreSQL their transactions commit out of position order.
        await asyncio.gather(*(writer(lane) for lane in range(4)), subscribe_now_and_then())
        await _record(database, org, DONE, bus)
        received = await asyncio.wait_for(asyncio.gather(*(t for _, t in subscribers)), 30)

    for (after, _), names in zip(subscribers, received, strict=True):
        assert names == [name for _, name in await _log(database, org, after)]


def test_every_subscriber_gets_exactly_the_log_after_its_cursor_while_commits_race(
    database: Database, org: Org
) -> None:
    asyncio.run(_race(database, org))


async def _lagging(database: Database, org: Org) -> None:
    async with _running_hub(database, poll_seconds=0.05, max_pending=3) as (hub, bus):
        slow = hub.open(_key_actor(org), None)
        fast = hub.open(_key_actor(org), None)
        for subscriber in (slow, fast):
            assert [page async for page in subscriber.catch_up()] == []
        resume_at = slow.position
        fast_got: list[str] = []
        for i in range(5):
            await _record(database, org, str(i), bus)
            while len(fast_got) <= i:
                fast_got.extend(item.event.data["name"] for item in await fast.next(5))

        with pytest.raises(SubscriberLaggingError):
            await slow.next(5)
        assert slow.position == resume_at
        resumed = hub.open(_key_actor(org), resume_at)
        again = [item.event.data["name"] async for page in resumed.catch_up() for item in page]

    assert fast_got == ["0", "1", "2", "3", "4"]
    assert again == ["0", "1", "2", "3", "4"]


def test_a_subscriber_that_falls_too_far_behind_is_closed_and_resumes_from_its_position(
    database: Database, org: Org
) -> None:
    asyncio.run(_lagging(database, org))


async def _unannounced(database: Database, org: Org) -> None:
    async with _running_hub(database, poll_seconds=0.05) as (hub, _):
        subscriber = hub.open(_key_actor(org), None)
        assert [page async for page in subscriber.catch_up()] == []
        await _record(database, org, "quiet")  # and no announcement on the hub's bus
        got = await subscriber.next(5)
    assert [item.event.data["name"] for item in got] == ["quiet"]


def test_an_event_whose_wake_up_was_lost_arrives_at_the_next_poll(
    database: Database, org: Org
) -> None:
    asyncio.run(_unannounced(database, org))


async def _hub_moves_on_during_catch_up(
    database: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    # No polling and no announcements: the hub reads only when this test says so.
    async with _running_hub(database, poll_seconds=60) as (hub, _):
        start = hub.position
        await _record(database, org, "before")
        read_page = hub._read_page
        moved_on = False

        async def read_page_then_hub_moves_on(
            actor: Actor, after: LogPosition
        ) -> tuple[list[LiveEvent], LogPosition, bool]:
            nonlocal moved_on
            page = await read_page(actor, after)
            if not moved_on:
                # Between the subscriber's read and its registration, an event commits and the
                # hub reads it: the subscriber's page does not hold it, and the hub is past it.
                moved_on = True
                await _record(database, org, "meanwhile")
                await hub._advance()
            return page

        monkeypatch.setattr(hub, "_read_page", read_page_then_hub_moves_on)
        subscriber = hub.open(_key_actor(org), start)
        names = [item.event.data["name"] async for page in subscriber.catch_up() for item in page]
        await _record(database, org, DONE)
        await hub._advance()
        names.extend(item.event.data["name"] for item in await subscriber.next(5))
    return names


def test_an_event_the_hub_reads_while_a_subscriber_catches_up_reaches_it_once(
    database: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = asyncio.run(_hub_moves_on_during_catch_up(database, org, monkeypatch))

    assert names == ["before", "meanwhile", DONE]


async def _subscribes_while_hub_skips(
    database: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    async with _running_hub(database, poll_seconds=60) as (hub, _):
        subscriber = hub.open(_key_actor(org), hub.position)

        async def page_read_before_the_commit(
            actor: Actor, after: LogPosition
        ) -> tuple[list[LiveEvent], LogPosition, bool]:
            return [], after, True

        monkeypatch.setattr(hub, "_read_page", page_read_before_the_commit)
        await _record(database, org, "unwatched?")
        read = database.read

        async def read_then_subscribe(work: Any) -> Any:
            result = await read(work)
            if not hub._subscribers:
                # The subscriber's catch-up, which read before the event committed, ends and
                # it registers at the hub's position while the hub, with nobody subscribed,
                # reads.
                async for _ in subscriber.catch_up():
                    pass
            return result

        monkeypatch.setattr(database, "read", read_then_subscribe)
        await hub._advance()
        monkeypatch.setattr(database, "read", read)
        names = [item.event.data["name"] for item in await subscriber.next(5)]
        subscriber.close()
    return names


def test_a_subscriber_registering_while_the_hub_skips_unwatched_events_gets_them(
    database: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nobody subscribed the hub moves past new events reading only their positions; one
    who registers during that read is owed them, and gets them."""
    names = asyncio.run(_subscribes_while_hub_skips(database, org, monkeypatch))
    assert names == ["unwatched?"]
