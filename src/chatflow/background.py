"""Background work: the same in `chatflow serve` (by default) and in `chatflow worker`.

Housekeeping (idle chatrooms, old idempotency keys, delivery logs and flow runs) every half
minute; webhook delivery, the channels' work (provider notifications, queued sends), the flow
engine's triggers and timers continuously, and any other consumers of the event log. Every part
is safe to run in several processes at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial

from chatflow.channels.base import ChannelContext
from chatflow.channels.work import run_channel_work
from chatflow.clock import Clock
from chatflow.config import Settings
from chatflow.events.bus import EventBus
from chatflow.events.consumers import ConsumerLoop, LogConsumer
from chatflow.flows.triggers import FlowTriggers
from chatflow.flows.worker import FlowWorker
from chatflow.services.housekeeping import HOUSEKEEPING_SECONDS, do_housekeeping
from chatflow.storage.database import Database
from chatflow.webhooks.dispatcher import Dispatcher
from chatflow.webhooks.guard import UrlGuard
from chatflow.webhooks.sender import WebhookSender

log = logging.getLogger(__name__)

FLOW_TRIGGER_BATCH = 100


async def _housekeeping(database: Database, settings: Settings) -> None:
    retention_ms = int(settings.flow_run_retention_days * 24 * 3600 * 1000)
    while True:
        try:
            await database.write(partial(do_housekeeping, flow_run_retention_ms=retention_ms))
        except Exception:
            log.exception("Housekeeping failed; it runs again shortly")
        await asyncio.sleep(HOUSEKEEPING_SECONDS)


def webhook_sender(settings: Settings, clock: Clock) -> WebhookSender:
    """The one sender of a process, behind the URL guard the settings allow."""
    guard = UrlGuard.from_setting(settings.webhook_allowed_networks)
    return WebhookSender(guard, clock=clock, timeout_seconds=settings.webhook_timeout_seconds)


async def run_background(
    settings: Settings,
    database: Database,
    bus: EventBus,
    sender: WebhookSender,
    clock: Clock,
    channels: ChannelContext,
    consumers: Sequence[LogConsumer] = (),
) -> None:
    """Until cancelled. `consumers` are further readers of the event log, each run by its own
    loop, besides the flow engine's triggers."""
    dispatcher = Dispatcher(
        database,
        bus,
        sender,
        clock,
        concurrency=settings.webhook_concurrency,
        timeout_seconds=settings.webhook_timeout_seconds,
    )
    triggers = ConsumerLoop(database, bus, FlowTriggers())
    await asyncio.gather(
        _housekeeping(database, settings),
        dispatcher.run(),
        run_channel_work(channels),
        FlowWorker(database, sender, read_replies=triggers.catch_up).run(),
        triggers.run(),
        *(ConsumerLoop(database, bus, consumer).run() for consumer in consumers),
    )
