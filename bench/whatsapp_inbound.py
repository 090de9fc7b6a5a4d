"""Inbound WhatsApp benchmark: how many of Meta's notifications a second chatflow accepts (signature
checked, stored, answered 200) and applies into their chatrooms without falling behind.

    .venv/bin/python -m bench.whatsapp_inbound                   # both backends, 500–2,000/s
    .venv/bin/python -m bench.whatsapp_inbound --backends sqlite --rates 1000 --seconds 10
    .venv/bin/python -m bench.whatsapp_inbound --backends sqlite --rates 1500 --profile

For each backend, on a fresh database: `chatflow serve` starts with background work on (it applies
the notifications in the same process, as by default), a WhatsApp channel is created through the
API, and this process subscribes to `WS /v1/stream` with the API key (the whole organization).
Each of `--customers` customers first writes once, which creates their contact and chatroom (the
`first messages` row). Then, for each rate of `--rates`, text messages from those customers,
built and signed beforehand, are offered at that rate for `--seconds`: an open loop, each
notification due at start + n/rate whatever earlier answers did. The run goes on until every
accepted notification has shown up in its chatroom: its `message.created` frame on the stream,
matched by `channel_message_id` (the wamid).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import pstats
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tests.reliability.kill_harness import Api, ChatflowProcess, fresh_database, server_env
from tests.whatsapp_payloads import PHONE_NUMBER_ID, WABA_ID, encode, new_wamid, sign, text_message
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import loadgen
from bench.live_stream import Latency, open_stream
from bench.rawhttp import ConnectionPool, build_request
from bench.webhook_drain import _print_profile as print_profile

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
TARGET_RATE = 1_000  # notifications/s, sustained, from the issue
TARGET_ANSWER_P99_MS = 20.0
MAX_GROWTH_SHARE = 0.02
"""Sustained: the backlog grows by at most this share of the offered rate, per second."""
MIN_ACCEPTED_SHARE = 0.98
"""Sustained: the 200s come at no less than this share of the offered rate."""
SAMPLE_SECONDS = 0.1
APP_SECRET = "bench-whatsapp-app-secret"
START_LEAD_SECONDS = 0.05  # the first notification is due this long after the clock starts

DEFINITIONS = """\
definitions:
  due              start + n/rate: when notification n was to be sent (open loop)
  answer           from due to its 200 read (so a late send counts against the server: no
                   coordinated omission); `gen lag` is due to handed to a connection
  accept→chatroom  from the 200 read to the read of the message's message.created frame on
                   the API key's live stream (includes the stream's own fan-out)
  acc/s, proc/s    200s, and frames, from the first due to the last 200, per second
  backlog          accepted (200 read) minus processed (frame read); sampled every 0.1 s
  growth/s         least-squares slope of the backlog over the second half of the offered load
  @end, peak       the backlog at the last 200, and its highest sample
  drain s          from the last 200 to the last frame
  sustained        every notification 200 and processed, acc/s >= 98 % of the rate, and
                   growth/s <= 2 % of the rate
  ok               sustained, with answer p99 < 20 ms
  target           ok at a rate of at least 1,000/s
  CPU              % of one core from the first due to the last frame: srv the server process
                   (all threads), client this process, other the rest (PostgreSQL included)"""


@dataclass(frozen=True, slots=True)
class Options:
    backends: list[str]
    rates: list[int]
    seconds: float
    customers: int
    connections: int
    drain_deadline: float
    all_rates: bool
    postgres_url: str
    pin: bool
    profile: str | None  # "cpu", "wall"
    check: bool
    keep: bool


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.whatsapp_inbound",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="default: %(default)s")
    parser.add_argument(
        "--rates",
        default="500,1000,1500,2000",
        help="notifications/s offered, in turn, comma-separated (default %(default)s)",
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="length of each rate's load (%(default)s)"
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=2_000,
        help="distinct customers (wa_ids) the messages come from (default %(default)s)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="keep-alive connections the notifications may use at once (default %(default)s)",
    )
    parser.add_argument(
        "--drain-deadline",
        type=float,
        default=120.0,
        help="seconds the backlog may take to drain after the load stops (default %(default)s)",
    )
    parser.add_argument(
        "--all-rates",
        action="store_true",
        help="go on up the ladder after a rate that was not sustained (default: stop there)",
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
        help="do not pin the server to CPU 0 and this process (sender, stream) to CPU 1",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="cpu",
        choices=("cpu", "wall"),
        help="run the server under cProfile, every thread (the event loop and the database "
        "threads), timing each thread's CPU (`cpu`, the default) or the wall clock (`wall`: "
        "also the waits, on PostgreSQL's answers, on locks, idle), and write the statistics "
        "to bench/results/; the profiler slows the server down, so the figures of a profiled "
        "run are not for the record",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the target is missed on any backend"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or not backends:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}; use sqlite, postgresql")
    try:
        rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates needs comma-separated integers")
    if not rates or any(rate < 1 for rate in rates):
        parser.error("--rates needs positive integers")
    if args.seconds <= 0 or args.customers < 1 or args.connections < 1:
        parser.error("--seconds, --customers and --connections must be positive")
    return Options(
        backends=backends,
        rates=rates,
        seconds=args.seconds,
        customers=args.customers,
        connections=args.connections,
        drain_deadline=args.drain_deadline,
        all_rates=args.all_rates,
        postgres_url=args.postgres_url,
        pin=not args.no_pin and (os.cpu_count() or 1) >= 2,
        profile=args.profile,
        check=args.check,
        keep=args.keep,
    )


# -- the notifications ---------------------------------------------------------------------------


def customer_wa_id(index: int) -> str:
    """A valid US number (digits only, as Meta's `wa_id`), distinct per customer."""
    return f"1415{2_000_000 + index:07d}"


@dataclass(slots=True)
class Offer:
    """Notifications offered at one rate, and what became of each (times on time.monotonic();
    NaN until it happened)."""

    rate: int
    requests: list[bytes]
    index: dict[str, int]  # wamid → position
    start: float = math.nan
    handed: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    processed: list[float] = field(default_factory=list)
    accepted_count: int = 0
    processed_count: int = 0
    duplicates: int = 0
    error_sample: str | None = None
    """The first answer that was not 200 (status and body), or the error of the first send
    that got no answer."""
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    """(seconds since start, accepted, processed), every SAMPLE_SECONDS."""

    def __post_init__(self) -> None:
        n = len(self.requests)
        self.handed = [math.nan] * n
        self.answered = [math.nan] * n
        self.status = [0] * n
        self.processed = [math.nan] * n

    def due(self, n: int) -> float:
        return self.start + n / self.rate


def build_offer(rate: int, count: int, customers: int, host: str, path: str, tag: str) -> Offer:
    """`count` text-message notifications, Meta-shaped and signed, from the `customers` in
    turn (so consecutive ones are for different chatrooms, as from many people at once)."""
    requests: list[bytes] = []
    index: dict[str, int] = {}
    now = int(time.time())
    for n in range(count):
        wamid, body = text_notification(n % customers, f"{tag}-{rate}-{n}", now)
        index[wamid] = n
        requests.append(
            build_request(
                "POST",
                path,
                host=host,
                headers={
                    "user-agent": "facebookexternalua",
                    "content-type": "application/json",
                    "x-hub-signature-256": sign(body, APP_SECRET),
                },
                body=body,
            )
        )
    return Offer(rate=rate, requests=requests, index=index)


def text_notification(customer: int, tag: str, timestamp: int) -> tuple[str, bytes]:
    """Meta's notification of a text message from `customer`, as its wamid and body (sign it
    with `APP_SECRET`)."""
    wa_id = customer_wa_id(customer)
    wamid = new_wamid(wa_id)
    body = encode(
        text_message(
            f"Hi, where is my order {tag}?",
            waba_id=WABA_ID,
            phone_number_id=PHONE_NUMBER_ID,
            wa_id=wa_id,
            profile_name=f"Customer {customer}",
            wamid=wamid,
            timestamp=timestamp,
        )
    )
    return wamid, body


# -- offering and watching -----------------------------------------------------------------------


async def send_one(pool: ConnectionPool, offer: Offer, n: int) -> None:
    offer.handed[n] = time.monotonic()
    try:
        response = await pool.request(offer.requests[n])
        status = response.status
        if status != 200 and offer.error_sample is None:
            offer.error_sample = f"{status} {response.body[:300].decode(errors='replace')}"
    except (OSError, asyncio.IncompleteReadError) as exc:
        status = 0
        if offer.error_sample is None:
            offer.error_sample = f"no answer: {type(exc).__name__}: {exc}"
    offer.answered[n] = time.monotonic()
    offer.status[n] = status
    if status == 200:
        offer.accepted_count += 1


async def offer_at_rate(pool: ConnectionPool, offer: Offer) -> None:
    """Hand notification n to a connection at its due time, whatever the answers do; return
    once every one is answered."""
    offer.start = time.monotonic() + START_LEAD_SECONDS
    tasks: list[asyncio.Task[None]] = []
    for n in range(len(offer.requests)):
        delay = offer.due(n) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send_one(pool, offer, n)))
    await asyncio.gather(*tasks)


