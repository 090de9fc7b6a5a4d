"""Bulk-loading an organization with many chatrooms, straight into the database.

Creating 100,000 chatrooms through the API would take longer than the benchmark itself, so rows
are inserted with bulk SQL while the server is stopped, shaped exactly as the app writes them
(`chatflow.storage.tables`): one contact per chatroom, the chatroom, and the agent as its
participant. The R3 order keys are realistic: distinct microsecond bump times spread over the last
30 days, in an order unrelated to creation order (a chatroom created long ago may have been
bumped a minute ago), and all of them before the start of the server, whose order keys continue
from the largest one.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from chatflow.storage.tables import chatrooms, contacts, participants

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DAY_MS = 24 * 3600 * 1000
_BATCH = 5_000


def make_id(prefix: str, millis: int, rng: random.Random) -> str:
    """An id in the app's format: 48 bits of milliseconds and 80 random bits, Crockford base32."""
    value = (millis << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def sqlalchemy_url(database_url: str) -> sa.URL:
    url = sa.make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


@dataclass(frozen=True, slots=True)
class Loaded:
    chatrooms: int
    seconds: float


def load_chatrooms(
    database_url: str,
    *,
    org_id: str,
    channel_id: str,
    agent_id: str,
    count: int,
    seed: int = 20261121,
) -> Loaded:
    """Insert `count` contacts, chatrooms and participant rows (the agent) for the organization.

    Call while no server is running on the database. On PostgreSQL the tables are vacuumed and
    analyzed afterwards, as autovacuum would do after such a load.
    """
    started = time.monotonic()
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    span_us = 30 * _DAY_MS * 1000
    first_us = (now_ms - 60_000) * 1000 - span_us
    step = max(1, span_us // max(count, 1))
    keys = [first_us + i * step + rng.randrange(step) for i in range(count)]
    rng.shuffle(keys)

    contact_rows: list[dict[str, Any]] = []
    chatroom_rows: list[dict[str, Any]] = []
    participant_rows: list[dict[str, Any]] = []
    for n, key in enumerate(keys):
        bumped_ms = key // 1000
        created_ms = bumped_ms - rng.randrange(14 * _DAY_MS)
        contact_ms = created_ms - rng.randrange(_DAY_MS)
        contact_id = make_id("ct", contact_ms, rng)
        chatroom_id = make_id("cr", created_ms, rng)
        closed = rng.random() < 0.3
        opted_in = rng.random() < 0.8
        contact_rows.append(
            {
                "id": contact_id,
                "org_id": org_id,
                "phone": f"+1555{n:07d}",
                "first_name": f"Customer {n}",
                "last_name": None,
                "email": None,
                "external_id": f"crm-{n}",
                "custom_attributes": "{}",
                "opted_in": opted_in,
                "opted_in_at": contact_ms if opted_in else None,
                "created_at": contact_ms,
                "updated_at": contact_ms,
            }
        )
        chatroom_rows.append(
            {
                "id": chatroom_id,
                "org_id": org_id,
                "contact_id": contact_id,
                "channel_id": channel_id,
                "status": "closed" if closed else "open",
                "created_at": created_ms,
                "closed_at": bumped_ms if closed else None,
                "last_activity_at": bumped_ms,
                "bump_key": key,
                "window_expires_at": None,
                "event_seq": 0,
            }
        )
        participant_rows.append(
            {
                "chatroom_id": chatroom_id,
                "agent_id": agent_id,
                "joined_at": created_ms,
                "bump_key": key,
                "unread_count": 0 if closed else rng.randrange(4),
                "last_read_at": None,
            }
        )

    engine = sa.create_engine(sqlalchemy_url(database_url))
    try:
        with engine.begin() as conn:
            for table, rows in (
                (contacts, contact_rows),
                (chatrooms, chatroom_rows),
                (participants, participant_rows),
            ):
                for start in range(0, len(rows), _BATCH):
                    conn.execute(table.insert(), rows[start : start + _BATCH])
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in (contacts, chatrooms, participants):
                    conn.exec_driver_sql(f"VACUUM ANALYZE {table.name}")
    finally:
        engine.dispose()
    return Loaded(chatrooms=count, seconds=time.monotonic() - started)


def count_chatrooms(database_url: str, org_id: str) -> int:
    engine = sa.create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.select(sa.func.count())
                .select_from(chatrooms)
                .where(chatrooms.c.org_id == org_id)
            ).scalar_one()
    finally:
        engine.dispose()
    return int(found)
