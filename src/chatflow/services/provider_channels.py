"""Channels as their providers' calls find them: by id alone, with their secrets, cached for a
few seconds so that a webhook call costs no read."""

from __future__ import annotations

import time

from chatflow.domain.models import Channel, JsonObject
from chatflow.storage import channels as store
from chatflow.storage.database import Database

ChannelWithSecrets = tuple[Channel, JsonObject]


class ProviderChannels:
    """A channel read here is trusted for `cache_seconds`. A change made through this process
    (`forget`) takes effect at once; one made through another process within that time. A
    caller that finds the cached secret wrong asks again with `fresh=True`, so a rotated secret
    is honoured at once everywhere; only the secret it replaced keeps working for that time."""

    def __init__(self, database: Database, cache_seconds: float) -> None:
        self._database = database
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[ChannelWithSecrets, float]] = {}

    async def get(self, channel_id: str, *, fresh: bool = False) -> ChannelWithSecrets | None:
        if not fresh:
            cached = self._cache.get(channel_id)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
        found = await self._database.read(lambda tx: store.get_channel_with_secrets(tx, channel_id))
        if found is None:
            # Unknown ids are not kept: anyone can make up as many as they like.
            self._cache.pop(channel_id, None)
        else:
            self._cache[channel_id] = (found, time.monotonic() + self.cache_seconds)
        return found

    def forget(self, channel_id: str) -> None:
        self._cache.pop(channel_id, None)
