"""Webhook delivery at run time: fan committed events out to endpoints, claim due deliveries,
send them signed, record what happened.

Runs in every `chatflow serve` (unless background work is off) and in `chatflow worker`; any
number of processes may run it on one database. Two loops:

- **fan-out** wakes on the event bus (or a poll) and consumes the event log into deliveries;
- **delivery** claims due deliveries with a lease, keeps up to `concurrency` attempts in flight,
  and records each outcome in its own transaction. A process killed mid-attempt leaves a lease
  that runs out; the delivery is then claimed again, so every committed event is delivered at
  least once. Receivers deduplicate by `webhook-id` (the event id, the same on every attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from functools import partial

from chatflow.clock import Clock, to_millis
from chatflow.events.bus import EventBus
from chatflow.events.consumers import ConsumerLoop
from chatflow.storage import webhooks as store
from chatflow.storage.database import Database, Tx
from chatflow.storage.webhooks import Claimed
from chatflow.webhooks.delivery import Outcome, WebhookFanOut, do_record_attempts
from chatflow.webhooks.payload import body_of
from chatflow.webhooks.sender import WebhookSender
from chatflow.webhooks.signing import webhook_headers

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    """An outcome waiting for the recorder, and the attempt waiting for its record."""

    outcome: Outcome
    recorded: asyncio.Future[None]


RECORDERS = 4
"""Outcome batches written at once. One writer at a time made each batch wait for the last
one's round trips and commit, which capped the drain on PostgreSQL; batches hold distinct
deliveries, so concurrent writers do not wait for each other (SQLite serialises them anyway)."""

LEASE_MARGIN_MS = 5_000
"""A claimed delivery stays claimed this long beyond the attempt's timeout: recording an
outcome takes milliseconds, and should it take longer, the cost is a second attempt, which
receivers deduplicate, whereas a long lease delays every delivery a killed process held."""


class Dispatcher:
    def __init__(
        self,
        database: Database,
        bus: EventBus,
        sender: WebhookSender,
        clock: Clock,
        *,
        concurrency: int = 32,
        timeout_seconds: float = 15.0,
        poll_seconds: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self._database = database
        self._sender = sender
        self._clock = clock
        self._concurrency = concurrency
        self._lease_ms = int(timeout_seconds * 1000) + LEASE_MARGIN_MS
        self._poll_seconds = poll_seconds
        self._rng = rng
        self._progress = asyncio.Event()
        """Set when an attempt ends (room for another) or fan-out made deliveries."""
        self._fan_out = ConsumerLoop(
            database,
            bus,
            WebhookFanOut(),
            poll_seconds=poll_seconds,
            after_batch=self._progress.set,
        )
        self._in_flight: set[asyncio.Task[None]] = set()
        self._outcomes: list[_Pending] = []
        self._recorders: set[asyncio.Task[None]] = set()

    # -- step by step (tests drive these with a settable clock) --------------------------------

    async def fan_out(self) -> int:
        """Consume the event log until caught up; how many events were read."""
        return await self._fan_out.catch_up()

    async def claim(self, limit: int) -> list[Claimed]:
        return await self._database.write(
            lambda tx: store.claim_due(tx, now=tx.now, limit=limit, lease_ms=self._lease_ms)
        )

    async def attempt(self, claimed: Claimed) -> None:
        """Send one delivery and record the outcome."""
        body = body_of(claimed.event)
        attempted_at = to_millis(self._clock.now())
        headers = webhook_headers(
            claimed.endpoint.signing_secrets(attempted_at),
            claimed.event.id,
            attempted_at // 1000,
            body,
        )
        result = await self._sender.send(claimed.endpoint.url, headers, body)
        pending = _Pending(
            Outcome(claimed, result, attempted_at), asyncio.get_running_loop().create_future()
        )
        self._outcomes.append(pending)
        if len(self._recorders) < RECORDERS:
            recorder = asyncio.create_task(self._record_outcomes())
            self._recorders.add(recorder)
            recorder.add_done_callback(self._recorders.discard)
        await asyncio.shield(pending.recorded)

    async def _record_outcomes(self) -> None:
        """Record the outcomes that arrive while a write is under way together, in one
        transaction: with many attempts in flight, a commit each was most of the cost."""
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            # In id order, as fan-out locks the heads of lines: concurrent writers lock alike.
            batch.sort(key=lambda p: p.outcome.claimed.delivery.id)
            try:
                await self._database.write(partial(self._record, batch=batch))
            except Exception:
                # One outcome that cannot be recorded must not take the others with it.
                for pending in batch:
                    try:
                        await self._database.write(partial(self._record, batch=[pending]))
                    except Exception as exc:
                        pending.recorded.set_exception(exc)
                    else:
                        pending.recorded.set_result(None)
            else:
                for pending in batch:
                    pending.recorded.set_result(None)

    def _record(self, tx: Tx, batch: list[_Pending]) -> None:
        do_record_attempts(tx, [p.outcome for p in batch], self._rng)

    async def run_due(self) -> int:
        """Fan out, then attempt everything due, in waves, until nothing is due; how many
        attempts were made. (What `run` does continuously, for tests and tools.)"""
        attempts = 0
        await self.fan_out()
        while claimed := await self.claim(self._concurrency):
            await asyncio.gather(*(self.attempt(c) for c in claimed))
            attempts += len(claimed)
        return attempts

    # -- continuously ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Both loops, until cancelled. Attempts in flight are cancelled too: their leases run
        out and another process (or the next start) makes them again."""
        loops = [
            asyncio.create_task(self._fan_out.run(), name="webhook-fan-out"),
            asyncio.create_task(self._deliver_forever(), name="webhook-delivery"),
        ]
        try:
            await asyncio.gather(*loops)
        finally:
            tasks = [*loops, *self._in_flight, *self._recorders]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _deliver_forever(self) -> None:
        while True:
            self._progress.clear()
            free = self._concurrency - len(self._in_flight)
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    claimed = await self.claim(free)
                except Exception:
                    log.exception("Claiming webhook deliveries failed; trying again shortly")
                for item in claimed:
                    task = asyncio.create_task(self._attempt_logged(item))
                    self._in_flight.add(task)
                    task.add_done_callback(self._attempt_done)
            if free > 0 and len(claimed) == free:
                continue  # there may be more due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), self._poll_seconds)

    async def _attempt_logged(self, claimed: Claimed) -> None:
        try:
            await self.attempt(claimed)
        except Exception:
            log.exception(
                "Recording webhook delivery %s failed; it is retried when its lease ends",
                claimed.delivery.id,
            )

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._progress.set()
