"""Webhook sender benchmark: signed attempts per second at several numbers in flight.

    .venv/bin/python -m bench.webhook_sender                        # 1, 8, 32, 64 in flight
    .venv/bin/python -m bench.webhook_sender --concurrency 32 --duration 10
    .venv/bin/python -m bench.webhook_sender --sender current --sender /tmp/old_sender.py

The receiver is `tests/webhook_receiver.py`'s, in its own process (asyncio and httptools, tens of
thousands of requests per second), so it does not compete with the sender for the GIL. With two
CPUs or more the receiver is pinned to CPU 1 and this process to CPU 0 (`--no-pin` turns it off).

At each concurrency a fresh `WebhookSender` gets `--warmup` seconds (connections opened), then
that many tasks send for `--duration` seconds, each its next attempt as soon as the last one came
back, the way the dispatcher keeps attempts in flight. Every attempt must succeed: failures are
counted and the first one is printed.

`--sender` picks the implementations to compare: `current` (the default) is
`chatflow.webhooks.sender`; a path loads a copy of another version of `sender.py` (one with the
same constructor, `send` and `aclose`), so before/after figures come from one run on one machine.
`--host localhost` sends to a name instead of an IP literal, which adds the guard's lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from bench.loadgen import pinned, process_cpu_seconds
from chatflow.clock import Clock, SystemClock
from chatflow.webhooks.guard import UrlGuard
from chatflow.webhooks.signing import new_secret, webhook_headers

READY_MARK = "RECEIVER-PORT "
# A template.response event of a realistic size.
BODY = (
    b'{"type":"template.response","timestamp":"2026-03-02T09:00:00.000Z","data":{"id":"evt_01'
    b'hq3zk8v9x0c2e4g6j8m0p2r4t6","chatroom_id":"chr_01hq3zk8v9x0c2e4g6j8m0p2r4","seq":42,'
    b'"message_id":"msg_01hq3zk8v9x0c2e4g6j8m0p2r4t7","template":"order_update","button":'
    b'{"index":0,"text":"Track my order","payload":"track"},"contact":{"id":"con_01hq3zk8v9x0'
    b'c2e4g6j8m0p2r4t8","phone":"+4915112345678","name":"Ada Lovelace"}}}'
)
GUARD_SETTING = "127.0.0.0/8, ::1/128"


class Sender(Protocol):
    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> _Result: ...

    async def aclose(self) -> None: ...


class _Result(Protocol):
    @property
    def succeeded(self) -> bool: ...

    @property
    def status_code(self) -> int | None: ...

    @property
    def error(self) -> str | None: ...


class SenderFactory(Protocol):
    def __call__(
        self, guard: UrlGuard, *, clock: Clock, timeout_seconds: float, max_connections: int
    ) -> Sender: ...


@dataclass(frozen=True, slots=True)
class Point:
    sender: str
    concurrency: int
    sends: int
    errors: int
    error_sample: str | None
    seconds: float
    p50_ms: float
    p99_ms: float
    sender_cpu_seconds: float
    receiver_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.sends / self.seconds

    @property
    def cpu_microseconds_per_send(self) -> float:
        return self.sender_cpu_seconds / max(1, self.sends + self.errors) * 1e6


def load_sender(choice: str) -> tuple[str, SenderFactory]:
    """`current`, or the path of a file that defines `WebhookSender`."""
    if choice == "current":
        from chatflow.webhooks.sender import WebhookSender

        return "current", cast(SenderFactory, WebhookSender)
    path = Path(choice)
    spec = importlib.util.spec_from_file_location(f"bench_sender_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"bench: cannot load a sender from {choice}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return path.stem, cast(SenderFactory, module.WebhookSender)


async def measure(
    label: str,
    factory: SenderFactory,
    url: str,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    receiver_pid: int,
) -> Point:
    headers = webhook_headers([new_secret()], "evt_bench", int(time.time()), BODY)
    sender = factory(
        UrlGuard.from_setting(GUARD_SETTING),
        clock=SystemClock(),
        timeout_seconds=15.0,
        max_connections=max(64, concurrency),
    )
    latencies: list[float] = []
    errors: list[str] = []
    recording = False

    async def worker(until: float) -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            result = await sender.send(url, headers, BODY)
            if not recording:
                continue
            latencies.append(time.perf_counter() - started)
            if not result.succeeded:
                errors.append(f"{result.status_code}: {result.error}")

    try:
        warm_until = time.perf_counter() + warmup
        await asyncio.gather(*(worker(warm_until) for _ in range(concurrency)))
        recording = True
        sender_cpu = time.process_time()
        receiver_cpu = process_cpu_seconds(receiver_pid)
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + duration) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        sender_cpu = time.process_time() - sender_cpu
        receiver_cpu = process_cpu_seconds(receiver_pid) - receiver_cpu
    finally:
        await sender.aclose()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return Point(
        sender=label,
        concurrency=concurrency,
        sends=len(latencies) - len(errors),
        errors=len(errors),
        error_sample=errors[0] if errors else None,
        seconds=seconds,
        p50_ms=quantiles[49] * 1000,
        p99_ms=quantiles[98] * 1000,
        sender_cpu_seconds=sender_cpu,
        receiver_cpu_seconds=receiver_cpu,
    )


def table(points: Sequence[Point]) -> str:
    header = (
        f"{'sender':<16} {'in flight':>9} {'sends/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'sender CPU':>10} {'µs CPU/send':>11} {'recv CPU':>9}"
    )
    lines = [header, "-" * len(header)]
    for point in points:
        lines.append(
            f"{point.sender:<16} {point.concurrency:>9} {point.per_second:>9,.0f} "
            f"{point.p50_ms:>8.2f} {point.p99_ms:>8.2f} {point.errors:>7} "
            f"{point.sender_cpu_seconds / point.seconds:>10.0%} "
            f"{point.cpu_microseconds_per_send:>11,.0f} "
            f"{point.receiver_cpu_seconds / point.seconds:>9.0%}"
        )
    lines.append(
        "CPU columns: share of one core over the measured seconds; µs CPU/send is the sender's "
        "CPU time per attempt, which a busy machine disturbs less than sends/s."
    )
    return "\n".join(lines)


def serve_receiver() -> None:
    """The receiver process: print the port, serve until stdin closes."""
    from tests.webhook_receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        print(f"{READY_MARK}{receiver.port}", flush=True)
        parent_gone = threading.Thread(target=sys.stdin.read, daemon=True)
        parent_gone.start()
        # The receiver records every request; forgetting them keeps its memory flat.
        while parent_gone.is_alive():
            receiver.clear()
            parent_gone.join(0.5)


def start_receiver(cpus: set[int] | None) -> tuple[subprocess.Popen[str], int]:
    argv = pinned([sys.executable, "-m", "bench.webhook_sender", "--receiver"], cpus)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(READY_MARK):
        proc.kill()
        raise SystemExit(f"bench: the receiver did not start (it printed {line!r})")
    return proc, int(line.removeprefix(READY_MARK))


def stop_receiver(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook_sender",
        description="Webhook attempts per second through WebhookSender, at several concurrencies.",
    )
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each point")
    parser.add_argument(
        "--sender",
        action="append",
        help="`current` or the path of a sender.py to compare (repeatable; default: current)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="host in the URL: 127.0.0.1 (default) or localhost"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.receiver:
        serve_receiver()
        return 0
    senders = [load_sender(choice) for choice in args.sender or ["current"]]
    concurrencies = [int(part) for part in args.concurrency.split(",")]
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    proc, port = start_receiver({1} if pin else None)
    if pin:
        os.sched_setaffinity(0, {0})
    url = f"http://{args.host}:{port}/hooks/in"
    points: list[Point] = []
    try:
        for concurrency in concurrencies:
            for label, factory in senders:
                point = asyncio.run(
                    measure(
                        label,
                        factory,
                        url,
                        concurrency=concurrency,
                        warmup=args.warmup,
                        duration=args.duration,
                        receiver_pid=proc.pid,
                    )
                )
                points.append(point)
                print(
                    f"bench: {label} at {concurrency} in flight: {point.per_second:,.0f} sends/s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        stop_receiver(proc)
    pinning = "sender on CPU 0, receiver on CPU 1" if pin else "not pinned"
    print(f"\nWebhook sender, POST {len(BODY)} bytes to {url} ({pinning}), asyncio loop")
    print(table(points))
    failed = [point for point in points if point.errors]
    for point in failed:
        print(f"{point.sender} at {point.concurrency}: first error: {point.error_sample}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
