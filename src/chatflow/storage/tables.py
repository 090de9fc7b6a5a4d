"""The schema, as SQLAlchemy Core tables. Alembic migrations are written against it.

Only portable column types are used (text, integers, booleans), so the same statements run
unchanged on SQLite and PostgreSQL and can be executed through the driver without type processing:
times are integer milliseconds since the epoch and JSON documents are stored as text.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Ids sort by creation time as strings; PostgreSQL must compare them bytewise, whatever the
# database's collation.
Id = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")
Millis = sa.BigInteger
Json = sa.Text


def _id(name: str = "id", *args: Any, **kwargs: Any) -> sa.Column[str]:
    return sa.Column(name, Id, *args, **kwargs)


organizations = sa.Table(
    "organizations",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("idle_close_seconds", sa.Integer, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
)

agents = sa.Table(
    "agents",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Index(None, "org_id", "id"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    _id(primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _id("agent_id", sa.ForeignKey("agents.id"), nullable=False),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("expires_at", Millis, nullable=False),
    sa.Column("revoked_at", Millis, nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("last_used_at", Millis, nullable=True),
    sa.Column("revoked_at", Millis, nullable=True),
    sa.Index(None, "org_id", "id"),
)

contacts = sa.Table(
    "contacts",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("phone", sa.String(20), nullable=True),
    sa.Column("first_name", sa.String(128), nullable=True),
    sa.Column("last_name", sa.String(128), nullable=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("external_id", sa.String(128), nullable=True),
    sa.Column("custom_attributes", Json, nullable=False),
    sa.Column("opted_in", sa.Boolean, nullable=False),
    sa.Column("opted_in_at", Millis, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.UniqueConstraint("org_id", "phone"),
    sa.Index(None, "org_id", "id"),
)

channels = sa.Table(
    "channels",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("customer_window", sa.Boolean, nullable=False),
    sa.Column("config", Json, nullable=False),
    sa.Column("secrets", Json, nullable=False),
    # The key in the public URL of a channel its customers open themselves (web chat's page).
    sa.Column("public_key", sa.String(64), nullable=True, unique=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Index(None, "org_id", "id"),
)

chatrooms = sa.Table(
    "chatrooms",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    _id("contact_id", sa.ForeignKey("contacts.id"), nullable=False),
    _id("channel_id", sa.ForeignKey("channels.id"), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("closed_at", Millis, nullable=True),
    sa.Column("last_activity_at", Millis, nullable=False),
    sa.Column("bump_key", sa.BigInteger, nullable=False),
    sa.Column("window_expires_at", Millis, nullable=True),
    sa.Column("event_seq", sa.BigInteger, nullable=False),
    # R2: at most one open chatroom per contact and channel.
    sa.Index(
        "uq_chatrooms_open_contact_channel",
        "contact_id",
        "channel_id",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
    sa.Index(None, "org_id", "bump_key", "id"),
    sa.Index(None, "status", "last_activity_at"),
    sa.Index(None, "contact_id", "channel_id", "created_at"),
)

participants = sa.Table(
    "participants",
    metadata,
    _id("chatroom_id", sa.ForeignKey("chatrooms.id"), nullable=False),
    _id("agent_id", sa.ForeignKey("agents.id"), nullable=False),
    sa.Column("joined_at", Millis, nullable=False),
    # R3: the order key of the agent's chatroom list lives here, not on the chatroom.
    sa.Column("bump_key", sa.BigInteger, nullable=False),
    sa.Column("unread_count", sa.Integer, nullable=False),
    sa.Column("last_read_at", Millis, nullable=True),
    sa.PrimaryKeyConstraint("chatroom_id", "agent_id"),
    sa.Index(None, "agent_id", "bump_key", "chatroom_id"),
)

pending_assignments = sa.Table(
    "pending_assignments",
    metadata,
    _id("chatroom_id", sa.ForeignKey("chatrooms.id"), nullable=False),
    _id("agent_id", sa.ForeignKey("agents.id"), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.PrimaryKeyConstraint("chatroom_id", "agent_id"),
)

messages = sa.Table(
    "messages",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    _id("chatroom_id", sa.ForeignKey("chatrooms.id"), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("sender_type", sa.String(8), nullable=False),
    _id("sender_id", nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("template", Json, nullable=True),
    sa.Column("button", Json, nullable=True),
    _id("reply_to_message_id", nullable=True),
    sa.Column("relay_response", sa.Boolean, nullable=False),
    sa.Column("bump", sa.Boolean, nullable=False),
    sa.Column("bump_response", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("channel_message_id", sa.String(200), nullable=True),
    sa.Column("channel_timestamp", Millis, nullable=True),
    sa.Column("error", Json, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Index(None, "chatroom_id", "id"),
    # A channel's message id (WhatsApp's wamid) is stored once: a redelivered or concurrent
    # duplicate fails here and is retried into "already received".
    sa.Index(
        "uq_messages_org_channel_message",
        "org_id",
        "channel_message_id",
        unique=True,
        sqlite_where=sa.text("channel_message_id IS NOT NULL"),
        postgresql_where=sa.text("channel_message_id IS NOT NULL"),
    ),
)

templates = sa.Table(
    "templates",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("components", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rejection_reason", sa.String(500), nullable=True),
    # The template's id on the WhatsApp Business Account it was submitted to or synced from.
    sa.Column("external_id", sa.String(64), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.UniqueConstraint("org_id", "name", "language"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "position",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    # The writing transaction's id on PostgreSQL (0 on SQLite, whose writes are serial): readers
    # page in (txid, position) order and only below the oldest running transaction, so an event
    # that commits late is never skipped. See storage/events.py.
    sa.Column("txid", sa.BigInteger, nullable=False),
    _id("id", nullable=False, unique=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    _id("chatroom_id", nullable=True),
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("data", Json, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    # The flow run whose step made the change, as {"flow": id, "run": id, "depth": n}: a flow
    # is not started by its own effects, and chains of flows stop at a depth.
    sa.Column("cause", Json, nullable=True),
    sa.Index(None, "org_id", "txid", "position"),
    sa.Index(None, "txid", "position"),
    sa.Index(None, "chatroom_id", "seq"),
)

# How far each consumer of the whole event log (webhook fan-out, flow triggers) has read it.
consumer_cursors = sa.Table(
    "consumer_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("txid", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("event_types", Json, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    # Why it was disabled: "manual", "gone" (the receiver answered 410), "failing" (5 days).
    sa.Column("disabled_reason", sa.String(16), nullable=True),
    sa.Column("secret", sa.String(100), nullable=False),
    # After a rotation the old secret signs too, until it expires (a day).
    sa.Column("previous_secret", sa.String(100), nullable=True),
    sa.Column("previous_secret_expires_at", Millis, nullable=True),
    # Since when every attempt has failed (None while the last one succeeded).
    sa.Column("failing_since", Millis, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Index(None, "org_id", "id"),
)

_PENDING = sa.text("status = 'pending'")
_FIRST_IN_LINE = sa.text("status = 'pending' AND attempts = 0")
_HELD = sa.text("status = 'held'")

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    _id(
        "endpoint_id",
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _id("event_id", sa.ForeignKey("events.id"), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    _id("chatroom_id", nullable=True),
    sa.Column("seq", sa.BigInteger, nullable=True),
    # held → pending → succeeded | failed; a redelivery makes it pending again. A delivery is
    # held while an earlier event of its chatroom waits for its first attempt to the endpoint.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Millis, nullable=False),
    # A claimed delivery is invisible to other claimers until then: a worker killed mid-attempt
    # leaves it to be claimed again once the lease runs out.
    sa.Column("locked_until", Millis, nullable=True),
    sa.Column("last_attempt_at", Millis, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.UniqueConstraint("endpoint_id", "event_id"),
    sa.Index(None, "endpoint_id", "id"),
    sa.Index(None, "event_id"),
    sa.Index(None, "updated_at"),
    # Claims take the earliest due in (next_attempt_at, id) order: with both in the index a
    # claim reads its LIMIT rows, not every delivery due at the same millisecond.
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        "id",
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    ),
    # First attempts to one endpoint go out in a chatroom's seq order: the head of each line
    # is pending, the rest of the line is held behind it.
    sa.Index(
        "ix_webhook_deliveries_first_in_line",
        "endpoint_id",
        "chatroom_id",
        "seq",
        sqlite_where=_FIRST_IN_LINE,
        postgresql_where=_FIRST_IN_LINE,
    ),
    sa.Index(
        "ix_webhook_deliveries_held",
        "endpoint_id",
        "chatroom_id",
        "seq",
        sqlite_where=_HELD,
        postgresql_where=_HELD,
    ),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    _id(primary_key=True),
    _id(
        "delivery_id",
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("attempted_at", Millis, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("response_excerpt", sa.String(1024), nullable=True),
    sa.Index(None, "delivery_id", "id"),
    sa.Index(None, "attempted_at"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.PrimaryKeyConstraint("org_id", "key"),
    sa.Index(None, "created_at"),
)

_NOTIFICATION_PENDING = sa.text("status = 'pending'")

# What a channel's provider notified us of (WhatsApp's webhook calls), stored as received before
# it is answered, then processed in the background: a notification is never lost to a crash
# between the answer and its effects, and never makes the provider retry for our slowness.
channel_notifications = sa.Table(
    "channel_notifications",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    _id("channel_id", sa.ForeignKey("channels.id"), nullable=False),
    # The raw body, byte for byte, as its signature was checked.
    sa.Column("body", sa.LargeBinary, nullable=False),
    # pending → processed, or unprocessable once processing failed too often (kept for an
    # operator; its parts that could be applied were not).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("locked_until", Millis, nullable=True),
    sa.Column("received_at", Millis, nullable=False),
    sa.Column("processed_at", Millis, nullable=True),
    # What processing made of it: counts of what was applied, the parts it did not understand,
    # or the error that stopped it.
    sa.Column("outcome", Json, nullable=True),
    sa.Index(
        "ix_channel_notifications_pending",
        "id",
        sqlite_where=_NOTIFICATION_PENDING,
        postgresql_where=_NOTIFICATION_PENDING,
    ),
    sa.Index(None, "channel_id", "id"),
    sa.Index(None, "processed_at"),
)

# Outbound messages waiting to leave through their channel's provider (WhatsApp), written in the
# transaction of the message: the send happens after commit, never inside the request, and a row
# stays until the provider accepted or refused the message for good.
outbound_sends = sa.Table(
    "outbound_sends",
    metadata,
    _id("message_id", sa.ForeignKey("messages.id"), primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    _id("channel_id", sa.ForeignKey("channels.id"), nullable=False),
    _id("chatroom_id", sa.ForeignKey("chatrooms.id"), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Millis, nullable=False),
    # A claimed send is invisible to other claimers until then (a killed worker's send is
    # claimed again once its lease runs out).
    sa.Column("locked_until", Millis, nullable=True),
    sa.Column("last_error", Json, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Index(None, "next_attempt_at", "message_id"),  # claims' order: see webhook_deliveries
)

# Delivery statuses the provider reported for a message id we have not recorded yet: the
# provider may report "sent" before our own record of its answer has committed. They are applied
# when the message's id is recorded, and forgotten after a day.
early_message_statuses = sa.Table(
    "early_message_statuses",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("channel_message_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("timestamp", Millis, nullable=False),
    sa.Column("error", Json, nullable=True),
    sa.Column("received_at", Millis, nullable=False),
    sa.Index(None, "org_id", "channel_message_id"),
    sa.Index(None, "received_at"),
)

# Web-chat visitors: the customer behind a browser, known by a token the page keeps.
webchat_visitors = sa.Table(
    "webchat_visitors",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    _id("channel_id", sa.ForeignKey("channels.id"), nullable=False),
    _id("contact_id", sa.ForeignKey("contacts.id"), nullable=False),
    # SHA-256 of the visitor's token, hex: the token itself is only ever in the browser.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("last_seen_at", Millis, nullable=False),
    sa.Index(None, "channel_id", "contact_id"),
)

# -- flows -------------------------------------------------------------------------------------

flows = sa.Table(
    "flows",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("draft", Json, nullable=False),
    # Saving a draft names the revision it was made from: a stale one is refused (409).
    sa.Column("revision", sa.Integer, nullable=False),
    # The deployed version, whose trigger starts runs; NULL: not deployed.
    _id("version_id", nullable=True),
    # The deployed version's trigger type, so a trigger finds its flows without reading them.
    sa.Column("trigger_type", sa.String(32), nullable=True),
    sa.Column("webhook_secret", sa.String(64), nullable=False),
    # Schedule flows: when the next run is due (claimed with SKIP LOCKED, like a timer).
    sa.Column("next_fire_at", Millis, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Index(None, "org_id", "trigger_type"),
    sa.Index(None, "next_fire_at"),
)

flow_versions = sa.Table(
    "flow_versions",
    metadata,
    _id(primary_key=True),
    _id("flow_id", sa.ForeignKey("flows.id"), nullable=False),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("document", Json, nullable=False),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.UniqueConstraint("flow_id", "number"),
)

flow_runs = sa.Table(
    "flow_runs",
    metadata,
    _id(primary_key=True),
    _id("org_id", sa.ForeignKey("organizations.id"), nullable=False),
    _id("flow_id", sa.ForeignKey("flows.id"), nullable=False),
    _id("version_id", sa.ForeignKey("flow_versions.id"), nullable=False),
    _id("chatroom_id", nullable=True),
    # running | waiting | completed | failed | cancelled | skipped
    sa.Column("status", sa.String(16), nullable=False),
    # "<flow>:<chatroom>" while the run is running or waiting, else NULL: the unique index is
    # what makes one run per flow and chatroom hold under concurrent triggers.
    sa.Column("active_key", sa.String(90), nullable=True, unique=True),
    sa.Column("trigger", Json, nullable=False),
    sa.Column("state", Json, nullable=False),
    # reply | delay | http, while waiting
    sa.Column("wait_kind", sa.String(8), nullable=True),
    _id("wait_chatroom_id", nullable=True),
    sa.Column("cancel_on_agent_reply", sa.Boolean, nullable=False),
    sa.Column("wake_at", Millis, nullable=True),
    sa.Column("depth", sa.Integer, nullable=False),
    sa.Column("step_count", sa.Integer, nullable=False),
    sa.Column("error", Json, nullable=True),
    sa.Column("started_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("ended_at", Millis, nullable=True),
    sa.Index(None, "wake_at"),
    sa.Index(None, "wait_chatroom_id"),
    sa.Index(None, "flow_id", "id"),
    sa.Index(None, "chatroom_id"),
    sa.Index(None, "ended_at"),
)

flow_run_steps = sa.Table(
    "flow_run_steps",
    metadata,
    _id("run_id", sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("params", Json, nullable=False),
    sa.Column("outcome", sa.String(64), nullable=True),
    sa.Column("output", Json, nullable=False),
    sa.Column("error", Json, nullable=True),
    sa.Column("started_at", Millis, nullable=False),
    sa.Column("ended_at", Millis, nullable=False),
)
