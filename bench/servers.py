"""Server processes under test: start, wait until they answer, measure their CPU, stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import pinned, process_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server subprocess, its output going to a log file, pinned to `cpus` if given."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        log_path: Path,
        cpus: set[int] | None,
        ready_path: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.log_path = log_path
        self.cpus = cpus
        self.ready_path = ready_path
        self.env = dict(os.environ if env is None else env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, f"{self.name} is not running"
        return self._proc.pid

    def start(self, timeout: float = 120.0) -> None:
        """Start the process and return once `ready_path` answers 200."""
        assert self._proc is None, f"{self.name} is already running"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                pinned(self.argv, self.cpus),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=self.env,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._proc.poll() is not None:
                    code = self._proc.returncode
                    self._proc = None
                    raise RuntimeError(
                        f"{self.name} exited with {code} on start:\n{self.output()[-3000:]}"
                    )
                try:
                    if client.get(self.base_url + self.ready_path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s")
                time.sleep(0.1)

    def output(self) -> str:
        """What the process printed since its last start."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        """Stop gracefully (SIGINT, as Ctrl-C: uvicorn runs the app's shutdown), else kill."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        interrupt(proc)


def interrupt(proc: subprocess.Popen[Any]) -> None:
    """SIGINT (as Ctrl-C, so the process can shut down cleanly); kill it if it takes over 30 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chatflow_server(
    database_url: str, *, log_path: Path, cpus: set[int] | None, env: Mapping[str, str]
) -> Server:
    port = free_port()
    return Server(
        "chatflow serve",
        [
            str(VENV_BIN / "chatflow"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--log-level",
            "warning",
        ],
        port=port,
        log_path=log_path,
        cpus=cpus,
        ready_path="/healthz",
        env=env,
    )


def baseline_server(database: Path, *, log_path: Path, cpus: set[int] | None) -> Server:
    port = free_port()
    return Server(
        "baseline (Starlette + sqlite3)",
        [
            sys.executable,
            "-m",
            "bench.baseline",
            "--port",
            str(port),
            "--database",
            str(database),
        ],
        port=port,
        log_path=log_path,
        cpus=cpus,
        ready_path="/hello",
    )


def fastapi_hello_server(*, log_path: Path, cpus: set[int] | None) -> Server:
    port = free_port()
    return Server(
        "baseline (FastAPI hello world)",
        [sys.executable, "-m", "bench.baseline", "--port", str(port), "--app", "fastapi-hello"],
        port=port,
        log_path=log_path,
        cpus=cpus,
        ready_path="/hello",
    )


@dataclass(frozen=True, slots=True)
class Welcome:
    """What `chatflow serve` prints when it creates the demo organization."""

    api_key: str
    channel_id: str


def parse_welcome(output: str) -> Welcome:
    key = re.search(r"API key\s+(\S+)", output)
    channel = re.search(r"Sandbox channel\s+(\S+)", output)
    if key is None or channel is None:
        raise RuntimeError(
            "chatflow serve did not print the demo organization's API key and sandbox channel "
            f"(is the database not fresh?):\n{output[-3000:]}"
        )
    return Welcome(api_key=key.group(1), channel_id=channel.group(1))
