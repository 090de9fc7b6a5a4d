"""Flow engine benchmark: how fast manual runs start, and how soon a waiting run answers the
customer.

    .venv/bin/python -m bench.flows                                # SQLite, full sizes
    .venv/bin/python -m bench.flows --database sqlite,postgresql
    .venv/bin/python -m bench.flows --quick                        # smoke run, under a minute

For each database, on a fresh one: `chatflow serve` starts with its background work on (the flow
triggers and the timer worker run in the server process, as by default), pinned to CPU 0; this
process (the clients and the live stream) is pinned to CPU 1.

1. **Starts.** A flow with a manual trigger (`chatroom`, input `order_id`) is deployed: set_variable
   `order` = `{inputs.order_id}` → send_message "Order {order} confirmed" → end. `--starts`
   chatrooms are opened by their customer (`POST /v1/contacts`, then `POST /v1/sandbox/inbound`),
   the server is left to go idle, and then `--concurrency` clients start one run per chatroom
   (`POST /v1/flows/{id}/runs`), each sending its next request as soon as the last was answered.
   Each run completes inside its request (the message is sent in the same transaction), so runs
   started per second is completed runs over the wall time from the first request to the last
   answer.
2. **Resume.** A second flow, same trigger: wait_for_reply (24 h timeout) → on `reply`,
   send_message "Thanks: {steps.ask.reply.text}". `--waiting` chatrooms are opened by their
   customer and each gets a run, left waiting (the setup's time is printed, not measured). With
   the server idle again and this process subscribed to `WS /v1/stream` with the API key (the
   whole organization), `--samples` of those chatrooms, drawn at random, get the customer's reply
   (`POST /v1/sandbox/inbound`), one at a time with `--pause` between them. The resume latency is
   from the start of that POST to the read of the bot's `message.created` frame for "Thanks: …"
   on the stream; the frame of the customer's own message is timed too, which splits it into the
   inbound path and the flow engine's part.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import random
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from tests.reliability.kill_harness import ChatflowProcess, fresh_database, server_env
from websockets.asyncio.client import ClientConnection

from bench import loadgen
from bench.live_stream import Latency, open_stream
from bench.rawhttp import ConnectionPool, Response, build_request
from bench.webhook_drain import _print_profile as print_profile
from bench.whatsapp_inbound import profile_every_thread

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
TARGET_RUNS_PER_SECOND = 300.0  # three-step manual runs started (and completed), from the issue
TARGET_RESUME_P99_MS = 50.0  # reply sent → the bot's answer on the stream, from the issue
SETTLE_CPU_PCT = 5.0
"""The server counts as idle once it uses less than this share of a core over SETTLE_WINDOW."""
SETTLE_WINDOW_SECONDS = 0.5
SETTLE_DEADLINE_SECONDS = 120.0
FRAME_DEADLINE_SECONDS = 10.0
"""A reply whose answer has not reached the stream after this long counts as missing."""
KEEPALIVE_SAFE_SECONDS = 3.0
"""Connections idle longer than this are replaced before the next request (uvicorn closes
keep-alive connections idle for 5 s)."""
VERIFIED_ROOMS = 10  # chatrooms of the start phase whose bot message is read back
REPLY_PREFIX = "reply"
IDLE_SECONDS = 3.0

STARTS_DOCUMENT_NODES: list[dict[str, Any]] = [
    {
        "id": "remember",
        "action": "set_variable",
        "params": {"name": "order", "value": "{inputs.order_id}"},
    },
    {
        "id": "confirm",
        "action": "send_message",
        "params": {"message": "Order {order} confirmed", "chatInstanceId": "{chatInstanceId}"},
    },
    {"id": "done", "action": "end", "params": {}},
]
STARTS_DOCUMENT_EDGES = [
    {"from": "remember", "outcome": "next", "to": "confirm"},
    {"from": "confirm", "outcome": "sent", "to": "done"},
]
RESUME_DOCUMENT_NODES: list[dict[str, Any]] = [
    {
        "id": "ask",
        "action": "wait_for_reply",
        "params": {"chatInstanceId": "{chatInstanceId}", "timeout_seconds": 86_400},
    },
    {
        "id": "thanks",
        "action": "send_message",
        "params": {
            "message": "Thanks: {steps.ask.reply.text}",
            "chatInstanceId": "{chatInstanceId}",
        },
    },
]
RESUME_DOCUMENT_EDGES = [{"from": "ask", "outcome": "reply", "to": "thanks"}]


def manual_flow(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "trigger": {"type": "manual", "params": {"chatroom": True, "inputs": ["order_id"]}},
        "start": nodes[0]["id"],
        "nodes": nodes,
        "edges": edges,
    }


@dataclass(frozen=True, slots=True)
class Options:
    databases: list[str]
    starts: int
    concurrency: int
    waiting: int
    samples: int
    warmup: int
    pause: float
    setup_concurrency: int
    postgres_url: str
    pin: bool
    nice: int
    profile: bool
    keep: bool
    check: bool
    seed: int


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flows",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite, postgresql, or both comma-separated, in turn (default %(default)s)",
    )
    parser.add_argument(
        "--starts", type=int, default=2_000, help="runs started, one per chatroom (%(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="clients starting runs at once, each on its own connection (%(default)s)",
    )
    parser.add_argument(
        "--waiting",
        type=int,
        default=10_000,
        help="runs left waiting for a reply, one per chatroom (%(default)s)",
    )
    parser.add_argument(
        "--samples", type=int, default=300, help="replies timed, one at a time (%(default)s)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="replies sent and waited for before the samples, not counted (%(default)s)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.05,
        help="seconds between one reply's answer and the next reply (%(default)s)",
    )
    parser.add_argument(
        "--setup-concurrency",
        type=int,
        default=16,
        help="chatrooms set up at a time (%(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (200 starts, 300 waiting runs, 30 samples): a smoke test, not a "
        "measurement",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CHATFLOW_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"),
        help="a server where a fresh database is created and dropped "
        "(default: $CHATFLOW_BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server to CPU 0 and this process to CPU 1",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the server and this process at this niceness, e.g. -10 (root) so that other "
        "work on a shared machine disturbs the figures less; PostgreSQL is not reniced",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the server under cProfile, every thread on its CPU clock, and write the "
        "statistics to bench/results/ (the profiler slows the server down: not for the record)",
    )
    parser.add_argument("--seed", type=int, default=1, help="picks the sampled chatrooms")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed on any database"
    )
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.database.split(",") if d.strip()]
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown or not databases:
        parser.error(f"unknown database {', '.join(sorted(unknown))}; use sqlite, postgresql")
    if args.quick:
        args.starts, args.waiting, args.samples, args.warmup = 200, 300, 30, 2
    if min(args.starts, args.concurrency, args.waiting, args.samples, args.setup_concurrency) < 1:
        parser.error("the sizes and concurrencies must be positive")
    if args.samples + args.warmup > args.waiting:
        parser.error("--samples + --warmup must not exceed --waiting")
    if args.pause < 0 or args.warmup < 0:
        parser.error("--pause and --warmup must not be negative")
    return Options(
        databases=databases,
        starts=args.starts,
        concurrency=args.concurrency,
        waiting=args.waiting,
        samples=args.samples,
        warmup=args.warmup,
        pause=args.pause,
        setup_concurrency=args.setup_concurrency,
        postgres_url=args.postgres_url,
        pin=not args.no_pin and (os.cpu_count() or 1) >= 2,
        nice=args.nice,
        profile=args.profile,
        keep=args.keep,
        check=args.check,
        seed=args.seed,
    )


# -- the API, from this process -------------------------------------------------------------------


class Client:
    """The organization's API key over a pool of keep-alive connections (`bench/rawhttp.py`: an
    `httpx` client would cost this process more CPU per request than the server spends)."""

    def __init__(self, port: int, api_key: str, connections: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.auth = {"authorization": f"Bearer {api_key}"}
        self.connections = connections
        self.pool = ConnectionPool("127.0.0.1", port, connections)

    def request(self, method: str, path: str, body: object | None = None) -> bytes:
        return build_request(method, path, host=self.host, headers=self.auth, json_body=body)

    async def ok(
        self, method: str, path: str, body: object | None = None, *, status: int = 200
    ) -> dict[str, Any]:
        response = await self.pool.request(self.request(method, path, body))
        if response.status != status:
            raise RuntimeError(
                f"{method} {path} answered {response.status}, expected {status}: "
                f"{response.body[:500]!r}"
            )
        found: dict[str, Any] = orjson.loads(response.body)
        return found

    async def fresh_connections(self) -> None:
        """New connections, after a pause: the server closes keep-alive connections left idle
        for a few seconds (uvicorn's keep-alive timeout), and a request sent on one of those
        fails."""
        await self.pool.close()
        self.pool = ConnectionPool("127.0.0.1", self.port, self.connections)

    async def close(self) -> None:
        await self.pool.close()


async def deploy_flow(client: Client, name: str, document: dict[str, Any]) -> str:
    flow = await client.ok("POST", "/v1/flows", {"name": name, "document": document}, status=201)
    await client.ok("POST", f"/v1/flows/{flow['id']}/deploy", {"message": "bench"}, status=201)
    return str(flow["id"])


async def open_chatroom(client: Client, channel_id: str, tag: str, index: int) -> str:
    """A new customer's chatroom, opened by the customer's message (the 24-hour window is open,
    so the flow may send free text)."""
    contact = await client.ok(
        "POST",
        "/v1/contacts",
        {"first_name": "Ada", "external_id": f"flows-{tag}-{index}", "opted_in": True},
        status=201,
    )
    first = await client.ok(
        "POST",
        "/v1/sandbox/inbound",
        {"channel_id": channel_id, "contact_id": contact["id"], "text": "Hello"},
        status=201,
    )
    return str(first["chatroom_id"])


async def in_parallel(
    count: int, concurrency: int, label: str, job: Callable[[int], Awaitable[T]]
) -> list[T]:
    """`await job(index)` for every index, `concurrency` at a time; the results in the order of
    the indexes. Prints progress every tenth."""
    results: dict[int, T] = {}
    next_index = 0
    done = 0
    step = max(1, count // 10)

    async def worker() -> None:
        nonlocal next_index, done
        while next_index < count:
            index = next_index
            next_index += 1
            results[index] = await job(index)
            done += 1
            if done % step == 0 and done < count:
                print(f"    {label}: {done:,} / {count:,}", flush=True)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return [results[index] for index in range(count)]


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def settle(server_pid: int) -> float:
    """Wait until the server is idle (its background loops have caught up with the setup);
    how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_DEADLINE_SECONDS:
        before = loadgen.process_cpu_seconds(server_pid)
        await asyncio.sleep(SETTLE_WINDOW_SECONDS)
        used = loadgen.process_cpu_seconds(server_pid) - before
        if 100 * used / SETTLE_WINDOW_SECONDS < SETTLE_CPU_PCT:
            return time.monotonic() - started
    print(f"    the server was still busy after {SETTLE_DEADLINE_SECONDS:.0f} s", flush=True)
    return time.monotonic() - started


@dataclass(slots=True)
class CpuMeter:
    """CPU seconds of the server, of this process and of the whole machine over a span."""

    server_pid: int
    wall: float = field(default_factory=time.monotonic)
    server: float = 0.0
    own: float = 0.0
    host: float = 0.0

    def __post_init__(self) -> None:
        self.server = loadgen.process_cpu_seconds(self.server_pid)
        self.own = own_cpu_seconds()
        self.host = loadgen.host_busy_seconds()

    def stop(self) -> tuple[float, float, float, float]:
        """Wall seconds, and the server's, this process's and everything else's CPU seconds."""
        wall = time.monotonic() - self.wall
        server = loadgen.process_cpu_seconds(self.server_pid) - self.server
        own = own_cpu_seconds() - self.own
        other = max(0.0, loadgen.host_busy_seconds() - self.host - server - own)
        return wall, server, own, other


def pct(seconds: float, wall: float) -> float:
    return round(100 * seconds / wall, 1) if wall > 0 else 0.0


# -- 1. runs started per second ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartsPoint:
    database: str
    chatrooms: int
    concurrency: int
    prepare_seconds: float
    settle_seconds: float
    completed: int
    failed: int
    error_sample: str | None
    seconds: float
    runs_per_second: float
    latency: Latency
    verified: int
    """Of the chatrooms read back, how many hold the bot's "Order … confirmed"."""
    checked: int
    server_cpu_pct: float
    server_cpu_ms_per_run: float
    client_cpu_pct: float
    other_cpu_pct: float

    @property
    def problems(self) -> list[str]:
        found = []
        if self.failed:
            found.append(f"{self.failed} starts failed; first: {self.error_sample}")
        if self.verified < self.checked:
            found.append(
                f"{self.checked - self.verified} of {self.checked} chatrooms read back "
                "lack the bot's message"
            )
        return found

    @property
    def meets_target(self) -> bool:
        return not self.problems and self.runs_per_second >= TARGET_RUNS_PER_SECOND


def order_id(index: int) -> str:
    return f"A{index:06d}"


async def measure_starts(
    database: str, client: Client, channel_id: str, server_pid: int, options: Options
) -> StartsPoint:
    tag = secrets.token_hex(3)
    flow_id = await deploy_flow(
        client, "Order confirmation", manual_flow(STARTS_DOCUMENT_NODES, STARTS_DOCUMENT_EDGES)
    )
    print(f"[{database}] starts: opening {options.starts:,} chatrooms", flush=True)
    prepared = time.monotonic()
    rooms: list[str] = await in_parallel(
        options.starts,
        options.setup_concurrency,
        "chatrooms",
        lambda i: open_chatroom(client, channel_id, tag, i),
    )
    prepare_seconds = time.monotonic() - prepared
    settle_seconds = await settle(server_pid)
    print(
        f"    {prepare_seconds:.1f} s ({options.starts / prepare_seconds:,.0f} chatrooms/s), "
        f"then {settle_seconds:.1f} s until the server was idle",
        flush=True,
    )

    # Built before the clock starts; one connection per client.
    requests = [
        client.request(
            "POST",
            f"/v1/flows/{flow_id}/runs",
            {"chatroom_id": room, "inputs": {"order_id": order_id(i)}},
        )
        for i, room in enumerate(rooms)
    ]
    latencies: list[float] = []
    failures: list[str] = []
    pool = ConnectionPool("127.0.0.1", client.port, options.concurrency)
    next_index = 0

    async def starter() -> None:
        nonlocal next_index
        while next_index < len(requests):
            request = requests[next_index]
            next_index += 1
            sent = time.monotonic()
            response = await pool.request(request)
            latencies.append(time.monotonic() - sent)
            if response.status != 201 or orjson.loads(response.body).get("status") != "completed":
                failures.append(f"{response.status} {response.body[:300]!r}")

    print(
        f"[{database}] starts: {options.starts:,} runs from {options.concurrency} clients",
        flush=True,
    )
    meter = CpuMeter(server_pid)
    try:
        await asyncio.gather(*(starter() for _ in range(options.concurrency)))
    finally:
        wall, server_cpu, own_cpu, other_cpu = meter.stop()
        await pool.close()
    completed = len(requests) - len(failures)
    await client.fresh_connections()

    checked = random.Random(options.seed).sample(range(len(rooms)), min(VERIFIED_ROOMS, len(rooms)))
    verified = 0
    for index in checked:
        page = await client.ok("GET", f"/v1/chatrooms/{rooms[index]}/messages?limit=10")
        texts = {m["text"] for m in page["data"] if m["sender"]["type"] == "bot"}
        verified += f"Order {order_id(index)} confirmed" in texts
    return StartsPoint(
        database=database,
        chatrooms=options.starts,
        concurrency=options.concurrency,
        prepare_seconds=round(prepare_seconds, 1),
        settle_seconds=round(settle_seconds, 1),
        completed=completed,
        failed=len(failures),
        error_sample=failures[0] if failures else None,
        seconds=round(wall, 3),
        runs_per_second=round(completed / wall, 1),
        latency=Latency.of(latencies),
        verified=verified,
        checked=len(checked),
        server_cpu_pct=pct(server_cpu, wall),
        server_cpu_ms_per_run=round(1000 * server_cpu / len(requests), 2),
        client_cpu_pct=pct(own_cpu, wall),
        other_cpu_pct=pct(other_cpu, wall),
    )


# -- 2. resume latency with many runs waiting ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResumePoint:
    database: str
    waiting: int
    setup_seconds: float
    setup_rate: float
    """Chatrooms opened, each with its run waiting, per second (three requests each)."""
    settle_seconds: float
    setup_failed: int
    setup_error_sample: str | None
    samples: int
    failed: int
    error_sample: str | None
    missing: int
    post: Latency
    """The reply's POST, to its 201."""
    to_customer_frame: Latency
    """POST start → the customer's own message.created frame."""
    to_bot_frame: Latency
    """POST start → the bot's "Thanks: …" message.created frame: the resume latency."""
    engine: Latency
    """The customer's frame → the bot's frame: the flow engine's share."""
    server_cpu_ms_per_reply: float
    idle_server_cpu_pct: float
    """The server's CPU with the runs waiting and nothing sent, before the replies: what its
    background loops cost by themselves."""
    client_cpu_pct: float
    other_cpu_pct: float

    @property
    def problems(self) -> list[str]:
        found = []
        if self.setup_failed:
            found.append(
                f"{self.setup_failed} runs did not start waiting; first: {self.setup_error_sample}"
            )
        if self.failed:
            found.append(f"{self.failed} replies not answered 201; first: {self.error_sample}")
        if self.missing:
            found.append(
                f"{self.missing} replies got no answer on the stream within "
                f"{FRAME_DEADLINE_SECONDS:.0f} s"
            )
        return found

    @property
    def meets_target(self) -> bool:
        return not self.problems and self.to_bot_frame.p99_ms < TARGET_RESUME_P99_MS


class FrameWatcher:
    """Reads the API key's stream and resolves, for each awaited text, the time its
    `message.created` frame was read."""

    def __init__(self, ws: ClientConnection, marker: str) -> None:
        self.ws = ws
        self.marker = marker
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.closed: str | None = None

    def expect(self, text: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[text] = future
        return future

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                read_at = time.monotonic()
                # Only frames with a reply's text are parsed: the rest cost nothing here.
                if self.marker not in raw:
                    continue
                event = orjson.loads(raw).get("event") or {}
                if event.get("type") != "message.created":
                    continue
                future = self.waiting.pop(str(event["data"]["message"].get("text")), None)
                if future is not None and not future.done():
                    future.set_result(read_at)
        except Exception as exc:  # the stream's end is reported, never silent
            self.closed = repr(exc)
        else:
            self.closed = "closed by the server"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    post: float
    to_customer: float | None
    to_bot: float | None


async def time_reply(client: Client, watcher: FrameWatcher, chatroom_id: str, text: str) -> Reply:
    customer = watcher.expect(text)
    bot = watcher.expect(f"Thanks: {text}")
    request = client.request(
        "POST", "/v1/sandbox/inbound", {"chatroom_id": chatroom_id, "text": text}
    )
    sent = time.monotonic()
    response: Response = await client.pool.request(request)
    answered = time.monotonic()
    if response.status != 201:
        for future in (customer, bot):
            future.cancel()
        return Reply(response.status, response.body, answered - sent, None, None)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(bot), FRAME_DEADLINE_SECONDS)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(customer), 0.5)
    if time.monotonic() - answered > KEEPALIVE_SAFE_SECONDS:
        # The connection sat idle while the frames were awaited: the server may close it.
        await client.fresh_connections()

    def since_sent(future: asyncio.Future[float]) -> float | None:
        if future.done() and not future.cancelled():
            return future.result() - sent
        future.cancel()
        return None

    return Reply(201, b"", answered - sent, since_sent(customer), since_sent(bot))


