"""uvicorn's httptools protocol, writing a response's head and body with one system call.

uvicorn writes the status line and headers as soon as the app sends `http.response.start`, and
the body when it sends `http.response.body`: two `send` calls and two TCP segments for every
response, where one does (the socket has `TCP_NODELAY`, so the kernel does not merge them).
Here the head waits for the body's first write, and goes out alone at the end of the event
loop's turn if none came in it (a streaming response whose first chunk is not ready).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _HeadWithBody(asyncio.Transport):
    """The transport one request's cycle writes its response through."""

    __slots__ = ("_head", "_loop", "_transport", "_written")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._written = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._written:
            self._transport.write(data)
        elif self._head is not None:
            self._written = True
            self._transport.write(self._head + bytes(data))
        elif data == _CONTINUE:
            # The client waits for it before it sends the body the app is about to read.
            self._transport.write(data)
        else:
            self._head = bytes(data)
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        if not self._written and self._head is not None:
            self._written = True
            self._transport.write(self._head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class HttpProtocol(HttpToolsProtocol):
    """`chatflow serve`'s HTTP/1.1 protocol (uvicorn's `http=` option)."""

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        # A new request's cycle (none for a WebSocket upgrade). Its task has not run yet: it
        # starts on the loop's next turn, or later behind a pipelined request.
        if self.cycle is not None and self.cycle is not previous:
            self.cycle.transport = _HeadWithBody(self.transport, self.loop)
