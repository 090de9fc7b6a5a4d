"""Flows survive SIGKILL: a server killed during a wait resumes and times out exactly once; a
crash during a send step never sends twice.

The real `chatflow serve`, on SQLite and PostgreSQL, with its background work (the flow triggers
reading the event log and the timer worker) on the system clock:

- a run waiting for a reply when the server is killed times out after the restart, once: the
  bot says "Timed out" once, the run's steps are exactly `sent`, `timeout`, `sent`;
- while customers write and a `message_received` flow answers each message, the server is killed
  again and again: every acknowledged customer message gets exactly one reply (a run's reply
  commits with the run and with the consumer's cursor, so nothing is replayed and nothing is
  dropped), and there is one completed run per stored customer message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.reliability.kill_harness import (
    Api,
    ChatflowProcess,
    Welcome,
    server_env,
)

pytestmark = pytest.mark.slow

WAIT_TIMEOUT_SECONDS = 3
KILLS = 3
SEND_PAUSE_SECONDS = 0.05
UPTIME_SECONDS = (0.5, 1.0)
"""How long the server runs after it answers, before the next SIGKILL (uniform)."""
DOWNTIME_SECONDS = (0.0, 0.2)
REPLIES_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Running:
    server: ChatflowProcess
    welcome: Welcome
    api: Api


@contextlib.contextmanager
def running_server(database_url: str, log_path: Path) -> Iterator[Running]:
    """The real server on a fresh database, killed at the end whatever happens."""
    # No webhooks here: the timeout only matters to the settings' validation.
    server = ChatflowProcess(
        database_url, log_path=log_path, env=server_env(webhook_timeout_seconds=2)
    )
    with contextlib.ExitStack() as stack:
        stack.callback(server.kill)
        server.start()
        welcome = server.welcome()
        api = stack.enter_context(contextlib.closing(Api(server.base_url, welcome.api_key)))
        yield Running(server, welcome, api)


def say(node_id: str, text: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "action": "send_message",
        "params": {"message": text, "chatInstanceId": "{chatInstanceId}"},
    }


def edge(source: str, outcome: str, target: str) -> dict[str, str]:
    return {"from": source, "outcome": outcome, "to": target}


def deploy(api: Api, document: dict[str, Any]) -> str:
    """A new flow with this document, deployed; its id."""
    flow = api.ok("POST", "/v1/flows", {"name": "Flow", "document": document}, status=201)
    api.ok("POST", f"/v1/flows/{flow['id']}/deploy", {"message": "first"}, status=201)
    return str(flow["id"])


def open_chatroom(api: Api, channel_id: str, name: str, text: str) -> str:
    """A sandbox chatroom whose customer wrote `text` first, so its 24-hour window is open."""
    contact = api.ok(
        "POST",
        "/v1/contacts",
        {"first_name": name, "external_id": name, "opted_in": True},
        status=201,
    )
    first = api.ok(
        "POST",
        "/v1/sandbox/inbound",
        {"channel_id": channel_id, "contact_id": contact["id"], "text": text},
        status=201,
    )
    return str(first["chatroom_id"])


def messages_of(api: Api, chatroom_id: str) -> list[dict[str, Any]]:
    """The chatroom's messages, oldest first (the API lists them newest first)."""
    return list(reversed(api.all_pages(f"/v1/chatrooms/{chatroom_id}/messages")))


def bot_texts(api: Api, chatroom_id: str) -> list[str]:
    return [m["text"] for m in messages_of(api, chatroom_id) if m["sender"]["type"] == "bot"]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until it holds; how many seconds that took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


# -- a run waiting for a reply, killed ----------------------------------------------------------


