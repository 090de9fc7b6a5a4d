"""Send-message taken apart: the same route cut short at each stage, measured over HTTP.

Where does a send's time go, against the bare Starlette + sqlite3 insert? The server here is
chatflow's own app, served as `chatflow serve` serves it, with four more routes that share the
send route's whole path to the use case (compiled route, auth, JSON body, the database) and stop
at a stage:

    answer      auth and body, then a constant answer
    empty-write and an empty job through the group commit
    one-row     and a job inserting one row (a durable group commit, as the baseline's insert)
    use-case    and the send-message use case itself, then a constant answer

then the real route (`send`), and the bare insert. Each is loaded with wrk at one concurrency,
in alternating rounds (the machine's speed drifts within minutes), with the server pinned to one
core and wrk to the other. Printed per stage: the median req/s, the server's CPU per request and
how busy its event loop's thread was.

    python -m bench.send_anatomy                      # 16 chatrooms, c=16, 3 rounds of 5 s
    python -m bench.send_anatomy --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response
from tests.reliability.kill_harness import Api

from bench import loadgen
from bench.http_api import INSERT_REQUESTS, RESULTS_DIR, discover, send_requests, set_up_rooms
from bench.loadgen import Request
from bench.servers import (
    Server,
    baseline_server,
    chatflow_server,
    free_port,
    parse_welcome,
)
from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Db
from chatflow.api.respond import json_response
from chatflow.api.route_index import RouteIndex
from chatflow.app import create_app as create_chatflow_app
from chatflow.config import Settings
from chatflow.services import messages
from chatflow.storage.database import Tx

STAGES = ("answer", "empty-write", "one-row", "use-case")
ROUTE = "/bench/chatrooms/{chatroom_id}/messages/"


def create_app(database_url: str) -> Any:
    """chatflow's app with the stage routes beside the real ones, indexed like them."""

    def insert_one_row(tx: Tx, text: str) -> None:
        # The driver's own execute, as the baseline's and chatflow's hot-path statements run.
        driver = tx.conn.connection.driver_connection
        assert driver is not None
        driver.execute("INSERT INTO bench_rows (text) VALUES (?)", (text,))

    jobs: dict[str, Callable[[Tx, CurrentActor, str, str], object] | None] = {
        "answer": None,
        "empty-write": lambda tx, actor, room, text: None,
        "one-row": lambda tx, actor, room, text: insert_one_row(tx, text),
        "use-case": lambda tx, actor, room, text: messages.do_send_message(
            tx, actor, room, text=text
        ),
    }
    router = APIRouter(route_class=CompiledRoute)
    for stage, job in jobs.items():

        def endpoint_for(
            job: Callable[[Tx, CurrentActor, str, str], object] | None,
        ) -> Callable[..., Any]:
            async def endpoint(
                chatroom_id: str, body: schemas.MessageCreate, actor: CurrentActor, db: Db
            ) -> Response:
                if job is not None:
                    await db.write(lambda tx: job(tx, actor, chatroom_id, body.text))
                return json_response({"chatroom_id": chatroom_id, "text": body.text}, 201)

            return endpoint

        router.post(ROUTE + stage, status_code=201)(endpoint_for(job))
    app = create_chatflow_app(Settings(database_url=database_url))
    index, *routes = app.router.routes
    assert isinstance(index, RouteIndex)
    routes += router.routes
    assert all(getattr(r, "compiled", False) for r in router.routes)
    app.router.routes[:] = [RouteIndex(routes), *routes]
    return app


def add_rows_table(database_url: str) -> None:
    """The table the one-row stage inserts into, as the baseline's: an integer key and a text."""
    with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, text TEXT)")
        conn.commit()


def serve(database_url: str, port: int) -> None:
    """The stage server's own process (`--serve`)."""
    import uvicorn

    from chatflow.cli import freeze_startup_heap, uvicorn_options

    add_rows_table(database_url)
    app = create_app(database_url)
    freeze_startup_heap()
    settings = Settings(database_url=database_url, host="127.0.0.1", port=port)
    uvicorn.run(app, **uvicorn_options(settings, log_level="warning", access_log=False))


@dataclass(frozen=True, slots=True)
class Round:
    stage: str
    rps: float
    cpu_us: float
    loop_busy_pct: float
    p99_ms: float
    errors: int


