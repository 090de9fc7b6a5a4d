"""The live stream's hub: one reader of the event log per process, fanning out in memory.

One task tails the log (`storage.events.read_log`, every organization's final events in
`(txid, position)` order) from the hub's `position` whenever the bus says something committed,
here or in another process, and also every `poll_seconds`, so a lost wake-up only delays. Each
batch is handed to the connected subscribers of its organizations, filtered by what each may see
(`live.audience`); the audience of the batch's chatrooms (participants, customer) is looked up
once per batch, not per subscriber, and each event is rendered once however many subscribers
receive it. A subscriber never queries the database once it is live.

A subscriber that resumes from a cursor first catches up from the database, with the same
ordering, then continues live (see `StreamSubscriber.catch_up` for the hand-over). Each
subscriber has a bounded queue: one that falls `max_pending` events behind is closed with
`SubscriberLaggingError` and resumes from its last position, losing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from functools import partial

from chatflow.domain.models import Event, LogPosition, OrganizationId
from chatflow.domain.paging import decode_cursor, encode_cursor
from chatflow.events.bus import EventBus, Subscription
from chatflow.live.audience import Viewer, needs_participants, sees_event
from chatflow.storage import events as event_store
from chatflow.storage.database import Database, Tx
from chatflow.storage.participation import audience_by_chatroom
from chatflow.views import event_view, to_json

log = logging.getLogger(__name__)


CURSOR_KIND = "events"
"""Stream cursors are `GET /v1/events` cursors: a client moves between the two freely."""

FIRST_RECHECK_SECONDS = 0.01


def encode_position(position: LogPosition) -> str:
    return encode_cursor(CURSOR_KIND, list(position))


def decode_position(cursor: str) -> LogPosition:
    """Raises `InvalidCursorError` for anything `encode_position` did not make."""
    txid, position = decode_cursor(CURSOR_KIND, cursor, [int, int])
    return (int(txid), int(position))


class StreamClosedError(Exception):
    """The subscriber was closed by the hub; it resumes from its last position."""


class SubscriberLaggingError(StreamClosedError):
    """The subscriber let more than `max_pending` events pile up."""


class HubStoppedError(StreamClosedError):
    """The process is shutting down."""


class LiveEvent:
    """An event as every subscriber receives it: its cursor and JSON body are made once, however
    many subscribers it goes to."""

    __slots__ = ("_body", "_cursor", "event", "key")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.key: LogPosition = event.log_position
        self._cursor: str | None = None
        self._body: str | None = None

    @property
    def cursor(self) -> str:
        if self._cursor is None:
            self._cursor = encode_position(self.key)
        return self._cursor

    @property
    def body(self) -> str:
        """The event as `GET /v1/events` shows it (`EventRead`), as JSON text."""
        if self._body is None:
            self._body = to_json(event_view(self.event)).decode()
        return self._body


Participants = Mapping[str, Collection[str]]


class StreamHub:
    """One per process. `start` it on the event loop the subscribers run on; `close` it last."""

    def __init__(
        self,
        database: Database,
        bus: EventBus,
        *,
        poll_seconds: float = 1.0,
        page_size: int = 500,
        max_pending: int = 10_000,
    ) -> None:
        self._database = database
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._page_size = page_size
        self._max_pending = max_pending
        self._subscribers: dict[OrganizationId, set[StreamSubscriber]] = {}
        self._wakeups: Subscription | None = None
        self._tailer: asyncio.Task[None] | None = None
        self._stopped = False
        self.position: LogPosition = (0, 0)
        """Every event up to here has been handed to the subscribers registered at the time."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        # Subscribed before reading where the log ends: a commit in between still wakes us.
        self._wakeups = self._bus.subscribe()
        self.position = await self._log_end()
        self._stopped = False
        self._tailer = asyncio.create_task(self._tail())

    async def close(self) -> None:
        self._stopped = True
        if self._tailer is not None:
            self._tailer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tailer
            self._tailer = None
        if self._wakeups is not None:
            self._wakeups.close()
            self._wakeups = None
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                subscriber._fail(HubStoppedError("The server is shutting down"))
        self._subscribers.clear()

    def open(self, actor: Viewer, after: LogPosition | None) -> StreamSubscriber:
        """A subscriber for `actor` (an API key, an agent or a web-chat visitor), resuming after
        `after` (None: from now on). Iterate its `catch_up()` before calling its `next`; `close`
        it when the client goes."""
        return StreamSubscriber(self, actor, after, self._max_pending)

    # -- subscribers -------------------------------------------------------------------------

    def _register(self, subscriber: StreamSubscriber) -> LogPosition:
        """From now on `subscriber` gets every batch after the returned position."""
        if self._stopped:
            raise HubStoppedError("The server is shutting down")
        self._subscribers.setdefault(subscriber.actor.org_id, set()).add(subscriber)
        return self.position

    def _unregister(self, subscriber: StreamSubscriber) -> None:
        subscribers = self._subscribers.get(subscriber.actor.org_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.actor.org_id]

    async def _log_end(self) -> LogPosition:
        return await self._database.read(event_store.log_end)

    async def _read_page(
        self, actor: Viewer, after: LogPosition
    ) -> tuple[list[LiveEvent], LogPosition, bool]:
        """One catch-up page of `actor`'s organization after `after`: the events `actor` sees,
        the position the page ends at, and whether it holds every final event there was."""

        def work(tx: Tx) -> tuple[list[Event], Participants]:
            rows = event_store.list_events(tx, actor.org_id, after=after, limit=self._page_size)
            members: Participants = {}
            if needs_participants(actor):
                members = audience_by_chatroom(
                    tx, {e.chatroom_id for e in rows if e.chatroom_id is not None}
                )
            return rows, members

        rows, members = await self._database.read(work)
        end = rows[-1].log_position if rows else after
        visible = [LiveEvent(e) for e in rows if sees_event(actor, e, members)]
        # `list_events` returns up to page_size + 1 rows: more than page_size means more remain.
        return visible, end, len(rows) <= self._page_size

    # -- tailing the log ---------------------------------------------------------------------

    async def _tail(self) -> None:
        """Read on every wake-up, and poll. After a wake-up, look again soon, then less and less
        often: on PostgreSQL an event that has committed stays hidden while an older transaction
        runs (see `storage.events.list_events`), and if that one commits no events, or rolls
        back, nothing announces that it ended."""
        assert self._wakeups is not None
        delay = self._poll_seconds
        while True:
            woken = await self._wakeups.wait(delay)
            delay = FIRST_RECHECK_SECONDS if woken else min(delay * 2, self._poll_seconds)
            try:
                await self._advance()
            except Exception:
                log.exception("The live stream could not read the event log; it tries again")
                delay = self._poll_seconds

    async def _advance(self) -> None:
        while True:
            if not self._subscribers:
                skipped = await self._skip_unwatched()
                if skipped is not None:
                    if skipped < self._page_size:
                        return
                    continue
            batch, members = await self._database.read(
                partial(
                    self._read_batch,
                    after=self.position,
                    watched=self._orgs_needing_participants(),
                )
            )
            if not batch:
                return
            await self._complete(batch, members)
            # From here to the end of `_deliver` nothing awaits: a subscriber registering
            # meanwhile is either before this batch (and gets it) or after it.
            self._deliver(batch, members)
            if len(batch) < self._page_size:
                return

    async def _skip_unwatched(self) -> int | None:
        """With nobody subscribed, move past a page of the log's new events reading only their
        positions (no payloads to parse); how many there were. None, and nothing moved, when a
        subscriber registered during the read: it is owed those events, so they are read whole."""
        heads = await self._database.read(
            partial(event_store.read_log_heads, after=self.position, limit=self._page_size)
        )
        if self._subscribers:
            return None
        if heads:
            self.position = heads[-1].log_position
        return len(heads)

    def _read_batch(
        self, tx: Tx, *, after: LogPosition, watched: frozenset[OrganizationId]
    ) -> tuple[list[Event], dict[str, set[str]]]:
        batch = event_store.read_log(tx, after=after, limit=self._page_size)
        rooms = {e.chatroom_id for e in batch if e.chatroom_id is not None and e.org_id in watched}
        return batch, audience_by_chatroom(tx, rooms)

    def _orgs_needing_participants(self) -> frozenset[OrganizationId]:
        return frozenset(
            org_id
            for org_id, subscribers in self._subscribers.items()
            if any(needs_participants(s.actor) for s in subscribers)
        )

    async def _complete(self, batch: Sequence[Event], members: dict[str, set[str]]) -> None:
        """Look up the chatrooms of organizations whose first agent or visitor subscribed
        during the read."""
        while True:
            watched = self._orgs_needing_participants()
            missing = {
                e.chatroom_id
                for e in batch
                if e.chatroom_id is not None
                and e.org_id in watched
                and e.chatroom_id not in members
            }
            if not missing:
                return
            members.update(
                await self._database.read(partial(audience_by_chatroom, chatroom_ids=missing))
            )

    def _deliver(self, batch: Sequence[Event], members: Participants) -> None:
        self.position = batch[-1].log_position
        by_org: dict[OrganizationId, list[LiveEvent]] = {}
        for event in batch:
            if event.org_id in self._subscribers:
                by_org.setdefault(event.org_id, []).append(LiveEvent(event))
        for org_id, items in by_org.items():
            for subscriber in list(self._subscribers.get(org_id, ())):
                try:
                    subscriber._offer(items, members)
                except Exception:
                    # One subscriber's failure must not cost the others this batch: it alone
                    # is closed, and resumes from its cursor.
                    log.exception("Could not hand events to a live-stream subscriber")
                    subscriber._fail(StreamClosedError("Could not send the events"))