def test_a_run_waiting_when_the_server_is_killed_times_out_exactly_once_after_restart(
    empty_database: str, tmp_path: Path
) -> None:
    with running_server(empty_database, tmp_path / "server.log") as up:
        api = up.api
        chatroom_id = open_chatroom(api, up.welcome.channel_id, "waiting-customer", "hi")
        flow_id = deploy(
            api,
            {
                "trigger": {"type": "manual", "params": {"chatroom": True}},
                "start": "question",
                "nodes": [
                    say("question", "Question?"),
                    {
                        "id": "ask",
                        "action": "wait_for_reply",
                        "params": {
                            "chatInstanceId": "{chatInstanceId}",
                            "timeout_seconds": WAIT_TIMEOUT_SECONDS,
                        },
                    },
                    say("late", "Timed out"),
                ],
                "edges": [edge("question", "sent", "ask"), edge("ask", "timeout", "late")],
            },
        )
        run = api.ok("POST", f"/v1/flows/{flow_id}/runs", {"chatroom_id": chatroom_id}, status=201)
        waiting_since = time.monotonic()
        assert run["status"] == "waiting", run
        assert run["waiting"]["kind"] == "reply"

        up.server.kill()
        # Dead through the moment the timer fell due: only the restarted server can fire it.
        time.sleep(max(0.0, waiting_since + WAIT_TIMEOUT_SECONDS + 1 - time.monotonic()))
        up.server.start()

        deadline = time.monotonic() + 30
        detail = api.ok("GET", f"/v1/runs/{run['id']}")
        while detail["status"] in ("waiting", "running"):
            assert time.monotonic() < deadline, f"{detail}\nserver log: {up.server.log_path}"
            time.sleep(0.1)
            detail = api.ok("GET", f"/v1/runs/{run['id']}")
        assert detail["status"] == "completed", detail
        assert bot_texts(api, chatroom_id) == ["Question?", "Timed out"]
        assert [s["outcome"] for s in detail["steps"]] == ["sent", "timeout", "sent"]

        # Fired once: nothing more comes later.
        time.sleep(2)
        assert bot_texts(api, chatroom_id) == ["Question?", "Timed out"]
        again = api.ok("GET", f"/v1/runs/{run['id']}")
        assert again["status"] == "completed"
        assert len(again["steps"]) == 3


# -- replies to customers, killed again and again -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Acknowledged:
    chatroom_id: str
    text: str
    message_id: str
    cut_off: bool = False
    """Its first try got no answer: the server was killed under it, or was down."""


async def _write_until_stopped(
    client: httpx.AsyncClient,
    chatroom_id: str,
    tag: str,
    stop: asyncio.Event,
    acknowledged: list[Acknowledged],
) -> None:
    """One customer writing distinct texts; a send cut off by a kill is retried with its key
    until it is answered (a replay if the first try had committed)."""
    count = 0
    while not stop.is_set():
        count += 1
        text = f"{tag} message {count}"
        give_up_at = time.monotonic() + 60
        cut_off = False
        while True:
            if time.monotonic() > give_up_at:
                raise RuntimeError(f"{text!r} got no answer within 60 s")
            try:
                response = await client.post(
                    "/v1/sandbox/inbound",
                    json={"chatroom_id": chatroom_id, "text": text},
                    headers={"Idempotency-Key": f"{tag}-{count}"},
                )
            except httpx.TransportError:
                cut_off = True
                await asyncio.sleep(0.05)
                continue
            if response.status_code >= 500:
                await asyncio.sleep(0.05)
                continue
            if response.status_code != 201:
                raise RuntimeError(f"{text!r} answered {response.status_code}: {response.text}")
            message_id = str(response.json()["id"])
            acknowledged.append(Acknowledged(chatroom_id, text, message_id, cut_off))
            break
        await asyncio.sleep(SEND_PAUSE_SECONDS)


async def _write_while_killing(
    server: ChatflowProcess, api_key: str, rooms: list[str], tag: str, rng: random.Random
) -> tuple[list[Acknowledged], list[float]]:
    stop = asyncio.Event()
    acknowledged: list[Acknowledged] = []
    restarts: list[float] = []
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30.0) as client:
        writers = [
            asyncio.create_task(
                _write_until_stopped(client, room, f"{tag} room {n}", stop, acknowledged)
            )
            for n, room in enumerate(rooms)
        ]
        try:
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(*UPTIME_SECONDS))
                server.kill()
                await asyncio.sleep(rng.uniform(*DOWNTIME_SECONDS))
                restarts.append(await asyncio.to_thread(server.start))
            # Up again: the writers' last sends are answered, then they stop.
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*writers)
        finally:
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
    return acknowledged, restarts