class StreamWatcher:
    """Reads the API key's live stream and times the `message.created` frame of each wamid of
    the current offer."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.offer: Offer | None = None
        self.unexpected = 0
        self.closed: str | None = None
        """Why the stream ended, if it did: no frame comes after that."""

    async def read(self) -> None:
        try:
            await self._read()
        except ConnectionClosed as exc:
            self.closed = f"closed by the server: {exc}"
        else:
            self.closed = "closed by the server"

    async def _read(self) -> None:
        async for raw in self.ws:
            read_at = time.monotonic()
            text = raw if isinstance(raw, str) else raw.decode()
            # Other frames (chatroom events, heartbeats) are not parsed: they cost nothing here.
            if '"message.created"' not in text:
                continue
            event = orjson.loads(text).get("event") or {}
            if event.get("type") != "message.created":
                continue
            wamid = event["data"]["message"].get("channel_message_id")
            offer = self.offer
            n = None if offer is None else offer.index.get(wamid)
            if offer is None or n is None:
                self.unexpected += 1
            elif not math.isnan(offer.processed[n]):
                offer.duplicates += 1
            else:
                offer.processed[n] = read_at
                offer.processed_count += 1


async def sample_backlog(offer: Offer) -> None:
    """Until cancelled: accepted and processed counts every SAMPLE_SECONDS."""
    while True:
        offer.samples.append(
            (time.monotonic() - offer.start, offer.accepted_count, offer.processed_count)
        )
        await asyncio.sleep(SAMPLE_SECONDS)


async def wait_until_processed(
    offer: Offer, watcher: StreamWatcher, deadline_seconds: float
) -> None:
    deadline = time.monotonic() + deadline_seconds
    while (
        offer.processed_count < offer.accepted_count
        and watcher.closed is None
        and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.01)


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    backend: str
    phase: str  # "first messages": every customer's first (new contact and chatroom); "steady"
    rate: int
    seconds: float
    offered: int
    accepted: int
    failed: int
    statuses: dict[str, int]  # answers by status; "0": no answer
    error_sample: str | None
    processed: int
    duplicates: int
    unexpected: int
    stream_closed: str | None
    send_rate: float
    accepted_rate: float
    processed_rate: float
    backlog_growth_per_s: float
    backlog_at_end: int
    peak_backlog: int
    drain_seconds: float
    answer: Latency
    to_chatroom: Latency
    generator_lag_p99_ms: float
    server_cpu_pct: float
    server_cpu_ms_per_notification: float
    client_cpu_pct: float
    other_cpu_pct: float
    timeline: list[tuple[float, int, int]]

    @property
    def problems(self) -> list[str]:
        found = []
        if self.failed:
            found.append(
                f"{self.failed} notifications not answered 200 ({self.statuses}); first: "
                f"{self.error_sample}"
            )
        if self.processed < self.accepted:
            found.append(f"{self.accepted - self.processed} accepted but never in a chatroom")
        if self.stream_closed is not None:
            found.append(f"the live stream ended: {self.stream_closed}")
        if self.duplicates or self.unexpected:
            found.append(f"{self.duplicates} duplicate frames, {self.unexpected} unexpected")
        return found

    @property
    def sustained(self) -> bool:
        return (
            not self.problems
            and self.accepted_rate >= MIN_ACCEPTED_SHARE * self.rate
            and self.backlog_growth_per_s <= MAX_GROWTH_SHARE * self.rate
        )

    @property
    def ok(self) -> bool:
        """Sustained, answering fast enough: what the target asks of a rate."""
        return self.sustained and self.answer.p99_ms < TARGET_ANSWER_P99_MS


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def growth_per_second(samples: list[tuple[float, int, int]], since: float, until: float) -> float:
    """Least-squares slope of accepted − processed against time, over [since, until]."""
    points = [(t, a - p) for t, a, p in samples if since <= t <= until]
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_b = sum(b for _, b in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (b - mean_b) for t, b in points) / spread


async def measure(
    backend: str,
    phase: str,
    offer: Offer,
    port: int,
    watcher: StreamWatcher,
    server_pid: int,
    options: Options,
) -> Point:
    watcher.offer = offer
    unexpected_before = watcher.unexpected
    # Fresh connections for each rate: the server closes keep-alive connections left idle for
    # a few seconds (uvicorn's keep-alive timeout), as while the next offer is built.
    pool = ConnectionPool("127.0.0.1", port, options.connections)
    server_cpu = loadgen.process_cpu_seconds(server_pid)
    own_cpu = _own_cpu_seconds()
    host_cpu = loadgen.host_busy_seconds()
    wall = time.monotonic()
    sampler = asyncio.create_task(sample_backlog(offer))
    try:
        await offer_at_rate(pool, offer)
        backlog_at_end = offer.accepted_count - offer.processed_count
        await wait_until_processed(offer, watcher, options.drain_deadline)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await pool.close()
    wall = time.monotonic() - wall
    server_cpu = loadgen.process_cpu_seconds(server_pid) - server_cpu
    own_cpu = _own_cpu_seconds() - own_cpu
    host_cpu = loadgen.host_busy_seconds() - host_cpu
    watcher.offer = None

    count = len(offer.requests)
    accepted = [n for n in range(count) if offer.status[n] == 200]
    last_answer = max(offer.answered)
    window = last_answer - offer.start
    processed_in_window = sum(1 for t in offer.processed if t <= last_answer)
    processed_times = [t for t in offer.processed if not math.isnan(t)]
    seconds = count / offer.rate
    handed = sorted(offer.handed)
    return Point(
        backend=backend,
        phase=phase,
        rate=offer.rate,
        seconds=round(seconds, 2),
        offered=count,
        accepted=len(accepted),
        failed=count - len(accepted),
        statuses={str(s): offer.status.count(s) for s in sorted(set(offer.status))},
        error_sample=offer.error_sample,
        processed=offer.processed_count,
        duplicates=offer.duplicates,
        unexpected=watcher.unexpected - unexpected_before,
        stream_closed=watcher.closed,
        send_rate=round((count - 1) / (handed[-1] - handed[0]), 1) if count > 1 else 0.0,
        accepted_rate=round(len(accepted) / window, 1),
        processed_rate=round(processed_in_window / window, 1),
        backlog_growth_per_s=round(growth_per_second(offer.samples, seconds / 2, seconds), 1),
        backlog_at_end=backlog_at_end,
        peak_backlog=max((a - p for _, a, p in offer.samples), default=0),
        drain_seconds=round(max(0.0, max(processed_times, default=last_answer) - last_answer), 3),
        answer=Latency.of([offer.answered[n] - offer.due(n) for n in range(count)]),
        to_chatroom=Latency.of(
            [
                offer.processed[n] - offer.answered[n]
                for n in accepted
                if not math.isnan(offer.processed[n])
            ]
        ),
        generator_lag_p99_ms=round(
            1000
            * loadgen.percentile(
                sorted(offer.handed[n] - offer.due(n) for n in range(count)), 0.99
            ),
            2,
        ),
        server_cpu_pct=round(100 * server_cpu / wall, 1),
        server_cpu_ms_per_notification=round(1000 * server_cpu / count, 3),
        client_cpu_pct=round(100 * own_cpu / wall, 1),
        other_cpu_pct=round(100 * max(0.0, host_cpu - server_cpu - own_cpu) / wall, 1),
        timeline=[(round(t, 2), a, p) for t, a, p in offer.samples],
    )


async def run_ladder(
    backend: str, server: ChatflowProcess, api_key: str, channel_id: str, options: Options
) -> list[Point]:
    tag = secrets.token_hex(3)
    host = f"127.0.0.1:{server.port}"
    path = f"/channels/whatsapp/{channel_id}/webhook"
    watcher = StreamWatcher(await open_stream(server.port, api_key))
    reader = asyncio.create_task(watcher.read())
    points: list[Point] = []
    try:
        opening_rate = min(options.rates)
        print(
            f"[{backend}] first messages: {options.customers:,} customers write once "
            f"(new contact and chatroom each) at {opening_rate:,}/s",
            flush=True,
        )
        offer = build_offer(opening_rate, options.customers, options.customers, host, path, tag)
        points.append(
            await measure(
                backend, "first messages", offer, server.port, watcher, server.pid, options
            )
        )
        print(f"  {_throughput_row(points[-1])}", flush=True)
        print(f"  {_latency_row(points[-1])}", flush=True)
        for rate in options.rates:
            count = max(1, round(rate * options.seconds))
            offer = build_offer(rate, count, options.customers, host, path, tag)
            print(
                f"[{backend}] {rate:,} notifications/s for {options.seconds:g} s "
                f"({count:,}, over the {options.customers:,} customers' chatrooms)",
                flush=True,
            )
            point = await measure(
                backend, "steady", offer, server.port, watcher, server.pid, options
            )
            points.append(point)
            print(f"  {_throughput_row(point)}", flush=True)
            print(f"  {_latency_row(point)}", flush=True)
            if watcher.closed is not None:
                break
            if not point.sustained and not options.all_rates:
                print(f"[{backend}] not sustained at {rate:,}/s: higher rates skipped", flush=True)
                break
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await watcher.ws.close()
    return points


def create_whatsapp_channel(api: Api, tag: str) -> str:
    made = api.ok(
        "POST",
        "/v1/channels",
        {
            "type": "whatsapp",
            "name": f"WhatsApp bench {tag}",
            "config": {
                "phone_number_id": PHONE_NUMBER_ID,
                "waba_id": WABA_ID,
                "graph_api_version": "v21.0",
                "access_token": "bench-access-token",
                "app_secret": APP_SECRET,
                "verify_token": "bench-verify-token",
            },
        },
        status=201,
    )
    return str(made["id"])


def run_backend(options: Options, backend: str, workdir: Path) -> list[Point]:
    env = server_env(webhook_timeout_seconds=5, background_work=True)
    # Nothing here sends to Meta; should anything try, it fails at once instead of waiting on
    # the internet.
    env["CHATFLOW_WHATSAPP_GRAPH_BASE_URL"] = "http://127.0.0.1:9"
    profiles = workdir / f"profiles-{backend}"
    if options.profile is not None:
        profile_every_thread(env, workdir, profiles, options.profile)
    with fresh_database(backend, workdir, options.postgres_url) as url:
        server = ChatflowProcess(
            url,
            log_path=workdir / f"chatflow-{backend}.log",
            env=env,
            cpus={0} if options.pin else None,
        )
        print(f"\n[{backend}] starting chatflow serve on a fresh database", flush=True)
        server.start()
        try:
            welcome = server.welcome()
            with contextlib.closing(Api(server.base_url, welcome.api_key)) as api:
                channel_id = create_whatsapp_channel(api, secrets.token_hex(3))
            points = asyncio.run(run_ladder(backend, server, welcome.api_key, channel_id, options))
        finally:
            server.stop()
        if options.profile is not None:
            merge_profiles(profiles, backend, options.profile)
    return points


# -- profiling -----------------------------------------------------------------------------------

# `python -m cProfile` sees the main thread only, and on PostgreSQL every statement runs on a
# database thread. This `sitecustomize`, on the server's PYTHONPATH, gives every thread a profiler
# of its own from its first call and writes each one's statistics when the process exits.
_PROFILER_BOOT = """\
import atexit, cProfile, marshal, os, threading

