"""Across processes: a message posted to one `chatflow serve` reaches a stream on another, through
Redis; and `serve --workers N` runs N processes only when Redis is there to join them."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest
from tests.conftest import POSTGRES_URL
from websockets.sync.client import connect as ws_connect

from chatflow.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `chatflow serve` subprocess whose output goes to a file the test reads."""

    def __init__(self, name: str, directory: Path, env: dict[str, str], *args: str) -> None:
        self.port = _free_port()
        self.output = directory / f"{name}.log"
        self._log: IO[str] = self.output.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatflow.cli", "serve", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=directory,
            text=True,
        )

    def wait_for(self, pattern: str, *, times: int = 1, seconds: float = 60) -> list[str]:
        """The first group of each of the first `times` lines of output matching `pattern`."""
        deadline = time.monotonic() + seconds
        while True:
            text = self.output.read_text()
            found = [m.group(1) for m in re.finditer(pattern, text, flags=re.MULTILINE)]
            if len(found) >= times:
                return found[:times]
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chatflow serve never printed {pattern!r}:\n{text}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def empty_postgresql_url(postgresql_url: str) -> Iterator[str]:
    """A database of its own, empty: `chatflow serve` bootstraps the demo organization in it."""
    name = f"chatflow_live_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _post(base: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        base + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.slow
def test_a_message_posted_to_one_server_process_reaches_a_stream_on_another(
    empty_postgresql_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CHATFLOW_DATABASE_URL": empty_postgresql_url,
        "CHATFLOW_REDIS_URL": redis_url,
        # Only a wake-up through Redis can bring the message within the test's time: the
        # stream's own poll of the log waits longer than that.
        "CHATFLOW_STREAM_POLL_SECONDS": "120",
        "CHATFLOW_BACKGROUND_WORK": "false",
    }
    # A runs two worker processes of its own. B starts once A has migrated the database and
    # made the demo organization (it prints the key then), while A's workers start.
    a = Server("a", tmp_path, env, "--workers", "2")
    servers = [a]
    try:
        key, channel_id = a.wait_for(r"^\s+(?:API key|Sandbox channel)\s+(\S+)", times=2)
        b = Server("b", tmp_path, env)
        servers.append(b)
        # A's parent listens before its workers start; B, one process, listens only after its
        # startup, and says so last.
        a.wait_for(r"(Application startup complete)", times=2)
        b.wait_for(r"(Uvicorn running on)")
        on_a = f"http://127.0.0.1:{a.port}"

        with ws_connect(
            f"ws://127.0.0.1:{b.port}/v1/stream",
            additional_headers={"Authorization": f"Bearer {key}"},
            open_timeout=10,
        ) as stream:
            assert json.loads(stream.recv(timeout=10))["type"] == "ready"
            contact = _post(on_a, key, "/v1/contacts", {"phone": "+14155550123"})
            chatroom = _post(
                on_a,
                key,
                "/v1/chatrooms",
                {"contact_id": contact["id"], "channel_id": channel_id, "participants": []},
            )
            posted = _post(
                on_a, key, "/v1/sandbox/inbound", {"chatroom_id": chatroom["id"], "text": "hi"}
            )
            sent_at = time.monotonic()
            while True:
                frame = json.loads(stream.recv(timeout=10))
                if frame["type"] == "event" and frame["event"]["type"] == "message.created":
                    break
            latency = time.monotonic() - sent_at
    finally:
        for server in servers:
            server.stop()

    assert frame["event"]["data"]["message"]["id"] == posted["id"]
    assert latency < 5


def test_serve_refuses_several_workers_without_redis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("CHATFLOW_REDIS_URL", raising=False)
    database = tmp_path / "never-created.db"

    status = main(["serve", "--workers", "2", "--database-url", f"sqlite:///{database}"])

    assert status == 2
    assert "--workers needs CHATFLOW_REDIS_URL" in capsys.readouterr().err
    assert not database.exists()
