"""Resolving bearer tokens to actors, with a short cache so a request costs no extra query."""

from __future__ import annotations

import logging
import time

from chatflow.domain.access import Actor
from chatflow.domain.errors import AuthenticationError
from chatflow.services import accounts
from chatflow.storage.database import Database

log = logging.getLogger(__name__)

# API keys record when they were last used, to this resolution, without a write per request.
LAST_USED_RESOLUTION_MILLIS = 60_000


class Authenticator:
    def __init__(self, database: Database, cache_seconds: float) -> None:
        self._database = database
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Actor, float]] = {}

    async def authenticate(self, token: str | None) -> Actor:
        if not token:
            raise AuthenticationError(
                "Send an API key or a session token: Authorization: Bearer <token>"
            )
        digest = accounts.token_hash(token)
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        found = await self._database.read(lambda tx: accounts.authenticate(tx, token))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (found.actor, time.monotonic() + self._cache_seconds)
        key_id = found.actor.api_key_id
        now = self._database.clock.now().timestamp() * 1000
        if key_id is not None and (
            found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION_MILLIS
        ):
            # Awaited, not fired and forgotten: once a request is answered, `last_used_at` shows
            # it. It costs one write per key per LAST_USED_RESOLUTION_MILLIS.
            await self._touch(key_id)
        return found.actor

    async def _touch(self, key_id: str) -> None:
        try:
            await self._database.write(lambda tx: accounts.do_touch_api_key(tx, key_id))
        except Exception:
            log.exception("Could not record the use of API key %s", key_id)

    def forget(self, token: str | None = None, *, actor_id: str | None = None) -> None:
        """Drop cached verdicts: of one token, or of every token of one key or agent."""
        if token is not None:
            self._cache.pop(accounts.token_hash(token), None)
        if actor_id is not None:
            for digest, (actor, _) in list(self._cache.items()):
                if actor.id == actor_id:
                    self._cache.pop(digest, None)
