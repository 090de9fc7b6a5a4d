"""Channels: the sandbox, web chat, and WhatsApp Cloud API configuration records."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chatflow.domain.access import Actor, check_administers
from chatflow.domain.errors import NotFoundError, ValidationError
from chatflow.domain.models import Channel, ChannelId, ChannelType
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.ids import new_id
from chatflow.storage import channels as store
from chatflow.storage.database import Tx

WHATSAPP_SETTINGS = ("phone_number_id", "waba_id", "display_phone_number", "graph_api_version")
WHATSAPP_SECRETS = ("access_token", "app_secret", "verify_token")
WHATSAPP_REQUIRED = ("phone_number_id", "waba_id", "access_token", "app_secret", "verify_token")
DEFAULT_GRAPH_API_VERSION = "v21.0"


def access_channel(tx: Tx, actor: Actor, channel_id: str) -> Channel:
    channel = store.get_channel(tx, actor.org_id, channel_id)
    if channel is None:
        raise NotFoundError(f"No channel {channel_id}")
    return channel


def _split_whatsapp(
    values: dict[str, Any], current_config: dict[str, Any], current_secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    unknown = sorted(set(values) - set(WHATSAPP_SETTINGS) - set(WHATSAPP_SECRETS))
    if unknown:
        raise ValidationError(
            f"Unknown WhatsApp settings: {', '.join(unknown)}",
            errors=[
                {"pointer": f"/config/{name}", "message": "unknown setting"} for name in unknown
            ],
        )
    config = {**current_config, **{k: v for k, v in values.items() if k in WHATSAPP_SETTINGS}}
    config.setdefault("graph_api_version", DEFAULT_GRAPH_API_VERSION)
    secrets = {**current_secrets, **{k: v for k, v in values.items() if k in WHATSAPP_SECRETS}}
    missing = [name for name in WHATSAPP_REQUIRED if not {**config, **secrets}.get(name)]
    if missing:
        raise ValidationError(
            f"A WhatsApp channel needs {', '.join(missing)}",
            errors=[{"pointer": f"/config/{name}", "message": "required"} for name in missing],
        )
    for name, value in {**config, **secrets}.items():
        if not isinstance(value, str):
            raise ValidationError(
                f"The WhatsApp setting {name} must be a string",
                errors=[{"pointer": f"/config/{name}", "message": "must be a string"}],
            )
    # Which secrets are set is useful to show; their values never leave the server.
    config["secrets_set"] = sorted(k for k in WHATSAPP_SECRETS if secrets.get(k))
    return config, secrets


def do_create_channel(
    tx: Tx,
    actor: Actor,
    *,
    type: ChannelType,
    name: str,
    customer_window: bool | None,
    config: dict[str, Any],
) -> Channel:
    check_administers(actor)
    secrets: dict[str, Any] = {}
    if type is ChannelType.WHATSAPP:
        if customer_window is False:
            raise ValidationError(
                "WhatsApp always enforces the 24-hour customer-service window",
                errors=[{"pointer": "/customer_window", "message": "must be true for WhatsApp"}],
            )
        window = True
        config, secrets = _split_whatsapp(config, {}, {})
    elif config:
        raise ValidationError(
            f"A {type.value} channel takes no config",
            errors=[{"pointer": "/config", "message": "must be empty"}],
        )
    else:
        # The sandbox emulates WhatsApp's window unless told not to; web chat has none.
        window = customer_window if customer_window is not None else type is ChannelType.SANDBOX
    channel = Channel(ChannelId(new_id("ch")), actor.org_id, type, name, window, config, tx.now)
    store.insert_channel(tx, channel, secrets)
    return channel


def do_update_channel(
    tx: Tx,
    actor: Actor,
    channel_id: str,
    *,
    name: str | None,
    customer_window: bool | None,
    config: dict[str, Any] | None,
) -> Channel:
    check_administers(actor)
    channel = access_channel(tx, actor, channel_id)
    secrets = store.get_channel_secrets(tx, channel.id)
    new_config = channel.config
    window = channel.customer_window
    if channel.type is ChannelType.WHATSAPP:
        if customer_window is False:
            raise ValidationError(
                "WhatsApp always enforces the 24-hour customer-service window",
                errors=[{"pointer": "/customer_window", "message": "must be true for WhatsApp"}],
            )
        if config:
            current = {k: v for k, v in channel.config.items() if k != "secrets_set"}
            new_config, secrets = _split_whatsapp(config, current, secrets)
    else:
        if config:
            raise ValidationError(
                f"A {channel.type.value} channel takes no config",
                errors=[{"pointer": "/config", "message": "must be empty"}],
            )
        if customer_window is not None:
            window = customer_window
    updated = replace(
        channel,
        name=name if name is not None else channel.name,
        customer_window=window,
        config=new_config,
    )
    store.update_channel(tx, updated, secrets)
    return updated


def list_channels(tx: Tx, actor: Actor, *, cursor: str | None, limit: int) -> Page[Channel]:
    after = str(decode_cursor("channels", cursor, [str])[0]) if cursor else None
    rows = store.list_channels(tx, actor.org_id, after=after, limit=limit)
    return page_of(rows, limit, "channels", lambda c: [c.id])
