"""Instructions per request, counted by valgrind's callgrind: what the hot paths cost, in a
figure the machine's noise does not move, for comparing two trees of the code.

    .venv/bin/python -m bench.instructions                  # 300 requests of each scenario
    .venv/bin/python -m bench.instructions --requests 100   # quicker, a little less exact

Requests per second on this machine move by half from one minute to the next (another tenant's
load, the host's clock), so two trees' throughputs measured minutes apart say little. Callgrind
counts the instructions the process executes, whatever else runs: two runs of the same tree
agree to within about 3 % (what varies is timing inside the server: how many requests share a
commit, how often idle timers fire), so a change of 10 % or more between trees is real. Two
trees can run at once, one per core: `PYTHONPATH=<other tree>/src:. python -m bench.instructions`
measures the other tree's server with this benchmark.

`chatflow serve` runs under callgrind (about fifty times slower) on a fresh database, SQLite or
PostgreSQL (`--database`; on PostgreSQL the count is chatflow's side only, the driver
included, not the database server's), with its background work. Through the API: the
send-message rooms of `bench.http_api`, and a WhatsApp channel. Each scenario first runs
`--warmup` requests, then the counters are zeroed (`callgrind_control -z`), `--requests`
requests are sent one after another on one keep-alive connection, the run waits until the work
they caused is done, and the counters are dumped (`callgrind_control -d`). Everything the
process did in between counts: applying the notifications, the log consumers, the live
stream's reads, idle timers.

- **send-message**: `POST /v1/chatrooms/{id}/messages` over the rooms in turn; done when the
  last answer is read and the process has been left alone for `--settle` seconds.
- **whatsapp-inbound**: Meta-signed text notifications from `--customers` customers in turn
  (each already has a contact and chatroom, as in `bench.whatsapp_inbound`), answered 200 and
  applied; done when no notification is pending and `--settle` seconds have passed.
- **whatsapp-new-customer**: the same, each from a customer writing for the first time, who
  becomes a contact with a chatroom.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from tests.reliability.kill_harness import Api, fresh_database, server_env
from tests.whatsapp_payloads import sign

from bench.http_api import MESSAGE_TEXT, discover, set_up_rooms
from bench.servers import Server, free_port, parse_welcome
from bench.whatsapp_inbound import APP_SECRET, create_whatsapp_channel, text_notification
from chatflow.storage.database import driver_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SCENARIOS = ("send-message", "whatsapp-inbound", "whatsapp-new-customer")


@dataclass(frozen=True, slots=True)
class Count:
    scenario: str
    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql"), default="sqlite", help="(%(default)s)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CHATFLOW_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"),
        help="a server where a fresh database is created and dropped (default: "
        "$CHATFLOW_BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument("--requests", type=int, default=300, help="counted, per scenario")
    parser.add_argument("--warmup", type=int, default=60, help="before counting, per scenario")
    parser.add_argument("--rooms", type=int, default=32, help="chatrooms the sends spread over")
    parser.add_argument("--customers", type=int, default=32, help="WhatsApp senders, in turn")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds left alone before each dump"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"bench.instructions: {tool} is not installed (apt-get install valgrind)")
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="chatflow-instructions-"))
    try:
        counts = run(options, workdir)
    finally:
        if options.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    source = _source()
    print(f"\nchatflow from {source}, on {options.database}")
    print(f"{'scenario':<22} {'requests':>8} {'instructions':>16} {'per request':>12}")
    for count in counts:
        print(
            f"{count.scenario:<22} {count.requests:>8,} {count.instructions:>16,} "
            f"{count.per_request:>12,.0f}"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"instructions-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "options": vars(options),
                "source": source,
                "counts": [asdict(c) | {"per_request": round(c.per_request)} for c in counts],
            },
            indent=2,
        )
    )
    print(f"results: {path.relative_to(ROOT)}")
    return 0


def run(options: argparse.Namespace, workdir: Path) -> list[Count]:
    with fresh_database(options.database, workdir, options.postgres_url) as url:
        engine = sa.create_engine(driver_url(url))
        try:
            return _run(options, workdir, url, engine)
        finally:
            engine.dispose()


def _run(options: argparse.Namespace, workdir: Path, url: str, database: sa.Engine) -> list[Count]:
    counter = workdir / "callgrind.out"
    port = free_port()
    env = server_env(webhook_timeout_seconds=5, background_work=True)
    env["CHATFLOW_WHATSAPP_GRAPH_BASE_URL"] = "http://127.0.0.1:9"  # nothing goes to Meta
    server = Server(
        "chatflow serve (callgrind)",
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={counter}",
            sys.executable,
            "-m",
            "chatflow.cli",
            "serve",
            "--port",
            str(port),
            "--database-url",
            url,
            "--log-level",
            "warning",
        ],
        port=port,
        log_path=workdir / "server.log",
        cpus=None,
        ready_path="/healthz",
        env=env,
    )
    print("starting chatflow serve under callgrind (a minute or two)", flush=True)
    server.start(timeout=900)
    try:
        welcome = parse_welcome(server.output())
        with contextlib.closing(Api(server.base_url, welcome.api_key)) as api:
            org_id, admin_id = discover(api)
            rooms = set_up_rooms(api, org_id, admin_id, welcome.channel_id, options.rooms)
            channel_id = create_whatsapp_channel(api, "instructions")
        paths = [f"/v1/chatrooms/{room}/messages" for room in rooms.room_ids]
        message = json.dumps({"text": MESSAGE_TEXT}).encode()
        auth = {"Authorization": f"Bearer {welcome.api_key}", "Content-Type": "application/json"}
        hook = f"/channels/whatsapp/{channel_id}/webhook"
        with httpx.Client(base_url=server.base_url, timeout=300.0) as client:
            notify = _notifier(client, hook)
            for n in range(options.customers):  # each customer's contact and chatroom
                notify(n, n)
            _wait_until_applied(database)
            counts = []
            scenario_runs: dict[str, Callable[[int], None]] = {
                "send-message": lambda n: _expect(
                    client.post(paths[n % len(paths)], content=message, headers=auth), 201
                ),
                "whatsapp-inbound": lambda n: notify(n % options.customers, n),
                # Customers after the first `--customers`: each writes for the first time.
                "whatsapp-new-customer": lambda n: notify(options.customers + n, n),
            }
            for scenario in SCENARIOS:
                counts.append(
                    _measure(server, counter, database, options, scenario, scenario_runs[scenario])
                )
                print(f"  {scenario}: {counts[-1].per_request:,.0f} instructions a request")
        return counts
    finally:
        server.stop()


def _measure(
    server: Server,
    counter: Path,
    database: sa.Engine,
    options: argparse.Namespace,
    scenario: str,
    send: Callable[[int], None],
) -> Count:
    """Warm up, then count `--requests` of `send` and the work they cause."""
    for n in range(options.warmup):
        send(n)
    _settle(database, options.settle)

    def counted() -> None:
        for n in range(options.requests):
            send(options.warmup + n)
        _settle(database, options.settle)

    return Count(scenario, options.requests, _count(server, counter, counted))


def _notifier(client: httpx.Client, hook: str) -> Callable[[int, int], None]:
    now = int(time.time())

    def notify(customer: int, n: int) -> None:
        _, body = text_notification(customer, str(n), now)
        headers = {
            "content-type": "application/json",
            "x-hub-signature-256": sign(body, APP_SECRET),
        }
        _expect(client.post(hook, content=body, headers=headers), 200)

    return notify


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(f"answered {response.status_code}: {response.text[:500]}")


def _wait_until_applied(database: sa.Engine, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    pending = sa.text("SELECT count(*) FROM channel_notifications WHERE status = 'pending'")
    while True:
        with database.connect() as conn:
            if not conn.execute(pending).scalar():
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the notifications were not applied in time")
        time.sleep(0.2)


def _settle(database: sa.Engine, seconds: float) -> None:
    _wait_until_applied(database)
    time.sleep(seconds)


def _count(server: Server, counter: Path, work: Callable[[], None]) -> int:
    """The instructions the server executes while `work` runs: counters zeroed before, dumped
    after."""
    before = set(counter.parent.glob(counter.name + ".*"))
    _control("-z", server.pid)
    work()
    _control("-d", server.pid)
    deadline = time.monotonic() + 120
    while not (dumps := set(counter.parent.glob(counter.name + ".*")) - before):
        if time.monotonic() > deadline:
            raise RuntimeError("callgrind wrote no dump")
        time.sleep(0.2)
    (dump,) = dumps
    for _ in range(600):
        totals = [line for line in dump.read_text().splitlines() if line.startswith("totals:")]
        if totals:
            return int(totals[0].split()[1])
        time.sleep(0.2)
    raise RuntimeError(f"{dump} has no totals line")


def _control(command: str, pid: int) -> None:
    subprocess.run(["callgrind_control", command, str(pid)], check=True, capture_output=True)


def _source() -> str:
    """Where the server's `chatflow` package comes from (PYTHONPATH may point at another tree)."""
    found = subprocess.run(
        [sys.executable, "-c", "import chatflow; print(chatflow.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(Path(found.stdout.strip()).parent)


if __name__ == "__main__":
    sys.exit(main())
