"""SIGKILL soak: kill `chatflow serve` many times while clients send messages and a local
receiver collects webhooks, then check that nothing was lost.

    .venv/bin/python -m bench.kill_soak                          # 50 kills on each backend
    .venv/bin/python -m bench.kill_soak --kills 10 --backends sqlite

The same harness as the CI test (`tests/reliability/kill_harness.py`, which lists what is
checked), with many more kills. Exit status 1 if anything was lost or any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.reliability.kill_harness import SoakPlan, SoakReport, fresh_database, run_soak

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True, slots=True)
class Options:
    backends: list[str]
    plan: SoakPlan
    postgres_url: str
    keep: bool


def _pair(text: str, name: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: two seconds, e.g. 0.3,2") from None
    if pair[0] < 0 or pair[1] < pair[0]:
        raise argparse.ArgumentTypeError(f"{name}: 0 <= low <= high")
    return pair


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kill_soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kills", type=int, default=50, help="per backend (default %(default)s)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="default: %(default)s")
    parser.add_argument("--senders", type=int, default=4, help="concurrent clients (%(default)s)")
    parser.add_argument("--chatrooms", type=int, default=16, help="default: %(default)s")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.02,
        help="each client's pause after an acknowledged send, in seconds (default %(default)s)",
    )
    parser.add_argument(
        "--uptime",
        default="0.3,2.0",
        help="seconds the server runs between its answering and the next kill, uniform in "
        "low,high (default %(default)s)",
    )
    parser.add_argument(
        "--downtime",
        default="0,0.5",
        help="seconds it stays dead before the restart, uniform in low,high (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=20261122, help="default: %(default)s")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CHATFLOW_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"),
        help="a server where a fresh database is created and dropped "
        "(default: $CHATFLOW_BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in backends:
        if backend not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {backend!r}: use sqlite and/or postgresql")
    if args.kills < 1 or args.senders < 1 or args.chatrooms < 1:
        parser.error("--kills, --senders and --chatrooms must be at least 1")
    try:
        uptime = _pair(args.uptime, "--uptime")
        downtime = _pair(args.downtime, "--downtime")
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    plan = SoakPlan(
        kills=args.kills,
        seed=args.seed,
        senders=args.senders,
        chatrooms=args.chatrooms,
        uptime_seconds=uptime,
        downtime_seconds=downtime,
        send_pause_seconds=args.pause,
        drain_seconds=600.0,
    )
    return Options(backends=backends, plan=plan, postgres_url=args.postgres_url, keep=args.keep)


LEGEND = """\
  acked     sends answered 2xx (each sent again with its Idempotency-Key until it was)
  retried   of those, sends that got no answer at first (the server was killed, or down)
  replays   answers replayed: the send had committed before a kill cut its answer off
  5xx       5xx answers, retried like no answer (none expected)
  expected  deliveries the two endpoints (message.created, *) must get
  received  webhook requests, duplicates (dup) included
  lost      acknowledged messages not stored + events never received: must be 0
  restart s median start-up after a kill"""

HEADER = (
    f"{'backend':<10} {'kills':>5} {'acked':>7} {'retried':>7} {'replays':>7} {'5xx':>4} "
    f"{'stored':>7} "
    f"{'events':>7} {'expected':>8} {'received':>8} {'dup':>5} {'lost':>4} {'restart s':>9} "
    f"{'time s':>7}"
)


def _row(r: SoakReport) -> str:
    return (
        f"{r.backend:<10} {r.kills:>5} {r.sends_acknowledged:>7,} {r.sends_retried:>7,} "
        f"{r.replays:>7,} {r.server_errors:>4} {r.messages_stored:>7,} {r.events:>7,} "
        f"{r.deliveries_expected:>8,} "
        f"{r.requests_received:>8,} {r.duplicates:>5,} {r.lost:>4} "
        f"{r.restart_seconds_median:>9.1f} {r.seconds:>7.0f}"
    )


def print_report(options: Options, reports: list[SoakReport]) -> None:
    plan = options.plan
    print()
    print(
        f"chatflow SIGKILL soak: {plan.kills} kills per backend, {plan.senders} clients "
        f"({plan.send_pause_seconds} s pause after each send) into {plan.chatrooms} chatrooms, "
        f"up {plan.uptime_seconds[0]}–{plan.uptime_seconds[1]} s between kills, seed {plan.seed}"
    )
    print(LEGEND)
    print(HEADER)
    for report in reports:
        print(_row(report))
    for report in reports:
        if report.problems:
            print(f"\n{report.backend}: PROBLEMS", *report.problems[:50], sep="\n  ")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="chatflow-soak-"))
    print(f"bench: work directory {workdir}", flush=True)
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    reports: list[SoakReport] = []
    try:
        for backend in options.backends:
            print(f"\n[{backend}]", flush=True)
            with fresh_database(backend, workdir, options.postgres_url) as url:
                reports.append(
                    run_soak(
                        backend,
                        url,
                        options.plan,
                        workdir,
                        progress=lambda text: print(f"  {text}", flush=True),
                    )
                )
            print(f"  {reports[-1].summary()}", flush=True)
    finally:
        failed = any(r.problems for r in reports)
        if options.keep or failed:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(options, reports)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"kill_soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        "started_at": started_at,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "plan": asdict(options.plan),
        "reports": [{**asdict(r), "lost": r.lost} for r in reports],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {path.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
