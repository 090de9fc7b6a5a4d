"""Live stream benchmark: how soon a posted message reaches the streams that should see it.

    .venv/bin/python -m bench.live_stream                          # both backends, 100 agents
    .venv/bin/python -m bench.live_stream --backends sqlite --rate 200 --duration 20

For each backend, on a fresh database: `chatflow serve` starts (pinned to CPU 0), `--agents`
agents are created and logged in (a session token each), each gets one chatroom of its own
(the agent as the only participant, opened by a customer message so the 24-hour window is open),
and this process (pinned to CPU 1) connects one `WS /v1/stream` per agent, with its session
token, and one with the API key (the admin stream, which sees the whole organization). An
open-loop sender then posts `POST /v1/chatrooms/{id}/messages` at `--rate` messages/s,
round-robin over the chatrooms, each text unique; a send starts at its scheduled time whether
or not earlier ones were answered (several keep-alive connections). The latency of a message is
from the moment its POST started to the moment its `message.created` frame was read on the
agent's stream, and, separately, on the admin stream. Both clocks are this process's
time.monotonic().
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import sqlalchemy as sa
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect

from bench import loadgen
from bench.rawhttp import ConnectionPool, build_request
from bench.servers import ROOT, chatflow_server, parse_welcome

RESULTS_DIR = ROOT / "bench" / "results"
TARGET_P99_MS = 50.0  # POST start → frame on the stream, from the issue
PASSWORD = "bench live stream password"
SETUP_CONCURRENCY = 4  # agents created and logged in at a time (Argon2 twice each)
SETTLE_SECONDS = 10.0  # how long the last messages may take to arrive before they count missing
MESSAGE_PREFIX = "live"


@dataclass(frozen=True, slots=True)
class Options:
    backends: list[str]
    agents: int
    rate: int
    duration: int
    warmup: int
    connections: int
    postgres_url: str
    pin: bool
    keep: bool
    check: bool


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.live_stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="default: %(default)s")
    parser.add_argument("--agents", type=int, default=100, help="agent streams (default 100)")
    parser.add_argument("--rate", type=int, default=200, help="messages/s (default 200)")
    parser.add_argument("--duration", type=int, default=20, help="measured seconds (default 20)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds sent at the rate first, not counted"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="keep-alive connections the sender may use at once (default 16)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CHATFLOW_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"),
        help="a server where a fresh database bench_<random> is created and dropped "
        "(default: $CHATFLOW_BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the server to CPU 0 and this to CPU 1"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the p99 target is missed")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if args.agents < 1 or args.rate < 1 or args.duration < 1 or args.warmup < 0:
        parser.error("--agents, --rate and --duration must be positive, --warmup not negative")
    return Options(
        backends=backends,
        agents=args.agents,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        postgres_url=args.postgres_url,
        pin=not args.no_pin,
        keep=args.keep,
        check=args.check,
    )


# -- setup ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(backend: str, postgres_url: str, workdir: Path) -> Iterator[str]:
    """A database URL for a new, empty database, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'chatflow.db'}"
        return
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass(frozen=True, slots=True)
class AgentRoom:
    """An agent, its session token, and the one chatroom it participates in."""

    agent_id: str
    token: str
    chatroom_id: str


async def _created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:500]}")
    found: dict[str, Any] = response.json()
    return found


async def set_up_agent(
    client: httpx.AsyncClient, channel_id: str, tag: str, index: int
) -> AgentRoom:
    email = f"agent-{tag}-{index}@example.com"
    agent = await _created(
        client,
        "/v1/agents",
        {"email": email, "name": f"Agent {index}", "role": "agent", "password": PASSWORD},
    )
    login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    if login.status_code != 200:
        raise RuntimeError(f"login answered {login.status_code}: {login.text[:500]}")
    client.cookies.clear()  # the API key signs the next requests, not this session's cookie
    contact = await _created(
        client,
        "/v1/contacts",
        {"phone": f"+1415{2_000_000 + index:07d}", "first_name": "Ada", "opted_in": True},
    )
    chatroom = await _created(
        client,
        "/v1/chatrooms",
        {"contact_id": contact["id"], "channel_id": channel_id, "participants": [agent["id"]]},
    )
    # The customer writes first: the 24-hour window is open for free-form sends.
    await _created(client, "/v1/sandbox/inbound", {"chatroom_id": chatroom["id"], "text": "Hello!"})
    return AgentRoom(str(agent["id"]), str(login.json()["token"]), str(chatroom["id"]))


