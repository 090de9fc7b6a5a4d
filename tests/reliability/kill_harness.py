"""Nothing lost: kill the real server with SIGKILL again and again while clients send messages and
a local receiver collects webhooks, then check that every acknowledged message is stored and that
every event reached the receiver.

The same code runs a few kills in CI (`tests/reliability/test_sigkill.py`) and many in the soak
benchmark (`python -m bench.kill_soak`); `bench.webhook_drain` uses its server process and
database helpers.

What is checked, after the last restart (see `SoakReport.problems`):
- every message whose send was acknowledged (a 2xx, possibly a replay after a retry with the same
  `Idempotency-Key`) is stored, with its text;
- no `Idempotency-Key` stored its message twice (each key has its own text);
- every stored message has its `message.created` event, and that event reached the endpoint
  subscribed to `message.created`; every event of the log reached the endpoint subscribed to `*`;
- after deduplication by `webhook-id`, each endpoint received exactly the events of the log, no
  more; every copy of one `webhook-id` carries the same body, whose `id` is the `webhook-id`;
- every request verifies with its endpoint's secret;
- no delivery is left pending or failed.
Duplicates before deduplication are allowed (a process killed after the receiver answered but
before it recorded the outcome sends again) and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from psycopg import sql
from standardwebhooks import WebhookVerificationError
from tests.webhook_receiver import Received, WebhookReceiver

MESSAGES_PATH = "/messages"
EVERYTHING_PATH = "/everything"
PAGE = 100
GIVE_UP_SECONDS = 120.0
"""A send still unanswered after this long fails the run: the server did not come back."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def millis_of(timestamp: str) -> int:
    """The API's RFC 3339 times (`…T09:00:00.123Z`) as Unix milliseconds."""
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


# -- the server process --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome:
    """What `chatflow serve` prints when it creates the demo organization on first start."""

    api_key: str
    channel_id: str