import time

_directory = os.environ.pop("CHATFLOW_BENCH_PROFILE_DIR", None)
_clock = os.environ.pop("CHATFLOW_BENCH_PROFILE_CLOCK", "cpu")
if _directory:
    _profiles = []

    def _profile_this_thread(*_):
        profiler = cProfile.Profile(time.thread_time) if _clock == "cpu" else cProfile.Profile()
        _profiles.append((threading.current_thread().name, profiler))
        profiler.enable()  # replaces this hook, for this thread only

    def _write():
        for number, (name, profiler) in enumerate(list(_profiles)):
            profiler.snapshot_stats()
            with open(os.path.join(_directory, f"{number:03d}-{name}.prof"), "wb") as out:
                marshal.dump(profiler.stats, out)

    threading.setprofile(_profile_this_thread)
    _profile_this_thread()
    atexit.register(_write)
"""


def profile_every_thread(env: dict[str, str], workdir: Path, directory: Path, clock: str) -> None:
    """Make the server started with `env` profile all its threads into `directory`, timed by
    each thread's CPU clock (`cpu`) or the wall clock (`wall`)."""
    boot = workdir / "profiler"
    boot.mkdir(exist_ok=True)
    (boot / "sitecustomize.py").write_text(_PROFILER_BOOT)
    directory.mkdir(exist_ok=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(boot), env.get("PYTHONPATH")]))
    env["CHATFLOW_BENCH_PROFILE_DIR"] = str(directory)
    env["CHATFLOW_BENCH_PROFILE_CLOCK"] = clock