async def set_up_agents(
    base_url: str, api_key: str, channel_id: str, count: int, tag: str
) -> list[AgentRoom]:
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)

    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    ) as client:

        async def one(index: int) -> AgentRoom:
            async with limit:
                return await set_up_agent(client, channel_id, tag, index)

        return list(await asyncio.gather(*(one(i) for i in range(count))))


# -- streams -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Arrivals:
    """When each benchmark message's `message.created` frame was read, by message text."""

    at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    misrouted: int = 0  # on an agent stream whose chatroom it is not


async def open_stream(port: int, token: str) -> ClientConnection:
    ws = await connect(
        f"ws://127.0.0.1:{port}/v1/stream",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=60,
        ping_interval=None,  # the server sends heartbeats; client pings would only add frames
        max_queue=None,
        compression=None,
    )
    first = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
    if first.get("type") != "ready":
        raise RuntimeError(f"the stream's first frame was not `ready`: {first}")
    return ws


async def read_stream(
    ws: ClientConnection, marker: str, arrivals: Arrivals, room_of: dict[str, int], room: int | None
) -> None:
    """Record the frame of each message whose text has `marker`; `room` is the agent's
    chatroom (None: the admin stream)."""
    async for raw in ws:
        received_at = time.monotonic()
        # Only frames carrying a benchmark text are parsed: the rest (customer messages, other
        # event types, heartbeats) cost nothing here.
        if marker not in raw:
            continue
        frame = orjson.loads(raw)
        event = frame.get("event") or {}
        if event.get("type") != "message.created":
            continue
        text = str(event["data"]["message"].get("text"))
        if room is not None and room_of.get(text) != room:
            arrivals.misrouted += 1
            continue
        if text in arrivals.at:
            arrivals.duplicates += 1
        else:
            arrivals.at[text] = received_at


def message_marker(tag: str) -> str:
    """What every benchmark message's text starts with: unique to the run."""
    return f"{MESSAGE_PREFIX} {tag} #"


# -- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    text: str
    room: int
    started: float  # time.monotonic() when the POST was handed to a connection
    answered: float
    status: int
    measured: bool  # False during the warm-up


async def send_one(
    pool: ConnectionPool, request: bytes, text: str, room: int, measured: bool
) -> Sent:
    started = time.monotonic()
    try:
        response = await pool.request(request)
        status = response.status
    except (OSError, asyncio.IncompleteReadError):
        status = 0
    return Sent(text, room, started, time.monotonic(), status, measured)


