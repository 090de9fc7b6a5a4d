"""Settings, from the environment (`CHATFLOW_…`) or the command line."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATFLOW_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./data/chatflow.db",
        description="sqlite:///path/to/file.db (default) or postgresql://user@host/db",
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:port/0: enables fan-out across processes"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    background_work: bool = Field(
        default=True, description="Run background work (idle close, …) inside `serve`."
    )
    secure_cookies: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind HTTPS)."
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        description="How long a verified token, or a channel's secrets for its provider's "
        "webhook, is trusted before it is read again; a revocation or a change takes effect at "
        "once in the process that made it, and within this time in others.",
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated networks (CIDR) webhook URLs may resolve into although "
        "they are loopback, private, link-local or otherwise internal, e.g. 127.0.0.0/8 for "
        "a receiver on this machine. Empty: only public addresses.",
    )
    webhook_timeout_seconds: float = Field(
        default=15.0, description="How long one webhook attempt may take, connect to last byte."
    )
    webhook_concurrency: int = Field(
        default=32, description="Webhook attempts in flight at once, per process."
    )
    stream_heartbeat_seconds: float = Field(
        default=20.0, description="Idle time after which the live stream sends a heartbeat."
    )
    stream_poll_seconds: float = Field(
        default=1.0,
        description="How often the live stream reads the event log without a wake-up: a lost "
        "wake-up delays events by at most this.",
    )
    stream_max_pending: int = Field(
        default=10_000,
        description="Events a live-stream client may fall behind before it is closed (code "
        "4429) and told to resume from its last cursor.",
    )
    whatsapp_graph_base_url: str = Field(
        default="https://graph.facebook.com",
        description="Where WhatsApp channels reach Meta's Graph API (each channel names its API "
        "version, phone number and account).",
    )
    whatsapp_timeout_seconds: float = Field(
        default=20.0, description="How long one Graph API request may take."
    )
    flow_run_retention_days: float = Field(
        default=14.0,
        description="Ended flow runs and their steps are kept this long, then pruned; runs "
        "still going are never pruned.",
    )