def merge_profiles(directory: Path, backend: str, clock: str) -> None:
    """One statistics file of every thread, its summary, and each thread's time."""
    files = sorted(directory.glob("*.prof"))
    if not files:
        print("    profile: the server wrote no statistics (did it exit cleanly?)")
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"profile-whatsapp_inbound-{backend}-{clock}-{stamp}.pstats"
    pstats.Stats(*(str(f) for f in files)).dump_stats(str(path))
    print_profile(path)
    for f in files:
        own = sum(row[2] for row in pstats.Stats(str(f)).stats.values())  # type: ignore[attr-defined]
        if own >= 0.05:
            print(f"    thread {f.stem.split('-', 1)[1]:<24} {own:8.2f} s ({clock})")


# -- reporting -----------------------------------------------------------------------------------

THROUGHPUT_HEADER = (
    f"{'backend':<10} {'phase':<14} {'rate/s':>6} {'sent':>6} {'acc/s':>6} {'proc/s':>6} "
    f"{'growth/s':>8} {'@end':>6} {'peak':>6} {'drain s':>7} {'srv CPU':>7} {'ms/ntf':>6} "
    f"{'client':>6} {'other':>5}  sustained"
)
LATENCY_HEADER = (
    f"{'backend':<10} {'phase':<14} {'rate/s':>6} {'answer p50':>10} {'p90':>6} {'p99':>7} "
    f"{'max':>7}   {'accept→chatroom p50':>19} {'p90':>7} {'p99':>7} {'max':>7} "
    f"{'gen lag p99':>11}  ok"
)