async def send_at_rate(
    pool: ConnectionPool,
    host: str,
    api_key: str,
    rooms: list[AgentRoom],
    room_of: dict[str, int],
    options: Options,
    tag: str,
) -> list[Sent]:
    """One send every 1/rate s, by the clock (a slow answer does not delay the next), the
    first `warmup` seconds' not measured; round-robin over the rooms."""
    warmup_count = options.rate * options.warmup
    total = warmup_count + options.rate * options.duration
    auth = {"authorization": f"Bearer {api_key}"}
    start = time.monotonic()
    tasks: list[asyncio.Task[Sent]] = []
    for n in range(total):
        delay = start + n / options.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        room = n % len(rooms)
        text = f"{message_marker(tag)}{n}"
        room_of[text] = room
        request = build_request(
            "POST",
            f"/v1/chatrooms/{rooms[room].chatroom_id}/messages",
            host=host,
            headers=auth,
            json_body={"text": text},
        )
        tasks.append(asyncio.create_task(send_one(pool, request, text, room, n >= warmup_count)))
    return list(await asyncio.gather(*tasks))


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """Milliseconds, over the measured messages that arrived."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @staticmethod
    def of(seconds: list[float]) -> Latency:
        values = sorted(1000 * s for s in seconds)
        return Latency(
            count=len(values),
            p50_ms=round(loadgen.percentile(values, 0.50), 2),
            p90_ms=round(loadgen.percentile(values, 0.90), 2),
            p99_ms=round(loadgen.percentile(values, 0.99), 2),
            max_ms=round(values[-1], 2) if values else float("nan"),
        )


@dataclass(frozen=True, slots=True)
class Point:
    backend: str
    agents: int
    rate: int
    seconds: int
    sent: int
    send_errors: int
    achieved_rate: float
    received_by_agents: int
    received_by_admin: int
    missing_agents: int
    missing_admin: int
    duplicates: int
    misrouted: int
    post: Latency
    to_agent: Latency
    to_admin: Latency
    server_cpu_pct: float
    server_cpu_ms_per_message: float
    client_cpu_pct: float
    other_cpu_pct: float
    setup_seconds: float

    @property
    def problems(self) -> list[str]:
        found = []
        if self.send_errors:
            found.append(f"{self.send_errors} sends failed")
        if self.missing_agents or self.missing_admin:
            found.append(
                f"missing: {self.missing_agents} on agent streams, {self.missing_admin} on the "
                "admin stream"
            )
        if self.duplicates or self.misrouted:
            found.append(f"{self.duplicates} duplicates, {self.misrouted} on the wrong stream")
        return found

    @property
    def meets_target(self) -> bool:
        return (
            not self.problems
            and self.to_agent.p99_ms < TARGET_P99_MS
            and self.to_admin.p99_ms < TARGET_P99_MS
        )


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_for_arrivals(
    texts: list[str], agents: Arrivals, admin: Arrivals, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(t in agents.at and t in admin.at for t in texts):
            return
        await asyncio.sleep(0.05)


async def measure(
    backend: str,
    port: int,
    api_key: str,
    channel_id: str,
    server_pid: int,
    options: Options,
) -> Point:
    tag = secrets.token_hex(3)
    setup_started = time.monotonic()
    print(
        f"[{backend}] creating {options.agents} agents (logged in), one chatroom each, "
        "opened by the customer",
        flush=True,
    )
    rooms = await set_up_agents(
        f"http://127.0.0.1:{port}", api_key, channel_id, options.agents, tag
    )
    print(f"[{backend}] connecting {options.agents} agent streams and the admin stream", flush=True)
    agent_streams = [await open_stream(port, room.token) for room in rooms]
    admin_stream = await open_stream(port, api_key)
    setup_seconds = time.monotonic() - setup_started

    room_of: dict[str, int] = {}
    agents, admin = Arrivals(), Arrivals()
    readers = [
        asyncio.create_task(read_stream(ws, message_marker(tag), agents, room_of, i))
        for i, ws in enumerate(agent_streams)
    ]
    readers.append(
        asyncio.create_task(read_stream(admin_stream, message_marker(tag), admin, room_of, None))
    )
    pool = ConnectionPool("127.0.0.1", port, options.connections)
    print(
        f"[{backend}] sending {options.rate} messages/s: {options.warmup} s warm-up, then "
        f"{options.duration} s measured",
        flush=True,
    )
    try:
        await asyncio.sleep(0)  # the readers start before the first send
        server_cpu = loadgen.process_cpu_seconds(server_pid)
        own_cpu = _own_cpu_seconds()
        host_cpu = loadgen.host_busy_seconds()
        wall = time.monotonic()
        sent = await send_at_rate(pool, f"127.0.0.1:{port}", api_key, rooms, room_of, options, tag)
        wall = time.monotonic() - wall
        server_cpu = loadgen.process_cpu_seconds(server_pid) - server_cpu
        own_cpu = _own_cpu_seconds() - own_cpu
        host_cpu = loadgen.host_busy_seconds() - host_cpu
        await wait_for_arrivals([s.text for s in sent], agents, admin, SETTLE_SECONDS)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for ws in [*agent_streams, admin_stream]:
            await ws.close()
        await pool.close()

    measured = [s for s in sent if s.measured]
    ok = [s for s in measured if s.status == 201]
    starts = [s.started for s in measured]
    span = max(starts) - min(starts) if len(starts) > 1 else 0.0
    to_agent = [agents.at[s.text] - s.started for s in ok if s.text in agents.at]
    to_admin = [admin.at[s.text] - s.started for s in ok if s.text in admin.at]
    return Point(
        backend=backend,
        agents=options.agents,
        rate=options.rate,
        seconds=options.duration,
        sent=len(measured),
        send_errors=len(measured) - len(ok),
        achieved_rate=round((len(measured) - 1) / span, 1) if span else 0.0,
        received_by_agents=len(to_agent),
        received_by_admin=len(to_admin),
        missing_agents=len(ok) - len(to_agent),
        missing_admin=len(ok) - len(to_admin),
        duplicates=agents.duplicates + admin.duplicates,
        misrouted=agents.misrouted,
        post=Latency.of([s.answered - s.started for s in ok]),
        to_agent=Latency.of(to_agent),
        to_admin=Latency.of(to_admin),
        server_cpu_pct=round(100 * server_cpu / wall, 1),
        server_cpu_ms_per_message=round(1000 * server_cpu / len(sent), 2),
        client_cpu_pct=round(100 * own_cpu / wall, 1),
        other_cpu_pct=round(100 * max(0.0, host_cpu - server_cpu - own_cpu) / wall, 1),
        setup_seconds=round(setup_seconds, 1),
    )


def run_backend(options: Options, backend: str, workdir: Path) -> Point:
    with fresh_database(backend, options.postgres_url, workdir) as url:
        server = chatflow_server(
            url,
            log_path=workdir / f"chatflow-{backend}.log",
            cpus={0} if options.pin else None,
            env=os.environ,
        )
        print(f"\n[{backend}] starting chatflow serve on a fresh database", flush=True)
        server.start()
        try:
            welcome = parse_welcome(server.output())
            return asyncio.run(
                measure(
                    backend, server.port, welcome.api_key, welcome.channel_id, server.pid, options
                )
            )
        finally:
            server.stop()


# -- reporting -----------------------------------------------------------------------------------

HEADER = (
    f"{'backend':<11} {'path':<22} {'count':>6} {'missing':>7} {'p50 ms':>7} {'p90 ms':>7} "
    f"{'p99 ms':>7} {'max ms':>7}"
)


def _row(backend: str, path: str, latency: Latency, missing: int | str) -> str:
    return (
        f"{backend:<11} {path:<22} {latency.count:>6} {missing!s:>7} {latency.p50_ms:>7.2f} "
        f"{latency.p90_ms:>7.2f} {latency.p99_ms:>7.2f} {latency.max_ms:>7.2f}"
    )


def print_report(options: Options, points: list[Point], meta: dict[str, Any]) -> None:
    layout = "server pinned to CPU 0, client to CPU 1" if options.pin else "no CPU pinning"
    print()
    print(
        f"chatflow live stream benchmark: {meta['cpus']} CPUs, {layout}; {options.agents} agent "
        f"streams + 1 admin stream; {options.rate} messages/s round-robin over the agents' "
        f"chatrooms, {options.duration} s measured after {options.warmup} s of warm-up; "
        f"open loop over {options.connections} keep-alive connections"
    )
    print("latency: from the start of the POST to the read of its message.created frame")
    print(HEADER)
    for p in points:
        print(_row(p.backend, "POST (answer)", p.post, p.send_errors))
        print(_row(p.backend, "POST → agent stream", p.to_agent, p.missing_agents))
        print(_row(p.backend, "POST → admin stream", p.to_admin, p.missing_admin))
    print()
    for p in points:
        mark = "PASS" if p.meets_target else "FAIL"
        print(
            f"{p.backend:<11} sent {p.sent} at {p.achieved_rate:.1f}/s; CPU in % of one core: "
            f"server {p.server_cpu_pct:.0f} % ({p.server_cpu_ms_per_message:.2f} ms a message), "
            f"client {p.client_cpu_pct:.0f} %, other {p.other_cpu_pct:.0f} %"
        )
        print(
            f"{'':<11} {mark} target p99 < {TARGET_P99_MS:.0f} ms on the agent and admin "
            "streams, nothing missing"
        )
        for problem in p.problems:
            print(f"  PROBLEM: {problem}")


def write_results(options: Options, points: list[Point], meta: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"live_stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        **meta,
        "options": asdict(options),
        "target_p99_ms": TARGET_P99_MS,
        "points": [
            {**asdict(p), "meets_target": p.meets_target, "problems": p.problems} for p in points
        ],
    }
    path.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if options.pin:
        os.sched_setaffinity(0, {1})
    meta = loadgen.run_meta(pinned=options.pin)
    loadgen.note_busy_machine(meta, "latencies will be high and noisy (see `other` CPU)")
    workdir = Path(tempfile.mkdtemp(prefix="chatflow-live-"))
    print(f"bench: work directory {workdir}", flush=True)
    points: list[Point] = []
    try:
        for backend in options.backends:
            points.append(run_backend(options, backend, workdir))
    finally:
        if options.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(options, points, meta)
    path = write_results(options, points, meta)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if any(p.problems for p in points):
        return 1
    return 1 if options.check and not all(p.meets_target for p in points) else 0


if __name__ == "__main__":
    sys.exit(main())
