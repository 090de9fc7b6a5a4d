"""Channels: create and configure them, whatever their kind.

What differs between kinds (which settings they take, whether the 24-hour window is theirs to
choose) comes from the kind itself, as `ChannelRules` (see `chatflow.channels`): this module only
applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from chatflow.domain.access import Actor, check_administers
from chatflow.domain.errors import NotFoundError, ValidationError
from chatflow.domain.models import Channel, ChannelId, ChannelType, JsonObject
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.ids import new_id
from chatflow.storage import channels as store
from chatflow.storage.database import Tx

Configure = Callable[[JsonObject, JsonObject, JsonObject], tuple[JsonObject, JsonObject]]
"""`(given, current config, current secrets) -> (config, secrets)`: checks the settings a caller
gave (raising `ValidationError` with pointers under `/config`) and merges them into the current
ones. On creation the current ones are empty."""


class Window(Enum):
    """Whether free-form sends need the 24-hour customer-service window (R4)."""

    ALWAYS = "always"
    """The provider enforces it (WhatsApp): it cannot be turned off."""
    ON_BY_DEFAULT = "on_by_default"
    OFF_BY_DEFAULT = "off_by_default"


def no_config(
    given: JsonObject, config: JsonObject, secrets: JsonObject
) -> tuple[JsonObject, JsonObject]:
    if given:
        raise ValidationError(
            "This kind of channel takes no config",
            errors=[{"pointer": "/config", "message": "must be empty"}],
        )
    return config, secrets


@dataclass(frozen=True, slots=True)
class ChannelRules:
    window: Window
    configure: Configure = no_config

    def window_setting(self, requested: bool | None, current: bool | None) -> bool:
        if self.window is Window.ALWAYS:
            if requested is False:
                raise ValidationError(
                    "This channel's provider always enforces the 24-hour customer-service window",
                    errors=[{"pointer": "/customer_window", "message": "must be true"}],
                )
            return True
        if requested is not None:
            return requested
        if current is not None:
            return current
        return self.window is Window.ON_BY_DEFAULT


ChannelRulebook = Callable[[ChannelType], ChannelRules]


def access_channel(tx: Tx, actor: Actor, channel_id: str) -> Channel:
    channel = store.get_channel(tx, actor.org_id, channel_id)
    if channel is None:
        raise NotFoundError(f"No channel {channel_id}")
    return channel


def do_create_channel(
    tx: Tx,
    actor: Actor,
    rules: ChannelRules,
    *,
    type: ChannelType,
    name: str,
    customer_window: bool | None,
    config: JsonObject,
) -> Channel:
    check_administers(actor)
    window = rules.window_setting(customer_window, None)
    settings, secrets = rules.configure(config, {}, {})
    channel = Channel(ChannelId(new_id("ch")), actor.org_id, type, name, window, settings, tx.now)
    store.insert_channel(tx, channel, secrets)
    return channel


def do_update_channel(
    tx: Tx,
    actor: Actor,
    rulebook: ChannelRulebook,
    channel_id: str,
    *,
    name: str | None,
    customer_window: bool | None,
    config: JsonObject | None,
) -> Channel:
    check_administers(actor)
    channel = access_channel(tx, actor, channel_id)
    rules = rulebook(channel.type)
    window = rules.window_setting(customer_window, channel.customer_window)
    settings, secrets = channel.config, store.get_channel_secrets(tx, channel.id)
    if config:
        settings, secrets = rules.configure(config, settings, secrets)
    updated = replace(
        channel,
        name=name if name is not None else channel.name,
        customer_window=window,
        config=settings,
    )
    store.update_channel(tx, updated, secrets)
    return updated


def list_channels(tx: Tx, actor: Actor, *, cursor: str | None, limit: int) -> Page[Channel]:
    after = str(decode_cursor("channels", cursor, [str])[0]) if cursor else None
    rows = store.list_channels(tx, actor.org_id, after=after, limit=limit)
    return page_of(rows, limit, "channels", lambda c: [c.id])