def _throughput_row(p: Point) -> str:
    return (
        f"{p.backend:<10} {p.phase:<14} {p.rate:>6,} {p.offered:>6,} {p.accepted_rate:>6,.0f} "
        f"{p.processed_rate:>6,.0f} {p.backlog_growth_per_s:>8,.1f} {p.backlog_at_end:>6,} "
        f"{p.peak_backlog:>6,} {p.drain_seconds:>7.2f} {p.server_cpu_pct:>6.0f}% "
        f"{p.server_cpu_ms_per_notification:>6.2f} {p.client_cpu_pct:>5.0f}% "
        f"{p.other_cpu_pct:>4.0f}%  {'yes' if p.sustained else 'NO'}"
    )


def _latency_row(p: Point) -> str:
    a, c = p.answer, p.to_chatroom
    return (
        f"{p.backend:<10} {p.phase:<14} {p.rate:>6,} {a.p50_ms:>10.2f} {a.p90_ms:>6.2f} "
        f"{a.p99_ms:>7.2f} {a.max_ms:>7.1f}   {c.p50_ms:>19.2f} {c.p90_ms:>7.2f} {c.p99_ms:>7.2f} "
        f"{c.max_ms:>7.1f} {p.generator_lag_p99_ms:>11.2f}  {'yes' if p.ok else 'NO'}"
    )