class StreamSubscriber:
    """One client's view of the hub: its catch-up, then its queue of live events.

    `position` is where the client resumes once it has sent everything handed out so far: the
    key of the last event returned, or further when the events after it are ones this client
    does not see. It only moves forward.
    """

    def __init__(
        self, hub: StreamHub, actor: Viewer, after: LogPosition | None, max_pending: int
    ) -> None:
        self._hub = hub
        self.actor = actor
        """Replace it (same organization) when the caller's role changes."""
        self._after = after
        self.position: LogPosition = after if after is not None else (0, 0)
        self._max_pending = max_pending
        self._pending: deque[LiveEvent] = deque()
        self._signal = asyncio.Event()
        self._failure: StreamClosedError | None = None
        self._caught_up = False

    @property
    def cursor(self) -> str:
        return encode_position(self.position)

    async def catch_up(self) -> AsyncIterator[list[LiveEvent]]:
        """The events after the resume position, page by page, until the subscriber is live.

        Invariant of the hand-over: the subscriber registers with the hub at the hub's position
        P, atomically (no await in between), so every batch the hub reads from then on, that is
        every event after P, is queued for it in order. Everything up to P is final (the hub
        read it), so a database read that starts after registering and returns a short page
        (every final event there was) holds every event of the organization up to P. The
        catch-up therefore covers (after, max(last read, P)] and the queue covers (P, ∞); the
        queue's events at or before the end of the catch-up are dropped as duplicates. No gap,
        no duplicate, and the order is the log's.

        Without a resume position the catch-up starts at the end of the log as the database
        shows it on connecting, so nothing that committed before is sent.

        Far behind, pages are read before registering, so a long catch-up does not fill the
        queue; only the last stretch, once a page comes back short, overlaps with live events.
        """
        position = self._after
        if position is None:
            # The end of the log now, not the hub's position, which may not have reached what
            # the client saw commit just before it connected.
            position = self.position = await self._hub._log_end()
        registered_at: LogPosition | None = None
        while True:
            page, end, complete = await self._hub._read_page(self.actor, position)
            if page:
                yield page
            position = self.position = end
            self._raise_if_closed()
            if not complete:
                continue
            if registered_at is not None:
                break
            registered_at = self._hub._register(self)
            if registered_at <= position:
                break  # the short page just read already covered everything up to P
        self.position = max(position, registered_at)
        self._caught_up = True

    async def next(self, timeout: float) -> list[LiveEvent]:
        """The live events after `position`, oldest first; [] if none came within `timeout`
        seconds. Raises `StreamClosedError` once the hub has closed this subscriber."""
        if not self._caught_up:
            raise RuntimeError("catch_up() must run to its end before next()")
        items: list[LiveEvent] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                # Queued events the catch-up already sent are dropped: wait on for new ones.
                while not items:
                    if not self._pending and self._failure is None:
                        self._signal.clear()
                        await self._signal.wait()
                    self._raise_if_closed()
                    items = [item for item in self._pending if item.key > self.position]
                    self._pending.clear()
        if items:
            self.position = items[-1].key
        # Every batch up to the hub's position has been offered, and now taken: the events
        # between the last one returned and there are not for this client.
        self.position = max(self.position, self._hub.position)
        return items

    def close(self) -> None:
        self._hub._unregister(self)
        self._pending.clear()

    def _raise_if_closed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _offer(self, items: Sequence[LiveEvent], members: Participants) -> None:
        actor = self.actor
        if actor.sees_whole_organization:
            self._pending.extend(items)
        else:
            before = len(self._pending)
            self._pending.extend(i for i in items if sees_event(actor, i.event, members))
            if len(self._pending) == before:
                return
        if len(self._pending) > self._max_pending:
            self._fail(SubscriberLaggingError("Too far behind"))
            return
        self._signal.set()

    def _fail(self, error: StreamClosedError) -> None:
        self._failure = error
        self._pending.clear()
        self._hub._unregister(self)
        self._signal.set()