async def measure_resume(
    database: str, client: Client, channel_id: str, server_pid: int, api_key: str, options: Options
) -> ResumePoint:
    tag = secrets.token_hex(3)
    await client.fresh_connections()
    flow_id = await deploy_flow(
        client, "Thank the customer", manual_flow(RESUME_DOCUMENT_NODES, RESUME_DOCUMENT_EDGES)
    )
    print(
        f"[{database}] resume: opening {options.waiting:,} chatrooms, each with a run waiting "
        "for a reply",
        flush=True,
    )

    async def waiting_run(index: int) -> tuple[str, str | None]:
        room = await open_chatroom(client, channel_id, tag, index)
        run = await client.ok(
            "POST",
            f"/v1/flows/{flow_id}/runs",
            {"chatroom_id": room, "inputs": {"order_id": order_id(index)}},
            status=201,
        )
        problem = None if run["status"] == "waiting" else f"run {run['id']} is {run['status']}"
        return room, problem

    started = time.monotonic()
    made = await in_parallel(
        options.waiting, options.setup_concurrency, "waiting runs", waiting_run
    )
    setup_seconds = time.monotonic() - started
    rooms = [room for room, _ in made]
    setup_problems = [problem for _, problem in made if problem is not None]
    settle_seconds = await settle(server_pid)
    idle = CpuMeter(server_pid)
    await asyncio.sleep(IDLE_SECONDS)
    idle_wall, idle_cpu, _, _ = idle.stop()
    print(
        f"    {setup_seconds:.1f} s ({options.waiting / setup_seconds:,.0f} chatrooms with a "
        f"waiting run/s), then {settle_seconds:.1f} s until the server was idle",
        flush=True,
    )

    marker = f"{REPLY_PREFIX} {tag} #"
    watcher = FrameWatcher(await open_stream(client.port, api_key), marker)
    reader = asyncio.create_task(watcher.read())
    await client.fresh_connections()
    picked = random.Random(options.seed).sample(rooms, options.samples + options.warmup)
    replies: list[Reply] = []
    print(
        f"[{database}] resume: {options.warmup} warm-up replies, then {options.samples} timed, "
        f"one at a time, {options.pause:g} s apart",
        flush=True,
    )
    try:
        for n, room in enumerate(picked[: options.warmup]):
            await time_reply(client, watcher, room, f"{marker}warmup-{n}")
            await asyncio.sleep(options.pause)
        meter = CpuMeter(server_pid)
        for n, room in enumerate(picked[options.warmup :]):
            replies.append(await time_reply(client, watcher, room, f"{marker}{n}"))
            await asyncio.sleep(options.pause)
        wall, server_cpu, own_cpu, other_cpu = meter.stop()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await watcher.ws.close()
    if watcher.closed is not None and watcher.closed != "closed by the server":
        print(f"    the stream ended: {watcher.closed}", flush=True)

    answered = [r for r in replies if r.status == 201]
    failed = [r for r in replies if r.status != 201]
    arrived = [r for r in answered if r.to_bot is not None]
    split = [r for r in arrived if r.to_customer is not None]
    return ResumePoint(
        database=database,
        waiting=options.waiting,
        setup_seconds=round(setup_seconds, 1),
        setup_rate=round(options.waiting / setup_seconds, 1),
        settle_seconds=round(settle_seconds, 1),
        setup_failed=len(setup_problems),
        setup_error_sample=setup_problems[0] if setup_problems else None,
        samples=len(replies),
        failed=len(failed),
        error_sample=f"{failed[0].status} {failed[0].body[:300]!r}" if failed else None,
        missing=len(answered) - len(arrived),
        post=Latency.of([r.post for r in answered]),
        to_customer_frame=Latency.of([r.to_customer for r in split if r.to_customer is not None]),
        to_bot_frame=Latency.of([r.to_bot for r in arrived if r.to_bot is not None]),
        engine=Latency.of(
            [
                r.to_bot - r.to_customer
                for r in split
                if r.to_bot is not None and r.to_customer is not None
            ]
        ),
        server_cpu_ms_per_reply=round(1000 * server_cpu / max(1, len(replies)), 2),
        idle_server_cpu_pct=pct(idle_cpu, idle_wall),
        client_cpu_pct=pct(own_cpu, wall),
        other_cpu_pct=pct(other_cpu, wall),
    )


