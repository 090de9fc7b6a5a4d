"""Channels and their configuration; secrets are stored apart and never leave through the API."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatflow.domain.models import Channel, ChannelId, ChannelType, JsonObject, OrganizationId
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import channels


def _channel(row: Any) -> Channel:
    return Channel(
        id=ChannelId(row.id),
        org_id=OrganizationId(row.org_id),
        type=ChannelType(row.type),
        name=row.name,
        customer_window=bool(row.customer_window),
        config=json.loads(row.config),
        created_at=row.created_at,
    )


def insert_channel(tx: Tx, channel: Channel, secrets: JsonObject) -> None:
    tx.execute(
        channels.insert().values(
            id=channel.id,
            org_id=channel.org_id,
            type=channel.type.value,
            name=channel.name,
            customer_window=channel.customer_window,
            config=json.dumps(channel.config),
            secrets=json.dumps(secrets),
            public_key=channel.config.get("key"),
            created_at=channel.created_at,
        )
    )


def update_channel(tx: Tx, channel: Channel, secrets: JsonObject) -> None:
    tx.execute(
        channels.update()
        .where(channels.c.id == channel.id)
        .values(
            name=channel.name,
            customer_window=channel.customer_window,
            config=json.dumps(channel.config),
            secrets=json.dumps(secrets),
            public_key=channel.config.get("key"),
        )
    )


_GET = Query(
    sa.select(channels).where(channels.c.org_id == param("org_id"), channels.c.id == param("id"))
)


def get_channel(tx: Tx, org_id: str, channel_id: str) -> Channel | None:
    row = tx.run(_GET, {"org_id": org_id, "id": channel_id}).first()
    return None if row is None else _channel(row)


def get_channel_secrets(tx: Tx, channel_id: str) -> JsonObject:
    row = tx.execute(sa.select(channels.c.secrets).where(channels.c.id == channel_id)).first()
    return {} if row is None else dict(json.loads(row.secrets))


def list_channels(tx: Tx, org_id: str, *, after: str | None, limit: int) -> list[Channel]:
    query = sa.select(channels).where(channels.c.org_id == org_id)
    if after is not None:
        query = query.where(channels.c.id > after)
    return [_channel(r) for r in tx.execute(query.order_by(channels.c.id).limit(limit + 1))]


_WITH_SECRETS = Query(sa.select(channels).where(channels.c.id == param("id")))


def get_channel_with_secrets(tx: Tx, channel_id: str) -> tuple[Channel, JsonObject] | None:
    """A channel by id alone, with its secrets: for a provider's calls, which name the channel in
    their URL and prove themselves with a secret."""
    row = tx.run(_WITH_SECRETS, {"id": channel_id}).first()
    return None if row is None else (_channel(row), dict(json.loads(row.secrets)))


_BY_PUBLIC_KEY = Query(sa.select(channels).where(channels.c.public_key == param("key")))


def get_channel_by_public_key(tx: Tx, key: str) -> Channel | None:
    row = tx.run(_BY_PUBLIC_KEY, {"key": key}).first()
    return None if row is None else _channel(row)
