"""The `chatflow` command: serve, worker, migrate."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chatflow.clock import SystemClock
from chatflow.config import Settings
from chatflow.services import accounts
from chatflow.services.passwords import hash_password
from chatflow.storage.database import Database
from chatflow.storage.migrate import upgrade

if TYPE_CHECKING:
    from fastapi import FastAPI

DEMO_ADMIN_EMAIL = "admin@example.com"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for name in ("database_url", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)  # type: ignore[arg-type]


def _bootstrap(settings: Settings) -> accounts.Bootstrap | None:
    """On first start, create the demo organization; afterwards, nothing."""
    database = Database(settings.database_url, SystemClock())
    try:
        if not database.read_sync(accounts.is_empty):
            return None
        password = secrets.token_urlsafe(12)
        password_hash = hash_password(password)
        return database.write_sync(
            lambda tx: accounts.do_bootstrap(
                tx,
                org_name="Demo",
                admin_email=DEMO_ADMIN_EMAIL,
                admin_password=password,
                password_hash=password_hash,
            )
        )
    finally:
        database.close()


def _print_welcome(settings: Settings, made: accounts.Bootstrap) -> None:
    base = f"http://{settings.host}:{settings.port}"
    print(
        f"""
chatflow: created the demo organization "{made.organization.name}".
  Admin login     {made.admin.email} / {made.admin_password}
  API key         {made.api_key}
  Sandbox channel {made.channel.id}
  (The password and the key are shown this once: keep them.)

Try it:
  curl -s {base}/v1/me -H "Authorization: Bearer {made.api_key}"
API reference: {base}/docs
""",
        flush=True,
    )


def serving_app() -> FastAPI:
    """The app of one process of `chatflow serve --workers N`: uvicorn calls this factory in
    each worker process, which reads its settings from the environment the parent set."""
    from chatflow.app import create_app

    app = create_app(Settings())
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    # Everything built so far lives as long as the process: keep it out of the collector's
    # full passes, and collect the young generation less often. Full passes over a large heap
    # were the long tail of request latency.
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 20, 50)


def uvicorn_options(settings: Settings, *, log_level: str, access_log: bool) -> dict[str, Any]:
    """How `chatflow serve` runs uvicorn (the benchmarks serve their apps the same way)."""
    from chatflow.api.http_protocol import HttpProtocol

    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "access_log": access_log,
        # asyncio's own loop, not uvloop: at the same throughput, uvloop let some connections
        # starve under load (list pages at concurrency 64: p99 800 ms against 48 ms).
        "loop": "asyncio",
        "http": HttpProtocol,
    }


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.workers < 1:
        print("chatflow serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and not settings.redis_url:
        print(
            "chatflow serve: --workers needs CHATFLOW_REDIS_URL, because live events fan out "
            "across processes through Redis; without it the server is one process. "
            "Set CHATFLOW_REDIS_URL (and PostgreSQL) to run several.",
            file=sys.stderr,
        )
        return 2
    # Once, here, before any worker starts.
    upgrade(settings.database_url)
    made = _bootstrap(settings)
    if made is not None:
        _print_welcome(settings, made)
    import uvicorn

    processes = "" if args.workers == 1 else f", {args.workers} processes"
    print(
        f"chatflow: serving on http://{settings.host}:{settings.port} "
        f"({settings.database_url.split('://')[0]}{processes})",
        flush=True,
    )
    options = uvicorn_options(settings, log_level=args.log_level, access_log=args.access_log)
    if args.workers == 1:
        from chatflow.app import create_app

        app = create_app(settings)
        freeze_startup_heap()
        uvicorn.run(app, **options)
        return 0
    # The workers build their apps from the environment: hand them what the command line set.
    os.environ["CHATFLOW_DATABASE_URL"] = settings.database_url
    os.environ["CHATFLOW_HOST"] = settings.host
    os.environ["CHATFLOW_PORT"] = str(settings.port)
    uvicorn.run("chatflow.cli:serving_app", factory=True, workers=args.workers, **options)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    upgrade(settings.database_url)
    print("chatflow: the database schema is up to date")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    upgrade(settings.database_url)
    from chatflow.background import run_background, webhook_sender
    from chatflow.channels.work import channel_context
    from chatflow.events.bus import create_bus

    clock = SystemClock()
    database = Database(settings.database_url, clock)
    database.start()
    bus = create_bus(settings.redis_url)
    database.on_commit(bus.announce)

    async def run() -> None:
        sender = webhook_sender(settings, clock)
        await bus.start()
        try:
            channels = channel_context(settings, clock, database, bus)
            await run_background(settings, database, bus, sender, clock, channels)
        finally:
            await sender.aclose()
            await bus.close()

    print(
        "chatflow worker: running background work (webhook delivery, channel notifications "
        "and sends, idle close, housekeeping)",
        flush=True,
    )
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        database.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url",
            dest="database_url",
            help="default: $CHATFLOW_DATABASE_URL or sqlite:///./data/chatflow.db",
        )

    serve = sub.add_parser("serve", help="API, web app and background work in one process")
    common(serve)
    serve.add_argument("--host", help="default: 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: 8000")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes; more than one needs CHATFLOW_REDIS_URL",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="background work alone")
    common(worker)
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    common(migrate)
    migrate.set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