# -- one database --------------------------------------------------------------------------------


async def measure_both(
    database: str, server: ChatflowProcess, api_key: str, channel_id: str, options: Options
) -> tuple[StartsPoint, ResumePoint]:
    client = Client(server.port, api_key, options.setup_concurrency)
    try:
        starts = await measure_starts(database, client, channel_id, server.pid, options)
        print(f"  {_starts_row(starts)}", flush=True)
        resume = await measure_resume(database, client, channel_id, server.pid, api_key, options)
        print(f"  {_resume_row(database, 'POST → bot frame', resume.to_bot_frame)}", flush=True)
    finally:
        await client.close()
    return starts, resume


def run_database(options: Options, database: str, workdir: Path) -> tuple[StartsPoint, ResumePoint]:
    env = server_env(webhook_timeout_seconds=5, background_work=True)
    profiles = workdir / f"profiles-{database}"
    if options.profile:
        profile_every_thread(env, workdir, profiles, "cpu")
    with fresh_database(database, workdir, options.postgres_url) as url:
        server = ChatflowProcess(
            url,
            log_path=workdir / f"chatflow-{database}.log",
            env=env,
            cpus={0} if options.pin else None,
        )
        print(f"\n[{database}] starting chatflow serve on a fresh database", flush=True)
        server.start()
        try:
            welcome = server.welcome()
            points = asyncio.run(
                measure_both(database, server, welcome.api_key, welcome.channel_id, options)
            )
        finally:
            server.stop()
    if options.profile:
        merge_profiles(profiles, database)
    return points