def test_killed_again_and_again_while_flows_reply_no_customer_message_gets_two_replies_or_none(
    empty_database: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    with running_server(empty_database, tmp_path / "server.log") as up:
        api = up.api
        flow_id = deploy(
            api,
            {
                "trigger": {"type": "message_received", "params": {}},
                "start": "echo",
                "nodes": [say("echo", "Got: {message.text}")],
                "edges": [],
            },
        )
        # The flow is deployed before the customers write: their first messages are answered
        # too, and count as acknowledged.
        acknowledged: list[Acknowledged] = []
        rooms: list[str] = []
        for n in range(4):
            text = f"{tag} room {n} hello"
            rooms.append(open_chatroom(api, up.welcome.channel_id, f"{tag}-{n}", text))
        for room in rooms:
            [first] = [m for m in messages_of(api, room) if m["direction"] == "inbound"]
            acknowledged.append(Acknowledged(room, first["text"], str(first["id"])))

        written, restarts = asyncio.run(
            _write_while_killing(up.server, up.welcome.api_key, rooms, tag, random.Random(20261122))
        )
        acknowledged += written
        assert len(restarts) == KILLS
        assert len(written) >= 30, "the customers wrote too little to prove anything"
        assert any(a.cut_off for a in written), "no kill landed while the customers wrote"

        expected = {
            room: {f"Got: {a.text}" for a in acknowledged if a.chatroom_id == room}
            for room in rooms
        }

        def every_message_answered() -> bool:
            return all(expected[room] <= set(bot_texts(api, room)) for room in rooms)

        wait_until(every_message_answered, REPLIES_TIMEOUT_SECONDS, "a reply to every message")

        stored = {room: messages_of(api, room) for room in rooms}
        inbound = [m for room in rooms for m in stored[room] if m["direction"] == "inbound"]
        problems: list[str] = []
        for room in rooms:
            replies = Counter(m["text"] for m in stored[room] if m["sender"]["type"] == "bot")
            problems += [f"{room}: {text!r} sent {n} times" for text, n in replies.items() if n > 1]
            problems += [
                f"{room}: {text!r} answers nothing" for text in replies.keys() - expected[room]
            ]
            problems += [f"{room}: no {text!r}" for text in expected[room] - replies.keys()]
        acknowledged_ids = {a.message_id for a in acknowledged}
        inbound_ids = {m["id"] for m in inbound}
        problems += [
            f"acknowledged message {a.message_id} ({a.text!r}) is not stored"
            for a in acknowledged
            if a.message_id not in inbound_ids
        ]
        problems += [
            f"customer message {m['id']} ({m['text']!r}) was stored {n} times"
            for m, n in _repeated_texts(inbound)
        ]
        problems += [
            f"customer message {m['id']} ({m['text']!r}) was never acknowledged"
            for m in inbound
            if m["id"] not in acknowledged_ids
        ]
        assert problems == [], f"{problems[:30]}\nserver log: {up.server.log_path}"

        runs = api.all_pages(f"/v1/flows/{flow_id}/runs")
        assert Counter(r["status"] for r in runs) == {"completed": len(inbound)}
        # One run per customer message, each started by its own message.
        assert sorted(r["trigger"]["message_id"] for r in runs) == sorted(m["id"] for m in inbound)
        assert len(inbound_ids) == len(inbound) == len(acknowledged)


def _repeated_texts(messages: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Messages whose text was stored more than once, with how many times."""
    counts = Counter(m["text"] for m in messages)
    return [(m, counts[m["text"]]) for m in messages if counts[m["text"]] > 1]
