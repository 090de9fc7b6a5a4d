"""What a channel kind is: its rules, its routes, how its messages leave, its background work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from starlette.routing import BaseRoute

from chatflow.channels.inbox import Apply, Inbox
from chatflow.clock import Clock
from chatflow.config import Settings
from chatflow.domain.models import Channel, ChannelType, Contact, JsonObject, Message
from chatflow.events.bus import EventBus
from chatflow.services.channels import ChannelRules
from chatflow.storage.database import Database


@dataclass(frozen=True, slots=True)
class Sent:
    """The provider took the message; `channel_message_id` is its id for it (a `wamid`)."""

    channel_message_id: str


@dataclass(frozen=True, slots=True)
class TryAgain:
    """A failure that may pass (rate limit, provider error, network): retried with backoff."""

    error: JsonObject
    retry_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The provider refused the message for good: it fails with the provider's reason."""

    error: JsonObject


SendOutcome = Sent | TryAgain | Refused


class OutboundTransport(Protocol):
    """Hands outbound messages to a channel's provider, after they committed."""

    async def send(
        self, channel: Channel, secrets: JsonObject, contact: Contact, message: Message
    ) -> SendOutcome: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What a kind's transport and background work are built from."""

    settings: Settings
    clock: Clock
    database: Database
    bus: EventBus
    inbox: Inbox


@dataclass(frozen=True, slots=True)
class ChannelKind:
    type: ChannelType
    rules: ChannelRules
    routes: Sequence[BaseRoute] = ()
    """Customer- and provider-facing routes (webhooks, pages), and any API routes of its own."""
    transport: Callable[[ChannelContext], OutboundTransport] | None = None
    """For kinds whose messages leave through a provider (see `ChannelType.sends_through_provider`);
    other kinds deliver by writing the message, which their customers read live."""
    apply_notification: Apply | None = None
    """For kinds whose provider pushes notifications: applies one stored by `Inbox.accept`."""
    background: Sequence[Callable[[ChannelContext], Awaitable[None]]] = field(default=())
    """Long-running work of the kind (processing stored notifications), run until cancelled in
    `chatflow serve` and `chatflow worker`, safe in several processes at once."""