def merge_profiles(directory: Path, database: str) -> None:
    """One statistics file of every thread of the server, with its summary."""
    files = sorted(directory.glob("*.prof"))
    if not files:
        print("    profile: the server wrote no statistics (did it exit cleanly?)")
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"profile-flows-{database}-{time.strftime('%Y%m%d-%H%M%S')}.pstats"
    pstats.Stats(*(str(f) for f in files)).dump_stats(str(path))
    print_profile(path)


# -- reporting -----------------------------------------------------------------------------------

STARTS_HEADER = (
    f"{'database':<11} {'runs':>6} {'conc':>4} {'runs/s':>7} {'p50 ms':>7} {'p90 ms':>7} "
    f"{'p99 ms':>7} {'max ms':>7} {'failed':>6} {'srv CPU':>7} {'ms/run':>6} {'client':>6} "
    f"{'other':>5}"
)
RESUME_HEADER = (
    f"{'database':<11} {'latency':<24} {'count':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
    f"{'max ms':>7}"
)


def _starts_row(p: StartsPoint) -> str:
    lat = p.latency
    return (
        f"{p.database:<11} {p.completed:>6,} {p.concurrency:>4} {p.runs_per_second:>7,.1f} "
        f"{lat.p50_ms:>7.2f} {lat.p90_ms:>7.2f} {lat.p99_ms:>7.2f} {lat.max_ms:>7.1f} "
        f"{p.failed:>6} {p.server_cpu_pct:>6.0f}% {p.server_cpu_ms_per_run:>6.2f} "
        f"{p.client_cpu_pct:>5.0f}% {p.other_cpu_pct:>4.0f}%"
    )