def best_rate(points: list[Point], backend: str) -> int | None:
    """The highest steady rate sustained with answer p99 under the target."""
    passing = [p.rate for p in points if p.backend == backend and p.phase == "steady" and p.ok]
    return max(passing, default=None)


def print_report(options: Options, points: list[Point], meta: dict[str, Any]) -> None:
    layout = "server pinned to CPU 0, sender and stream to CPU 1" if options.pin else "no pinning"
    print()
    print(
        f"chatflow inbound WhatsApp notifications: {meta['cpus']} CPUs, {layout}; "
        f"{options.customers:,} customers; {options.seconds:g} s per rate, open loop over "
        f"{options.connections} keep-alive connections; background work in the server process"
    )
    print(DEFINITIONS)
    print("\n== throughput (backlog in notifications)")
    print(THROUGHPUT_HEADER)
    for p in points:
        print(_throughput_row(p))
    print("\n== latency, ms")
    print(LATENCY_HEADER)
    for p in points:
        print(_latency_row(p))
    print("\ntarget: sustained >= 1,000 notifications/s with answer p99 < 20 ms")
    for backend in options.backends:
        best = best_rate(points, backend)
        mark = "PASS" if best is not None and best >= TARGET_RATE else "FAIL"
        shown = "none of the rates" if best is None else f"{best:,}/s"
        print(f"  {mark}  {backend:<10} highest rate sustained with answer p99 < 20 ms: {shown}")
    problems = [f"{p.backend} {p.phase} {p.rate}/s: {x}" for p in points for x in p.problems]
    if problems:
        print("\nPROBLEMS:", *problems, sep="\n  ")


def write_results(options: Options, points: list[Point], meta: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"whatsapp_inbound-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        **meta,
        "options": asdict(options),
        "definitions": DEFINITIONS,
        "best_rate": {b: best_rate(points, b) for b in options.backends},
        "points": [
            {
                **asdict(p),
                "sustained": p.sustained,
                "ok": p.ok,
                "problems": p.problems,
            }
            for p in points
        ],
    }
    path.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if options.pin:
        os.sched_setaffinity(0, {1})
    meta = loadgen.run_meta(pinned=options.pin)
    loadgen.note_busy_machine(meta, "the figures will be low and noisy (see `other` CPU)")
    workdir = Path(tempfile.mkdtemp(prefix="chatflow-whatsapp-"))
    print(f"bench: work directory {workdir}", flush=True)
    points: list[Point] = []
    try:
        for backend in options.backends:
            points.extend(run_backend(options, backend, workdir))
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
    missed = any((best_rate(points, b) or 0) < TARGET_RATE for b in options.backends)
    return 1 if options.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
