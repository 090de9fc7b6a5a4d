"""Webhook drain benchmark: how fast the dispatcher empties a backlog of events into a local
receiver, and how soon an event reaches it while messages keep coming.

    .venv/bin/python -m bench.webhook_drain                       # 20,000 events, both backends
    .venv/bin/python -m bench.webhook_drain --backends sqlite --events 5000 --live-rates 200
    .venv/bin/python -m bench.webhook_drain --backends sqlite --profile

For each backend, on a fresh database: `chatflow serve` starts with background work off, an
endpoint subscribed to `message.created` is made for a receiver in this process, and `--events`
message.created events are committed through the API (one customer message opening each of
`--rooms` chatrooms, then free-form sends spread over them). The server stops; it starts again
with background work on, and the clock runs until the receiver has every event: the **backlog**
figures. Then, on the same running server, a client sends at a fixed rate for `--live-seconds`:
the **live** figures, from the moment the client had its 2xx to the moment the receiver had the
event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import pstats
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.reliability.kill_harness import (
    Api,
    ChatflowProcess,
    Endpoint,
    create_endpoint,
    fresh_database,
    open_chatrooms,
    server_env,
)
from tests.webhook_receiver import Received, WebhookReceiver

from bench import loadgen
from bench.rawhttp import ConnectionPool, build_request

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
TARGET_RATE = 1_000.0  # events/s, sustained, from the issue
HOOK_PATH = "/drain"
RETRIES = 20

DEFINITIONS = """\
definitions:
  start          the moment `chatflow serve` was launched again, with background work on
  sustained      events/s while the receiver went from 10 % to 90 % of the backlog
  after start    when each event reached the receiver, counted from start
  commit→receipt from the moment the sending client read its 2xx (the event had committed by
                 then) to the moment the receiver had read the whole webhook request; both
                 clocks are this process's time.monotonic(). For the backlog it includes the
                 time the server was stopped.
  duplicates     requests beyond the first per webhook-id (none expected without crashes)
  srv CPU        the server process, all threads, % of one core while it drained"""


@dataclass(frozen=True, slots=True)
class Options:
    backends: list[str]
    events: int
    rooms: int
    load_concurrency: int
    live_rates: list[int]
    live_seconds: float
    webhook_concurrency: int | None
    postgres_url: str
    pin: bool
    profile: bool
    check: bool
    keep: bool
    deadline_seconds: float


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook_drain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="default: %(default)s")
    parser.add_argument(
        "--events", type=int, default=20_000, help="backlog size (default %(default)s)"
    )
    parser.add_argument(
        "--rooms", type=int, default=200, help="chatrooms the events spread over (%(default)s)"
    )
    parser.add_argument(
        "--load-concurrency",
        type=int,
        default=32,
        help="connections loading the backlog (default %(default)s)",
    )
    parser.add_argument(
        "--live-rates",
        default="100,500",
        help="messages/s of the live runs, comma-separated; empty for none (default %(default)s)",
    )
    parser.add_argument(
        "--live-seconds", type=float, default=15.0, help="length of each live run (%(default)s)"
    )
    parser.add_argument(
        "--webhook-concurrency",
        type=int,
        help="CHATFLOW_WEBHOOK_CONCURRENCY for the server (default: the server's own, 32)",
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
        help="do not pin the server to CPU 0 and this process (client, receiver) to CPU 1",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the draining server under cProfile (its main thread: the event loop) and "
        "write the statistics to bench/results/; the profiler slows the server down, so the "
        "figures of a profiled run are not for the record",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the sustained rate misses the target"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    parser.add_argument(
        "--deadline",
        type=float,
        default=600.0,
        help="seconds the receiver may take to get the backlog (default %(default)s)",
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in backends:
        if backend not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {backend!r}: use sqlite and/or postgresql")
    if args.rooms < 1 or args.events < args.rooms:
        parser.error("--events must be at least --rooms, and --rooms at least 1")
    rates = [int(r) for r in args.live_rates.split(",") if r.strip()]
    if any(rate < 1 for rate in rates):
        parser.error("--live-rates needs positive integers")
    return Options(
        backends=backends,
        events=args.events,
        rooms=args.rooms,
        load_concurrency=args.load_concurrency,
        live_rates=rates,
        live_seconds=args.live_seconds,
        webhook_concurrency=args.webhook_concurrency,
        postgres_url=args.postgres_url,
        pin=not args.no_pin and (os.cpu_count() or 1) >= 2,
        profile=args.profile,
        check=args.check,
        keep=args.keep,
        deadline_seconds=args.deadline,
    )


# -- sending -------------------------------------------------------------------------------------


class Sender:
    """Free-form sends through a lean keep-alive client, each with its own Idempotency-Key, so
    that one whose connection broke can be sent again safely."""

    def __init__(self, server: ChatflowProcess, api_key: str, connections: int) -> None:
        self.host = f"127.0.0.1:{server.port}"
        self.auth = {"authorization": f"Bearer {api_key}"}
        self.pool = ConnectionPool("127.0.0.1", server.port, connections)
        self.acknowledged: dict[str, float] = {}
        """message id → time.monotonic() when its 2xx was read."""

    async def send(self, chatroom_id: str, text: str, key: str) -> None:
        data = build_request(
            "POST",
            f"/v1/chatrooms/{chatroom_id}/messages",
            host=self.host,
            headers={**self.auth, "idempotency-key": key},
            json_body={"text": text},
        )
        for _ in range(RETRIES):
            try:
                response = await self.pool.request(data)
            except (OSError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.1)
                continue
            if response.status != 201:
                raise RuntimeError(f"send answered {response.status}: {response.body[:500]!r}")
            acknowledged = time.monotonic()
            body = response.json()
            assert isinstance(body, dict)
            self.acknowledged[str(body["id"])] = acknowledged
            return
        raise RuntimeError(f"send {key} failed {RETRIES} times in a row")

    async def close(self) -> None:
        await self.pool.close()


async def load_backlog(
    sender: Sender, rooms: list[str], count: int, tag: str, concurrency: int
) -> None:
    """`count` sends, spread over `rooms`, `concurrency` at a time, as fast as they go."""
    numbers = iter(range(count))

    async def work() -> None:
        for n in numbers:
            await sender.send(rooms[n % len(rooms)], f"backlog {tag} #{n}", f"{tag}-b{n}")

    await asyncio.gather(*(work() for _ in range(concurrency)))


async def send_steadily(
    sender: Sender, rooms: list[str], rate: int, seconds: float, tag: str
) -> float:
    """Start one send every 1/rate s (an open loop: a slow answer does not delay the next);
    return the seconds from the first send to the last 2xx."""
    total = max(1, round(rate * seconds))
    started = time.monotonic()
    tasks = []
    for n in range(total):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        text = f"live {tag} {rate}/s #{n}"
        tasks.append(asyncio.create_task(sender.send(rooms[n % len(rooms)], text, text)))
    await asyncio.gather(*tasks)
    return time.monotonic() - started


# -- receiving -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    event_id: str
    message_id: str
    received_at: float  # time.monotonic()


def arrivals(received: list[Received]) -> tuple[dict[str, Arrival], int]:
    """The first arrival of each webhook-id, by message id; and how many duplicates came."""
    first: dict[str, Arrival] = {}
    seen: set[str] = set()
    duplicates = 0
    for request in received:
        event_id = request.headers["webhook-id"]
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        message_id = json.loads(request.body)["data"]["message"]["id"]
        first[message_id] = Arrival(event_id, message_id, request.received_at)
    return first, duplicates


def wait_for_messages(
    receiver: WebhookReceiver, message_ids: set[str], at_least: int, deadline_seconds: float
) -> dict[str, Arrival]:
    """Until the events of `message_ids`, and `at_least` events in all, have arrived (or the
    deadline): the arrivals. Bodies are parsed only once enough requests came, so that the
    receiver, in this process, is not slowed down while it works."""
    deadline = time.monotonic() + deadline_seconds
    parsed = 0
    while True:
        requests = receiver.received
        expired = time.monotonic() > deadline
        if (len(requests) >= at_least and len(requests) > parsed) or expired:
            parsed = len(requests)
            found, _ = arrivals(requests)
            if (len(found) >= at_least and message_ids <= found.keys()) or expired:
                return found
        time.sleep(0.05)


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DrainPoint:
    backend: str
    events: int
    received: int
    duplicates: int
    bad_signatures: int
    load_seconds: float
    load_rate: float
    stopped_seconds: float
    ready_seconds: float
    first_receipt_seconds: float
    all_received_seconds: float
    sustained_rate: float
    overall_rate: float
    after_start_p50_ms: float
    after_start_p99_ms: float
    commit_to_receipt_p50_ms: float
    commit_to_receipt_p99_ms: float
    server_cpu_pct: float
    client_cpu_pct: float
    other_cpu_pct: float


@dataclass(frozen=True, slots=True)
class LivePoint:
    backend: str
    rate: int
    sent: int
    achieved_rate: float
    received: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_pct: float


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_backend(
    options: Options, backend: str, workdir: Path
) -> tuple[DrainPoint, list[LivePoint]]:
    tag = secrets.token_hex(3)
    env = server_env(webhook_timeout_seconds=5, background_work=False)
    if options.webhook_concurrency is not None:
        env["CHATFLOW_WEBHOOK_CONCURRENCY"] = str(options.webhook_concurrency)
    cpus = {0} if options.pin else None
    with (
        fresh_database(backend, workdir, options.postgres_url) as url,
        WebhookReceiver() as receiver,
        contextlib.ExitStack() as stack,
    ):
        server = ChatflowProcess(
            url, log_path=workdir / f"chatflow-{backend}.log", env=env, cpus=cpus
        )
        stack.callback(server.stop)
        print(f"\n[{backend}] first start, background work off", flush=True)
        server.start()
        welcome = server.welcome()
        api = stack.enter_context(contextlib.closing(Api(server.base_url, welcome.api_key)))
        endpoint = create_endpoint(api, receiver, HOOK_PATH, ["message.created"])
        print(
            f"[{backend}] {options.rooms} chatrooms opened by their customer, then "
            f"{options.events - options.rooms:,} sends: {options.events:,} message.created "
            "events, nothing delivered yet",
            flush=True,
        )
        rooms = open_chatrooms(api, welcome.channel_id, options.rooms, tag)
        loading = time.monotonic()
        sender = Sender(server, welcome.api_key, options.load_concurrency)
        asyncio.run(
            _closing(
                sender,
                load_backlog(
                    sender, rooms, options.events - options.rooms, tag, options.load_concurrency
                ),
            )
        )
        load_seconds = time.monotonic() - loading
        backlog = dict(sender.acknowledged)
        server.stop()
        if receiver.received:
            raise RuntimeError("webhooks arrived while background work was off")

        if options.profile:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            server.profile_path = RESULTS_DIR / f"profile-backlog-{backend}-{tag}.pstats"
        server.env = {**env, "CHATFLOW_BACKGROUND_WORK": "true"}
        print(f"[{backend}] start with background work on; draining", flush=True)
        restarted = time.monotonic()
        ready_seconds = server.start()
        server_cpu_at_ready = loadgen.process_cpu_seconds(server.pid)
        client_cpu_at_ready = _process_cpu()
        host_at_ready = loadgen.host_busy_seconds()
        ready_at = time.monotonic()
        # The backlog's sends, and the customers' first messages (whose acks were not timed).
        found = wait_for_messages(receiver, set(backlog), options.events, options.deadline_seconds)
        drained_at = time.monotonic()
        server_cpu = loadgen.process_cpu_seconds(server.pid) - server_cpu_at_ready
        client_cpu = _process_cpu() - client_cpu_at_ready
        host_cpu = loadgen.host_busy_seconds() - host_at_ready
        point = _drain_point(
            backend,
            options,
            receiver,
            endpoint,
            backlog,
            found,
            load_seconds=load_seconds,
            stopped_seconds=restarted - max(backlog.values()),
            restarted=restarted,
            ready_seconds=ready_seconds,
            busy=(server_cpu, client_cpu, host_cpu, drained_at - ready_at),
        )
        print(f"  {_drain_row(point)}", flush=True)
        if server.profile_path is not None:
            _stop_profiled(server)
            server.profile_path = RESULTS_DIR / f"profile-live-{backend}-{tag}.pstats"
            server.start()

        lives = []
        for rate in options.live_rates:
            receiver.clear()
            print(
                f"[{backend}] live: {rate} messages/s for {options.live_seconds:.0f} s",
                flush=True,
            )
            lives.append(
                _live_point(backend, server, receiver, welcome.api_key, rooms, rate, options, tag)
            )
            print(f"  {_live_row(lives[-1])}", flush=True)
        if server.profile_path is not None and lives:
            _stop_profiled(server)
    return point, lives


def _stop_profiled(server: ChatflowProcess) -> None:
    """Stop the profiled server (cProfile writes its statistics on a clean exit) and summarize
    the profile."""
    assert server.profile_path is not None
    server.stop()
    _print_profile(server.profile_path)


async def _closing(sender: Sender, work: Awaitable[T]) -> T:
    try:
        return await work
    finally:
        await sender.close()


def _drain_point(
    backend: str,
    options: Options,
    receiver: WebhookReceiver,
    endpoint: Endpoint,
    backlog: dict[str, float],
    found: dict[str, Arrival],
    *,
    load_seconds: float,
    stopped_seconds: float,
    restarted: float,
    ready_seconds: float,
    busy: tuple[float, float, float, float],
) -> DrainPoint:
    requests = receiver.received
    _, duplicates = arrivals(requests)
    bad = 0
    for request in requests:
        try:
            receiver.verify(endpoint.secret, request)
        except Exception:
            bad += 1
    times = sorted(a.received_at for a in found.values())
    n = len(times)
    low, high = n // 10, max(n // 10, (9 * n) // 10 - 1)
    span = times[high] - times[low] if n else 0.0
    latencies = sorted(
        1000 * (found[m].received_at - acked) for m, acked in backlog.items() if m in found
    )
    after_start = [1000 * (t - restarted) for t in times]
    server_cpu, client_cpu, host_cpu, wall = busy
    return DrainPoint(
        backend=backend,
        events=options.events,
        received=n,
        duplicates=duplicates,
        bad_signatures=bad,
        load_seconds=round(load_seconds, 2),
        load_rate=round((options.events - options.rooms) / load_seconds, 1),
        stopped_seconds=round(stopped_seconds, 2),
        ready_seconds=round(ready_seconds, 2),
        first_receipt_seconds=round(times[0] - restarted, 2) if n else float("nan"),
        all_received_seconds=round(times[-1] - restarted, 2) if n else float("nan"),
        sustained_rate=round((high - low) / span, 1) if span > 0 else 0.0,
        overall_rate=round(n / (times[-1] - times[0]), 1) if n > 1 else 0.0,
        after_start_p50_ms=round(loadgen.percentile(after_start, 0.50), 1),
        after_start_p99_ms=round(loadgen.percentile(after_start, 0.99), 1),
        commit_to_receipt_p50_ms=round(loadgen.percentile(latencies, 0.50), 1),
        commit_to_receipt_p99_ms=round(loadgen.percentile(latencies, 0.99), 1),
        server_cpu_pct=round(100 * server_cpu / wall, 1),
        client_cpu_pct=round(100 * client_cpu / wall, 1),
        other_cpu_pct=round(100 * max(0.0, host_cpu - server_cpu - client_cpu) / wall, 1),
    )


def _live_point(
    backend: str,
    server: ChatflowProcess,
    receiver: WebhookReceiver,
    api_key: str,
    rooms: list[str],
    rate: int,
    options: Options,
    tag: str,
) -> LivePoint:
    # Enough connections that a slow answer never holds the next send back.
    sender = Sender(server, api_key, max(16, rate // 10))
    cpu_before = loadgen.process_cpu_seconds(server.pid)
    started = time.monotonic()
    seconds = asyncio.run(
        _closing(sender, send_steadily(sender, rooms, rate, options.live_seconds, tag))
    )
    found = wait_for_messages(
        receiver, set(sender.acknowledged), len(sender.acknowledged), options.deadline_seconds
    )
    cpu = loadgen.process_cpu_seconds(server.pid) - cpu_before
    wall = time.monotonic() - started
    latencies = sorted(
        1000 * (found[m].received_at - acked)
        for m, acked in sender.acknowledged.items()
        if m in found
    )
    return LivePoint(
        backend=backend,
        rate=rate,
        sent=len(sender.acknowledged),
        achieved_rate=round(len(sender.acknowledged) / seconds, 1),
        received=len(latencies),
        p50_ms=round(loadgen.percentile(latencies, 0.50), 1),
        p90_ms=round(loadgen.percentile(latencies, 0.90), 1),
        p99_ms=round(loadgen.percentile(latencies, 0.99), 1),
        max_ms=round(latencies[-1], 1) if latencies else float("nan"),
        server_cpu_pct=round(100 * cpu / wall, 1),
    )


def _print_profile(path: Path) -> None:
    """The functions that took the most time of their own, and the heaviest call paths."""
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    summary = path.with_suffix(".txt")
    summary.write_text(text.getvalue())
    print(f"    profile: {path.relative_to(ROOT)} (summary: {summary.relative_to(ROOT)})")


# -- reporting -----------------------------------------------------------------------------------

DRAIN_HEADER = (
    f"{'backend':<10} {'events':>7} {'ready s':>7} {'all in s':>8} {'sustained/s':>11} "
    f"{'overall/s':>9} {'after start p50/p99 s':>21} {'dup':>4} {'srv CPU':>7} {'client':>6} "
    f"{'other':>6}"
)
LIVE_HEADER = (
    f"{'backend':<10} {'rate/s':>6} {'sent/s':>7} {'received':>8} {'p50 ms':>7} {'p90 ms':>7} "
    f"{'p99 ms':>7} {'max ms':>7} {'srv CPU':>7}"
)


def _drain_row(p: DrainPoint) -> str:
    after = f"{p.after_start_p50_ms / 1000:.2f} / {p.after_start_p99_ms / 1000:.2f}"
    return (
        f"{p.backend:<10} {p.received:>7,} {p.ready_seconds:>7.2f} {p.all_received_seconds:>8.2f} "
        f"{p.sustained_rate:>11,.0f} {p.overall_rate:>9,.0f} {after:>21} {p.duplicates:>4} "
        f"{p.server_cpu_pct:>6.0f}% {p.client_cpu_pct:>5.0f}% {p.other_cpu_pct:>5.0f}%"
    )


def _live_row(p: LivePoint) -> str:
    return (
        f"{p.backend:<10} {p.rate:>6} {p.achieved_rate:>7,.0f} {p.received:>8,} "
        f"{p.p50_ms:>7.1f} {p.p90_ms:>7.1f} {p.p99_ms:>7.1f} {p.max_ms:>7.1f} "
        f"{p.server_cpu_pct:>6.0f}%"
    )


def _problems(drains: list[DrainPoint], lives: list[LivePoint]) -> list[str]:
    problems = []
    for d in drains:
        if d.received != d.events:
            problems.append(f"{d.backend}: {d.events - d.received} events never arrived")
        if d.bad_signatures:
            problems.append(f"{d.backend}: {d.bad_signatures} requests did not verify")
    for live in lives:
        if live.received != live.sent:
            problems.append(
                f"{live.backend} live {live.rate}/s: {live.sent - live.received} events never "
                "arrived"
            )
    return problems


def print_report(
    options: Options, drains: list[DrainPoint], lives: list[LivePoint], meta: dict[str, Any]
) -> None:
    layout = (
        "server pinned to CPU 0, client and receiver to CPU 1" if meta["pinned"] else "no pinning"
    )
    print()
    print(
        f"chatflow webhook drain: {meta['cpus']} CPUs, {layout}; one endpoint "
        f"(message.created) on a local receiver answering 200 at once"
    )
    print(DEFINITIONS)
    print(f"\n== backlog: {options.events:,} events waiting when the server starts")
    print(DRAIN_HEADER)
    for d in drains:
        print(_drain_row(d))
    for d in drains:
        print(
            f"  {d.backend}: loaded in {d.load_seconds:.1f} s ({d.load_rate:,.0f} sends/s); "
            f"stopped {d.stopped_seconds:.1f} s; first event {d.first_receipt_seconds:.2f} s "
            f"after start; commit→receipt p50 {d.commit_to_receipt_p50_ms / 1000:.2f} s, "
            f"p99 {d.commit_to_receipt_p99_ms / 1000:.2f} s (stopped time included)"
        )
    if lives:
        print(f"\n== live: a steady client for {options.live_seconds:.0f} s; commit→receipt")
        print(LIVE_HEADER)
        for live in lives:
            print(_live_row(live))
    print("\ntarget:")
    for d in drains:
        mark = "PASS" if d.sustained_rate >= TARGET_RATE else "FAIL"
        print(
            f"  {mark}  {d.backend:<10} sustained {d.sustained_rate:,.0f} events/s, "
            f"target >= {TARGET_RATE:,.0f}"
        )
    problems = _problems(drains, lives)
    if problems:
        print("\nPROBLEMS:", *problems, sep="\n  ")


def write_results(
    options: Options, drains: list[DrainPoint], lives: list[LivePoint], meta: dict[str, Any]
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"webhook_drain-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        **meta,
        "options": asdict(options),
        "definitions": DEFINITIONS,
        "backlog": [asdict(d) for d in drains],
        "live": [asdict(live) for live in lives],
        "problems": _problems(drains, lives),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if options.pin:
        os.sched_setaffinity(0, {1})
    meta = loadgen.run_meta(pinned=options.pin)
    workdir = Path(tempfile.mkdtemp(prefix="chatflow-drain-"))
    print(f"bench: work directory {workdir}", flush=True)
    drains: list[DrainPoint] = []
    lives: list[LivePoint] = []
    try:
        for backend in options.backends:
            drain, live = run_backend(options, backend, workdir)
            drains.append(drain)
            lives.extend(live)
    finally:
        if options.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(options, drains, lives, meta)
    path = write_results(options, drains, lives, meta)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if _problems(drains, lives):
        return 1
    missed = any(d.sustained_rate < TARGET_RATE for d in drains)
    return 1 if options.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