def _resume_row(database: str, path: str, latency: Latency) -> str:
    return (
        f"{database:<11} {path:<24} {latency.count:>5} {latency.p50_ms:>7.2f} "
        f"{latency.p90_ms:>7.2f} {latency.p99_ms:>7.2f} {latency.max_ms:>7.2f}"
    )


def print_report(
    options: Options, points: list[tuple[StartsPoint, ResumePoint]], meta: dict[str, Any]
) -> None:
    layout = "server pinned to CPU 0, clients and stream to CPU 1" if options.pin else "no pinning"
    if options.nice:
        layout += f", both at nice {options.nice}"
    print()
    print(
        f"chatflow flow engine: {meta['cpus']} CPUs, {layout}; background work in the server "
        f"process; started {meta['started_at']}, load average "
        f"{' '.join(meta['loadavg_at_start'])}, {meta['busy_pct_at_start']} % of a core busy "
        "before the run"
    )
    print(
        f"\n== runs started per second: manual trigger, set_variable → send_message → end, "
        f"{options.starts:,} chatrooms, {options.concurrency} clients in a closed loop; "
        "latency of POST /v1/flows/{id}/runs"
    )
    print(STARTS_HEADER)
    for starts, _ in points:
        print(_starts_row(starts))
    print(
        f"\n== resume latency: {options.waiting:,} runs waiting for a reply; {options.samples} "
        f"replies, one at a time, {options.pause:g} s apart; from the start of the reply's POST"
    )
    print(RESUME_HEADER)
    for _, r in points:
        print(_resume_row(r.database, "POST (its 201)", r.post))
        print(_resume_row(r.database, "POST → customer frame", r.to_customer_frame))
        print(_resume_row(r.database, "POST → bot frame", r.to_bot_frame))
        print(_resume_row(r.database, "customer → bot frame", r.engine))
    print()
    for starts, resume in points:
        print(
            f"{resume.database:<11} setup: {starts.chatrooms:,} chatrooms in "
            f"{starts.prepare_seconds:.1f} s; {resume.waiting:,} chatrooms with a waiting run in "
            f"{resume.setup_seconds:.1f} s ({resume.setup_rate:,.0f}/s); while replying, server "
            f"{resume.server_cpu_ms_per_reply:.2f} ms of CPU per reply (idle before: "
            f"{resume.idle_server_cpu_pct:.1f} % of a core), other {resume.other_cpu_pct:.0f} %"
        )
    print("\ntargets:")
    for starts, resume in points:
        mark = "PASS" if starts.meets_target else "FAIL"
        print(
            f"  {mark}  {starts.database:<11} runs started/s >= {TARGET_RUNS_PER_SECOND:.0f}: "
            f"{starts.runs_per_second:,.1f}"
        )
        mark = "PASS" if resume.meets_target else "FAIL"
        print(
            f"  {mark}  {resume.database:<11} resume p99 < {TARGET_RESUME_P99_MS:.0f} ms with "
            f"{resume.waiting:,} waiting: {resume.to_bot_frame.p99_ms:.2f} ms"
        )
    problems = [f"{s.database}: {x}" for s, r in points for x in [*s.problems, *r.problems]]
    if problems:
        print("\nPROBLEMS:", *problems, sep="\n  ")


