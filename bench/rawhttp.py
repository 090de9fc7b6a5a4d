"""A lean HTTP/1.1 client for driving the server from Python: keep-alive connections over asyncio
streams, each request built once as bytes, each response read by its Content-Length.

Why not httpx: an `httpx.AsyncClient` spends about a millisecond and a half of CPU per request
(see bench/README.md), so a Python client built on it measures itself long before the server.
This one spends a few tens of microseconds, which leaves the server as the bottleneck. It speaks
only what chatflow answers: no chunked bodies, no redirects, no TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


def build_request(
    method: str,
    path: str,
    *,
    host: str,
    headers: Mapping[str, str] | None = None,
    json_body: object | None = None,
    body: bytes | None = None,
) -> bytes:
    """`json_body` is sent as JSON (with its content type); `body` as the exact bytes given (for
    a signed body), the caller naming its content type in `headers`."""
    if json_body is not None and body is not None:
        raise ValueError("json_body or body, not both")
    if body is None:
        body = b"" if json_body is None else orjson.dumps(json_body)
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    if json_body is not None:
        lines.append("content-type: application/json")
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ConnectionPool:
    """Up to `size` keep-alive connections to one host; each request takes a free one.

    A connection that fails is dropped, and the error (`OSError`, `asyncio.IncompleteReadError`)
    goes to the caller, who decides whether the request may be sent again.
    """

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]
        self._idle = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(None)  # a slot whose connection is opened on first use
        self._open: set[asyncio.StreamWriter] = set()

    async def request(self, data: bytes) -> Response:
        slot = await self._idle.get()
        try:
            if slot is None:
                slot = await asyncio.open_connection(self.host, self.port)
                self._open.add(slot[1])
            reader, writer = slot
            writer.write(data)
            response = await _read_response(reader)
        except BaseException:
            if slot is not None:
                self._open.discard(slot[1])
                slot[1].close()
            self._idle.put_nowait(None)
            raise
        keep = response.headers.get("connection", "").lower() != "close"
        if not keep:
            self._open.discard(slot[1])
            slot[1].close()
        self._idle.put_nowait(slot if keep else None)
        return response

    async def close(self) -> None:
        for writer in list(self._open):
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._open.clear()


async def _read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise OSError("chunked responses are not supported by this client")
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Response(status, headers, body)
