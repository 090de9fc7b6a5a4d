"""The baselines: a bare Starlette app whose POST inserts one row with the stdlib `sqlite3` module,
and a FastAPI hello world.

The Starlette app is what "the fastest honest Python web app with a database" looks like on this
stack, served by uvicorn with httptools and no access log like `chatflow serve`, on uvloop (the
fastest loop; chatflow itself runs on asyncio's loop, which is fairer under load),
so the ratio chatflow / baseline measures what the product costs on top of the HTTP stack. The
FastAPI hello world (no database) shows the framework's own ceiling on the same machine.

    python -m bench.baseline --port 8100 --database /tmp/baseline.db
    python -m bench.baseline --port 8101 --app fastapi-hello
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SQLITE_SETTINGS = "journal_mode=WAL, synchronous=NORMAL, one transaction (one commit) per request"


def create_app(database: str) -> Starlette:
    conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS messages ("
        "id INTEGER PRIMARY KEY, text TEXT NOT NULL, created_at INTEGER NOT NULL)"
    )

    async def insert(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        created_at = time.time_ns() // 1_000_000
        cursor = conn.execute(
            "INSERT INTO messages (text, created_at) VALUES (?, ?)", (body["text"], created_at)
        )
        return JSONResponse({"id": cursor.lastrowid, "created_at": created_at}, status_code=201)

    async def hello(_: Request) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    return Starlette(routes=[Route("/messages", insert, methods=["POST"]), Route("/hello", hello)])


def create_fastapi_hello() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--app", choices=["starlette-sqlite", "fastapi-hello"], default="starlette-sqlite"
    )
    parser.add_argument("--database", help="SQLite file (created if missing); starlette-sqlite")
    args = parser.parse_args(argv)
    import uvicorn

    if args.app == "fastapi-hello":
        app = create_fastapi_hello()
    elif args.database is None:
        parser.error("--database is needed for the starlette-sqlite app")
    else:
        app = create_app(args.database)
    print(f"baseline: serving {args.app}", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