def write_results(
    options: Options, points: list[tuple[StartsPoint, ResumePoint]], meta: dict[str, Any]
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"flows-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        **meta,
        "options": asdict(options),
        "targets": {
            "runs_per_second": TARGET_RUNS_PER_SECOND,
            "resume_p99_ms": TARGET_RESUME_P99_MS,
        },
        "points": [
            {
                "starts": {**asdict(s), "meets_target": s.meets_target, "problems": s.problems},
                "resume": {**asdict(r), "meets_target": r.meets_target, "problems": r.problems},
            }
            for s, r in points
        ],
    }
    path.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if options.pin:
        os.sched_setaffinity(0, {1})
    if options.nice:
        # Before any thread or child starts: they inherit it (the server included).
        os.setpriority(os.PRIO_PROCESS, 0, options.nice)
    meta = loadgen.run_meta(pinned=options.pin, nice=options.nice)
    loadgen.note_busy_machine(meta, "the figures will be low and noisy (see `other` CPU)")
    workdir = Path(tempfile.mkdtemp(prefix="chatflow-flows-"))
    print(f"bench: work directory {workdir}", flush=True)
    points: list[tuple[StartsPoint, ResumePoint]] = []
    try:
        for database in options.databases:
            points.append(run_database(options, database, workdir))
    finally:
        if options.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(options, points, meta)
    path = write_results(options, points, meta)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if any(s.problems or r.problems for s, r in points):
        return 1
    missed = not all(s.meets_target and r.meets_target for s, r in points)
    return 1 if options.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
