"""Sending queued messages through their channel's provider, after they committed.

Each outbound message of a provider channel has an `outbound_sends` row written with it. The
sender claims due rows under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), hands each
message to its kind's transport, and records the answer: sent (with the provider's id), retried
with backoff (429, 5xx, network), or failed with the provider's reason. A chatroom's messages in
one claim go out one after another, in the order they were written.

A process killed after the provider took a message but before the answer committed sends it
again when the lease runs out: the Cloud API has no idempotency key, so this is the one place a
customer can see a message twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from chatflow.channels.base import OutboundTransport, Refused, SendOutcome, Sent, TryAgain
from chatflow.clock import Clock
from chatflow.domain.models import Channel, ChannelType, Contact, JsonObject, Message
from chatflow.events.bus import EventBus
from chatflow.services import deliveries
from chatflow.storage import channels as channel_store
from chatflow.storage import contacts as contact_store
from chatflow.storage import messages as message_store
from chatflow.storage import outbound as store
from chatflow.storage.database import Database, Tx

log = logging.getLogger(__name__)

RETRY_DELAYS_MS = (2_000, 10_000, 60_000, 5 * 60_000, 15 * 60_000, 60 * 60_000)
"""After the last, every hour, until the message is a day old: then it fails as expired."""
SEND_DEADLINE_MS = 24 * 60 * 60 * 1000
LEASE_MS = 60_000


@dataclass(frozen=True, slots=True)
class _Job:
    send: store.PendingSend
    channel: Channel
    secrets: JsonObject
    contact: Contact
    message: Message


class OutboundSender:
    def __init__(
        self,
        database: Database,
        bus: EventBus,
        clock: Clock,
        transports: Mapping[ChannelType, OutboundTransport],
        *,
        batch_size: int = 64,
        poll_seconds: float = 1.0,
    ) -> None:
        self._database = database
        self._bus = bus
        self._clock = clock
        self._transports = transports
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds

    async def send_due(self) -> int:
        """Claim the sends that are due, make them, record the answers; returns how many."""
        if not await self._database.read(store.any_due):
            return 0
        jobs = await self._database.write(self._claim)
        if not jobs:
            return 0
        lines: dict[str, list[_Job]] = defaultdict(list)
        for job in jobs:
            lines[job.send.chatroom_id].append(job)
        answered = await asyncio.gather(*(self._send_line(line) for line in lines.values()))
        outcomes = [pair for line in answered for pair in line]
        await self._database.write(lambda tx: self._record(tx, outcomes))
        return len(jobs)

    async def run(self) -> None:
        """Until cancelled: woken by every commit (a queued message commits an event), and
        polling for retries that come due."""
        subscription = self._bus.subscribe()
        try:
            while True:
                try:
                    sent = await self.send_due()
                except Exception:
                    log.exception("Sending queued messages failed; retrying shortly")
                    sent = 0
                if sent < self._batch_size:
                    await subscription.wait(self._poll_seconds)
        finally:
            subscription.close()

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()

    def _claim(self, tx: Tx) -> list[_Job]:
        jobs = []
        for send in store.claim_due(tx, limit=self._batch_size, lease_ms=LEASE_MS):
            found = channel_store.get_channel_with_secrets(tx, send.channel_id)
            message = message_store.get_message(tx, send.chatroom_id, send.message_id)
            contact = contact_store.get_contact(tx, send.org_id, send.contact_id)
            if found is None or message is None or contact is None:
                store.finish(tx, send.message_id)
                continue
            channel, secrets = found
            jobs.append(_Job(send, channel, secrets, contact, message))
        return jobs

    async def _send_line(self, line: list[_Job]) -> list[tuple[_Job, SendOutcome]]:
        outcomes: list[tuple[_Job, SendOutcome]] = []
        for job in line:
            transport = self._transports.get(job.channel.type)
            if transport is None:
                outcome: SendOutcome = Refused(
                    {"code": "no_transport", "title": f"{job.channel.type} has no sender"}
                )
            else:
                try:
                    outcome = await transport.send(
                        job.channel, job.secrets, job.contact, job.message
                    )
                except Exception as exc:
                    log.exception("Sending message %s failed", job.message.id)
                    outcome = TryAgain({"code": "internal", "title": type(exc).__name__})
            outcomes.append((job, outcome))
        return outcomes

    def _record(self, tx: Tx, outcomes: list[tuple[_Job, SendOutcome]]) -> None:
        for job, outcome in outcomes:
            send = job.send
            if isinstance(outcome, Sent):
                deliveries.do_record_sent(
                    tx, send.chatroom_id, send.message_id, outcome.channel_message_id
                )
            elif isinstance(outcome, Refused):
                deliveries.do_record_refused(tx, send.chatroom_id, send.message_id, outcome.error)
            else:
                self._retry(tx, send, outcome)

    def _retry(self, tx: Tx, send: store.PendingSend, outcome: TryAgain) -> None:
        attempts = send.attempts + 1
        delay = RETRY_DELAYS_MS[min(attempts, len(RETRY_DELAYS_MS)) - 1]
        if outcome.retry_after_ms is not None:
            delay = max(delay, min(outcome.retry_after_ms, 60 * 60_000))
        if tx.now + delay - send.created_at > SEND_DEADLINE_MS:
            error = {**outcome.error, "expired": True, "attempts": attempts}
            deliveries.do_record_refused(tx, send.chatroom_id, send.message_id, error)
            return
        store.reschedule(
            tx,
            send.message_id,
            attempts=attempts,
            next_attempt_at=tx.now + delay,
            error=outcome.error,
        )
