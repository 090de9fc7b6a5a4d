"""Alembic, driven from code: `chatflow serve` brings the schema to head before it listens."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from chatflow.storage.database import driver_url, ensure_sqlite_directory

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    rendered = url
    if url.startswith(("postgresql://", "postgres://")):
        rendered = driver_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), revision)
