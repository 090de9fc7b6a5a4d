"""The channels' background work, run by `chatflow serve` (by default) and `chatflow worker`:
applying stored provider notifications, sending queued messages, and each kind's own work."""

from __future__ import annotations

import asyncio

from chatflow.channels.base import ChannelContext, OutboundTransport
from chatflow.channels.inbox import Inbox
from chatflow.channels.outbound import OutboundSender
from chatflow.channels.registry import KINDS
from chatflow.clock import Clock
from chatflow.config import Settings
from chatflow.domain.models import ChannelType
from chatflow.events.bus import EventBus
from chatflow.storage.database import Database


def channel_context(
    settings: Settings, clock: Clock, database: Database, bus: EventBus
) -> ChannelContext:
    appliers = {t: k.apply_notification for t, k in KINDS.items() if k.apply_notification}
    return ChannelContext(settings, clock, database, bus, Inbox(database, appliers))


def outbound_sender(context: ChannelContext) -> OutboundSender:
    transports: dict[ChannelType, OutboundTransport] = {
        t: k.transport(context) for t, k in KINDS.items() if k.transport is not None
    }
    return OutboundSender(context.database, context.bus, context.clock, transports)


async def run_channel_work(context: ChannelContext) -> None:
    """Until cancelled."""
    sender = outbound_sender(context)
    try:
        await asyncio.gather(
            context.inbox.run(),
            sender.run(),
            *(work(context) for kind in KINDS.values() for work in kind.background),
        )
    finally:
        await sender.aclose()