def thread_cpu_seconds(pid: int, tid: int) -> float:
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    wrk: str,
    stage: str,
    server: Server,
    requests: list[Request],
    *,
    concurrency: int,
    seconds: int,
    cpus: set[int] | None,
) -> Round:
    cpu, loop = server.cpu_seconds(), thread_cpu_seconds(server.pid, server.pid)
    result = loadgen.run(
        wrk, server.base_url, requests, concurrency=concurrency, seconds=seconds, cpus=cpus
    )
    cpu, loop = server.cpu_seconds() - cpu, thread_cpu_seconds(server.pid, server.pid) - loop
    done = max(result.requests, 1)
    return Round(
        stage=stage,
        rps=result.rps,
        cpu_us=cpu / done * 1e6,
        loop_busy_pct=100 * loop / result.seconds,
        p99_ms=result.p99_ms,
        errors=result.errors,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.send_anatomy", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per stage and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rooms", type=int, default=16, help="chatrooms the sends spread over")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and wrk")
    parser.add_argument("--serve", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0

    wrk = loadgen.ensure_wrk()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    server_cpus, wrk_cpus = ({0}, {1}) if pin else (None, None)
    work = Path(tempfile.mkdtemp(prefix="send-anatomy-"))
    url = f"sqlite:///{work}/chatflow.db"
    rounds: list[Round] = []
    with contextlib.ExitStack() as stack:
        print("send-anatomy: the demo organization and its chatrooms, through the API", flush=True)
        setup_server = chatflow_server(
            url, log_path=work / "chatflow.log", cpus=server_cpus, env=os.environ
        )
        setup_server.start()
        welcome = parse_welcome(setup_server.output())
        api = stack.enter_context(contextlib.closing(Api(setup_server.base_url, welcome.api_key)))
        org_id, admin_id = discover(api)
        setup = set_up_rooms(api, org_id, admin_id, welcome.channel_id, args.rooms)
        setup_server.stop()

        port = free_port()
        server = Server(
            "chatflow with the stage routes",
            [sys.executable, "-m", "bench.send_anatomy", "--serve", url, "--port", str(port)],
            port=port,
            log_path=work / "stages.log",
            cpus=server_cpus,
            ready_path="/healthz",
        )
        server.start()
        stack.callback(server.stop)
        insert = baseline_server(work / "baseline.db", log_path=work / "b.log", cpus=server_cpus)
        insert.start()
        stack.callback(insert.stop)

        sends = send_requests(api, setup)
        plan: list[tuple[str, Server, list[Request]]] = [
            (
                stage,
                server,
                [
                    Request("POST", ROUTE.format(chatroom_id=r) + stage, s.headers, s.body)
                    for r, s in zip(setup.room_ids, sends, strict=True)
                ],
            )
            for stage in STAGES
        ]
        plan += [("send", server, sends), ("bare insert", insert, INSERT_REQUESTS)]
        for _, target, requests in plan:  # every route answers before anything is measured
            loadgen.run(wrk, target.base_url, requests, concurrency=1, seconds=1, cpus=wrk_cpus)
        for n in range(args.rounds):
            for stage, target, requests in plan:
                measured = measure(
                    wrk,
                    stage,
                    target,
                    requests,
                    concurrency=args.concurrency,
                    seconds=args.duration,
                    cpus=wrk_cpus,
                )
                if measured.errors:
                    raise RuntimeError(f"{stage}: {measured.errors} errors; logs in {work}")
                rounds.append(measured)
                print(
                    f"  round {n + 1}  {stage:12s} {measured.rps:9,.0f} req/s  "
                    f"{measured.cpu_us:6.1f} µs CPU/req  loop {measured.loop_busy_pct:3.0f} %",
                    flush=True,
                )
    insert_rps = statistics.median(r.rps for r in rounds if r.stage == "bare insert")
    print(
        f"\nsend-message taken apart, c={args.concurrency}, {args.rooms} chatrooms, "
        f"medians of {args.rounds} rounds of {args.duration} s"
    )
    print(f"{'stage':14s} {'req/s':>9s} {'of insert':>10s} {'CPU/req':>9s} {'loop busy':>10s}")
    for stage, _, _ in plan:
        mine = [r for r in rounds if r.stage == stage]
        rps = statistics.median(r.rps for r in mine)
        print(
            f"{stage:14s} {rps:9,.0f} {100 * rps / insert_rps:9.1f}% "
            f"{statistics.median(r.cpu_us for r in mine):7.1f}µs "
            f"{statistics.median(r.loop_busy_pct for r in mine):9.0f}%"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"send_anatomy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        **loadgen.run_meta(pinned=pin),
        "options": vars(args),
        "rounds": [asdict(r) for r in rounds],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