class ChatflowProcess:
    """`chatflow serve` on one port and database, started and killed as often as wanted.

    It runs as `python -m chatflow.cli`, so the process signalled is the server itself. Its
    output goes to `log_path`, appended across restarts.
    """

    def __init__(
        self,
        database_url: str,
        *,
        log_path: Path,
        env: Mapping[str, str],
        port: int | None = None,
        cpus: set[int] | None = None,
        profile_path: Path | None = None,
    ) -> None:
        """`cpus`: pin the process to these; `profile_path`: run it under cProfile (main thread
        only), which writes its statistics there when the process is stopped (not killed)."""
        self.database_url = database_url
        self.log_path = log_path
        self.port = port or free_port()
        self.cpus = cpus
        self.profile_path = profile_path
        self.env = dict(env)
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "the server is not running"
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self, timeout: float = 120.0) -> float:
        """Start it and return once `/healthz` answers; how many seconds that took."""
        assert self._proc is None, "the server is already running"
        started = time.monotonic()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        profiler = (
            [] if self.profile_path is None else ["-m", "cProfile", "-o", str(self.profile_path)]
        )
        argv = [
            sys.executable,
            *profiler,
            "-m",
            "chatflow.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            "--log-level",
            "warning",
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        if self.cpus is not None:
            os.sched_setaffinity(self._proc.pid, self.cpus)
        self.starts += 1
        deadline = started + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._proc.poll() is not None:
                    code = self._proc.returncode
                    self._proc = None
                    raise RuntimeError(
                        f"chatflow serve exited with {code} on start:\n{self.output()[-3000:]}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(self.base_url + "/healthz").status_code == 200:
                        return time.monotonic() - started
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"chatflow serve did not answer within {timeout:.0f} s")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, whatever was in flight is cut off."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        """SIGINT, as Ctrl-C (uvicorn runs the app's shutdown); SIGKILL after 30 s."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def output(self) -> str:
        """What the process printed since its last start."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def welcome(self) -> Welcome:
        text = self.output()
        key = re.search(r"API key\s+(\S+)", text)
        channel = re.search(r"Sandbox channel\s+(\S+)", text)
        if key is None or channel is None:
            raise RuntimeError(
                "chatflow serve printed no demo API key and sandbox channel (is the database not "
                f"fresh?):\n{text[-3000:]}"
            )
        return Welcome(api_key=key.group(1), channel_id=channel.group(1))


def server_env(*, webhook_timeout_seconds: float, background_work: bool = True) -> dict[str, str]:
    """The environment of a server under test: webhooks may go to a receiver on this machine."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CHATFLOW_") or name.startswith("CHATFLOW_TEST_")
    }
    # Without cached bytecode (PYTHONDONTWRITEBYTECODE, as on some CI machines) every start
    # compiles every module again: seconds per restart. The cache goes to a directory of its own.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "chatflow-pycache"))
    env.update(
        CHATFLOW_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        CHATFLOW_WEBHOOK_TIMEOUT_SECONDS=str(webhook_timeout_seconds),
        CHATFLOW_BACKGROUND_WORK="true" if background_work else "false",
    )
    return env


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of `server_url` (any database there that
    may create databases), dropped afterwards."""
    name = f"chatflow_kill_{secrets.token_hex(5)}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def fresh_database(backend: str, workdir: Path, postgres_url: str) -> Iterator[str]:
    """A URL of a new, empty database: a SQLite file in `workdir`, or one on `postgres_url`."""
    if backend == "sqlite":
        path = workdir / f"chatflow-{secrets.token_hex(4)}.db"
        yield f"sqlite:///{path}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}: use sqlite or postgresql")
    with fresh_postgres_database(postgres_url) as url:
        yield url


# -- the API, as the harness uses it -------------------------------------------------------------


class Api:
    """A blocking client of the organization's API key, for setting up and checking."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.client = httpx.Client(base_url=base_url, headers=self.auth, timeout=30.0)

    def ok(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        status: int = 200,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = self.client.request(method, path, json=body, params=params)
        if response.status_code != status:
            raise RuntimeError(
                f"{method} {path} answered {response.status_code}, expected {status}: "
                f"{response.text[:1000]}"
            )
        result: dict[str, Any] = response.json()
        return result

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a cursor-paged list. (The event log always returns a cursor, to poll
        from: a short page is the end.)"""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query: dict[str, Any] = {"limit": PAGE, **params}
            if cursor is not None:
                query["cursor"] = cursor
            page = self.ok("GET", path, params=query)
            found.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor is None or len(page["data"]) < PAGE:
                return found

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    path: str
    secret: str
    event_types: list[str]
    created_at_ms: int


def create_endpoint(api: Api, receiver: WebhookReceiver, path: str, types: list[str]) -> Endpoint:
    made = api.ok(
        "POST",
        "/v1/webhook-endpoints",
        {"url": receiver.url_for(path), "event_types": types},
        status=201,
    )
    return Endpoint(
        id=str(made["id"]),
        path=path,
        secret=str(made["secret"]),
        event_types=list(made["event_types"]),
        created_at_ms=millis_of(made["created_at"]),
    )


def open_chatrooms(api: Api, channel_id: str, count: int, tag: str) -> list[str]:
    """`count` sandbox chatrooms whose customer wrote first, so their window is open."""
    rooms = []
    for n in range(count):
        contact = api.ok(
            "POST",
            "/v1/contacts",
            {"first_name": f"Customer {n}", "external_id": f"{tag}-{n}", "opted_in": True},
            status=201,
        )
        first = api.ok(
            "POST",
            "/v1/sandbox/inbound",
            {"channel_id": channel_id, "contact_id": contact["id"], "text": "Hello, anyone?"},
            status=201,
        )
        rooms.append(str(first["chatroom_id"]))
    return rooms


def has_deliveries(api: Api, endpoint: Endpoint, status: str) -> bool:
    page = api.ok(
        "GET",
        f"/v1/webhook-endpoints/{endpoint.id}/deliveries",
        params={"status": status, "limit": 1},
    )
    return bool(page["data"])


# -- the soak ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SoakPlan:
    kills: int
    seed: int = 20261122
    senders: int = 4
    chatrooms: int = 8
    uptime_seconds: tuple[float, float] = (0.3, 1.5)
    """How long the server runs after it answers, before the next SIGKILL (uniform)."""
    downtime_seconds: tuple[float, float] = (0.0, 0.3)
    """How long it stays dead before the restart (uniform)."""
    send_pause_seconds: float = 0.0
    """Each sender's pause after an acknowledged send: sets the pace (0: as fast as it can)."""
    webhook_timeout_seconds: float = 1.0
    """The server's attempt timeout; a delivery held by a killed process is claimed again
    this + 5 s after it was claimed."""
    drain_seconds: float = 90.0
    """How long the receiver may take to get everything after the last restart."""


@dataclass(slots=True)
class Send:
    key: str
    chatroom_id: str
    text: str
    tries: int = 0
    unanswered: int = 0
    server_errors: int = 0
    message_id: str | None = None
    replayed: bool = False
    acknowledged_at: float | None = None  # time.monotonic()


@dataclass(slots=True)
class SoakReport:
    backend: str
    kills: int
    sends_acknowledged: int
    sends_retried: int
    """Sends that got no answer at first (the server was killed or down) and were retried with
    the same key."""
    replays: int
    """Acknowledgements that were replays of a response stored before a kill."""
    server_errors: int
    messages_stored: int
    events: int
    deliveries_expected: int
    requests_received: int
    distinct_received: int
    duplicates: int
    lost_messages: int
    lost_events: int
    restart_seconds_median: float
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.lost_messages + self.lost_events

    def summary(self) -> str:
        return (
            f"{self.backend}: {self.kills} kills, {self.sends_acknowledged} sends acknowledged "
            f"({self.sends_retried} retried after no answer, {self.replays} replays, "
            f"{self.server_errors} 5xx answers retried), "
            f"{self.messages_stored} messages stored, {self.events} events, "
            f"{self.deliveries_expected} deliveries expected, {self.requests_received} requests "
            f"received ({self.duplicates} duplicates), lost {self.lost}, "
            f"{self.seconds:.1f} s"
        )


async def _send_forever(
    client: httpx.AsyncClient,
    number: int,
    plan: SoakPlan,
    rooms: list[str],
    tag: str,
    stop: asyncio.Event,
    sends: list[Send],
) -> None:
    """Send messages until told to stop; each until it is answered, retrying with its key."""
    rng = random.Random(f"{plan.seed}-sender-{number}")
    count = 0
    while not stop.is_set():
        count += 1
        send = Send(
            key=f"{tag}-s{number}-{count}",
            chatroom_id=rng.choice(rooms),
            text=f"soak {tag} sender {number} message {count}",
        )
        sends.append(send)
        give_up_at = time.monotonic() + GIVE_UP_SECONDS
        while True:
            if time.monotonic() > give_up_at:
                raise RuntimeError(f"send {send.key} got no 2xx within {GIVE_UP_SECONDS} s")
            send.tries += 1
            try:
                response = await client.post(
                    f"/v1/chatrooms/{send.chatroom_id}/messages",
                    json={"text": send.text},
                    headers={"Idempotency-Key": send.key},
                )
            except httpx.TransportError:
                send.unanswered += 1
                await asyncio.sleep(0.05)
                continue
            if response.status_code >= 500:
                send.server_errors += 1
                await asyncio.sleep(0.05)
                continue
            if response.status_code != 201:
                raise RuntimeError(
                    f"send {send.key} answered {response.status_code}: {response.text[:500]}"
                )
            send.message_id = str(response.json()["id"])
            send.replayed = response.headers.get("idempotent-replayed") == "true"
            send.acknowledged_at = time.monotonic()
            break
        if plan.send_pause_seconds > 0:
            await asyncio.sleep(plan.send_pause_seconds)


Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


async def _kill_repeatedly(
    server: ChatflowProcess,
    plan: SoakPlan,
    rng: random.Random,
    restarts: list[float],
    progress: Progress,
) -> None:
    for number in range(1, plan.kills + 1):
        await asyncio.sleep(rng.uniform(*plan.uptime_seconds))
        server.kill()
        await asyncio.sleep(rng.uniform(*plan.downtime_seconds))
        restarts.append(await asyncio.to_thread(server.start))
        progress(f"kill {number}/{plan.kills}; up again in {restarts[-1]:.1f} s")


async def _drive(
    server: ChatflowProcess,
    api_key: str,
    plan: SoakPlan,
    rooms: list[str],
    tag: str,
    progress: Progress,
) -> tuple[list[Send], list[float]]:
    stop = asyncio.Event()
    sends: list[Send] = []
    restarts: list[float] = []
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30.0) as client:
        senders = [
            asyncio.create_task(_send_forever(client, n, plan, rooms, tag, stop, sends))
            for n in range(plan.senders)
        ]
        try:
            await _kill_repeatedly(server, plan, random.Random(plan.seed), restarts, progress)
            # The server is up: let the senders' last sends be answered, then stop.
            await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*senders)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
    return sends, restarts


