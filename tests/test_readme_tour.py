"""The README's five-minute tour works exactly as written, against a real `chatflow serve`."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHATFLOW = Path(sys.executable).with_name("chatflow")


def _tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    tour = [block for block in blocks if block.startswith("API=")]
    assert len(tour) == 1, "the README has one tour block, starting with API="
    return str(tour[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readme_tour_runs_end_to_end_r1_r4_r5_r6_r9(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            str(CHATFLOW),
            "serve",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{tmp_path / 'data' / 'tour.db'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert server.stdout is not None
        key = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                pytest.fail("chatflow serve exited before it was ready")
            found = re.match(r"\s+API key\s+(\S+)", line)
            if found:
                key = found.group(1)
            # Printed once the socket listens: "Application startup complete" comes before.
            if "Uvicorn running on" in line:
                break
        assert key is not None, "chatflow serve printed no API key on first start"
        script = "set -euo pipefail\n" + _tour_script().replace(
            "http://127.0.0.1:8000", f"http://127.0.0.1:{port}"
        )
        result = subprocess.run(
            ["bash", "-c", script],
            check=False,
            env={"KEY": key, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "APPROVED"
        assert lines[1] == "customer_window_closed"
        assert lines[2] == "button_reply"
        assert lines[3].startswith("{'index': 0, 'text': 'Track it', 'payload': 'cf1:msg_")
        assert lines[4] == "Where is it now?"
        assert lines[5] == "sent"
        assert lines[6].startswith("ag_")
        assert lines[7].startswith("cr_")
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout is not None:
            server.stdout.close()