def run_soak(
    backend: str,
    database_url: str,
    plan: SoakPlan,
    workdir: Path,
    *,
    progress: Progress = _silent,
) -> SoakReport:
    """Start the server on `database_url` (fresh), kill it `plan.kills` times while clients send
    and the receiver collects, and check that nothing was lost. `progress` hears what happens."""
    started = time.monotonic()
    tag = secrets.token_hex(3)
    env = server_env(webhook_timeout_seconds=plan.webhook_timeout_seconds)
    server = ChatflowProcess(database_url, log_path=workdir / f"soak-{backend}-{tag}.log", env=env)
    with WebhookReceiver() as receiver, contextlib.ExitStack() as stack:
        stack.callback(server.kill)
        server.start()
        welcome = server.welcome()
        api = stack.enter_context(contextlib.closing(Api(server.base_url, welcome.api_key)))
        endpoints = [
            create_endpoint(api, receiver, MESSAGES_PATH, ["message.created"]),
            create_endpoint(api, receiver, EVERYTHING_PATH, ["*"]),
        ]
        rooms = open_chatrooms(api, welcome.channel_id, plan.chatrooms, tag)
        progress(f"sending with {plan.senders} clients into {plan.chatrooms} chatrooms")
        sends, restarts = asyncio.run(_drive(server, welcome.api_key, plan, rooms, tag, progress))
        progress(f"{len(sends)} sends acknowledged; checking, and waiting for the webhooks")
        report = _check(backend, api, receiver, endpoints, rooms, sends, plan)
        report.restart_seconds_median = sorted(restarts)[len(restarts) // 2] if restarts else 0.0
        report.seconds = time.monotonic() - started
        if report.problems:
            report.problems.append(f"server log: {server.log_path}")
        return report


def _check(
    backend: str,
    api: Api,
    receiver: WebhookReceiver,
    endpoints: list[Endpoint],
    rooms: list[str],
    sends: list[Send],
    plan: SoakPlan,
) -> SoakReport:
    problems: list[str] = []

    # Messages: every acknowledged send is stored, once per key.
    stored = [m for room in rooms for m in api.all_pages(f"/v1/chatrooms/{room}/messages")]
    by_text: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in stored:
        by_text[message["text"]].append(message)
    stored_ids = {m["id"] for m in stored}
    lost_messages = 0
    for send in sends:
        copies = by_text.get(send.text, [])
        if send.message_id is None:
            problems.append(f"send {send.key} was never acknowledged")
        elif send.message_id not in stored_ids:
            lost_messages += 1
            problems.append(f"acknowledged message {send.message_id} ({send.key}) is not stored")
        if len(copies) > 1:
            problems.append(f"Idempotency-Key {send.key} stored {len(copies)} messages")
        elif copies and copies[0]["id"] != send.message_id:
            problems.append(
                f"{send.key}: stored {copies[0]['id']} but acknowledged {send.message_id}"
            )
    sent_texts = {send.text for send in sends}
    for text in by_text:
        if text.startswith("soak ") and text not in sent_texts:
            problems.append(f"a message nobody sent is stored: {text!r}")

    # Events: each stored message has its message.created; what each endpoint must receive.
    events = api.all_pages("/v1/events")
    created_event = {
        e["data"]["message"]["id"]: e["id"] for e in events if e["type"] == "message.created"
    }
    missing_events = [m["id"] for m in stored if m["id"] not in created_event]
    for message_id in missing_events[:20]:
        problems.append(f"stored message {message_id} has no message.created event")
    expected: dict[str, set[str]] = {}
    for endpoint in endpoints:
        expected[endpoint.path] = {
            e["id"]
            for e in events
            if millis_of(e["created_at"]) >= endpoint.created_at_ms
            and ("*" in endpoint.event_types or e["type"] in endpoint.event_types)
        }
    messages_endpoint = next(e for e in endpoints if e.path == MESSAGES_PATH)
    for message in stored:
        event_id = created_event.get(message["id"])
        if event_id is not None and event_id not in expected[messages_endpoint.path]:
            problems.append(f"message.created {event_id} predates the endpoint")

    # Wait until every expected event arrived and nothing is left to deliver.
    deadline = time.monotonic() + plan.drain_seconds
    while True:
        received = _distinct_by_path(receiver.received)
        complete = all(expected[path] <= set(received.get(path, {})) for path in expected)
        if complete and not any(has_deliveries(api, e, "pending") for e in endpoints):
            break
        if time.monotonic() > deadline:
            problems.append(f"the receiver did not get everything within {plan.drain_seconds} s")
            break
        time.sleep(0.2)

    requests = receiver.received
    received = _distinct_by_path(requests)
    lost_events = 0
    for endpoint in endpoints:
        got = received.get(endpoint.path, {})
        missing = expected[endpoint.path] - set(got)
        extra = set(got) - expected[endpoint.path]
        lost_events += len(missing)
        for event_id in sorted(missing)[:20]:
            problems.append(f"event {event_id} never reached {endpoint.path}")
        for event_id in sorted(extra)[:20]:
            problems.append(f"{endpoint.path} received {event_id}, which it should not have")
        for event_id, arrived in got.items():
            if len({request.body for request in arrived}) != 1:
                problems.append(f"{endpoint.path}: copies of {event_id} differ")
            if json.loads(arrived[0].body).get("id") != event_id:
                problems.append(f"{endpoint.path}: the body of {event_id} has another id")
            for copy in arrived:
                try:
                    receiver.verify(endpoint.secret, copy)
                except WebhookVerificationError as exc:
                    problems.append(f"{endpoint.path}: {event_id} does not verify: {exc}")
        if has_deliveries(api, endpoint, "failed"):
            problems.append(f"{endpoint.path} has failed deliveries")
    stray = [r.path for r in requests if r.path not in expected]
    if stray:
        problems.append(f"requests to unknown paths: {Counter(stray)}")

    distinct = sum(len(by_id) for by_id in received.values())
    return SoakReport(
        backend=backend,
        kills=plan.kills,
        sends_acknowledged=sum(1 for s in sends if s.message_id is not None),
        sends_retried=sum(1 for s in sends if s.unanswered),
        replays=sum(1 for s in sends if s.replayed),
        server_errors=sum(s.server_errors for s in sends),
        messages_stored=sum(1 for m in stored if m["text"] in sent_texts),
        events=len(events),
        deliveries_expected=sum(len(ids) for ids in expected.values()),
        requests_received=len(requests),
        distinct_received=distinct,
        duplicates=len(requests) - distinct,
        lost_messages=lost_messages,
        lost_events=lost_events,
        restart_seconds_median=0.0,
        seconds=0.0,
        problems=problems,
    )


def _distinct_by_path(requests: list[Received]) -> dict[str, dict[str, list[Received]]]:
    """path → webhook-id → every request that carried it."""
    found: dict[str, dict[str, list[Received]]] = defaultdict(lambda: defaultdict(list))
    for request in requests:
        found[request.path][request.headers.get("webhook-id", "")].append(request)
    return found
