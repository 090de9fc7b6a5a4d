"""uvicorn's httptools protocol, writing a response's head and body with one system call.

uvicorn writes the status line and headers as soon as the app sends `http.response.start`, and
the body when it sends `http.response.body`: two `send` calls and two TCP segments for every
response, where one does (the socket has `TCP_NODELAY`, so the kernel does not merge them).
Here the head waits for the body's first write. It goes out alone when the response completes
without one (HEAD), on the loop's next turn when no body came in this one (a streaming response
whose first chunk is not ready), and before anything the protocol itself writes on the
connection (a 400 for a malformed request behind it, a WebSocket upgrade).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _ResponseWriter(asyncio.Transport):
    """A connection's transport as its requests' cycles see it: responses one after another,
    each one's head held until its body's first write."""

    __slots__ = ("_head", "_in_body", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._in_body = False
        """The current response's head is written: what comes now is its body."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._in_body:
            self._transport.write(data)
        elif self._head is not None:
            head, self._head = self._head, None
            self._in_body = True
            self._transport.write(head + bytes(data))
        elif data == _CONTINUE:
            # The client waits for it before it sends the body the app is about to read.
            self._transport.write(data)
        else:
            self._head = bytes(data)
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write a held head now."""
        if self._head is not None:
            head, self._head = self._head, None
            self._in_body = True
            self._transport.write(head)

    def response_done(self) -> None:
        self.flush()
        self._in_body = False

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class HttpProtocol(HttpToolsProtocol):
    """`chatflow serve`'s HTTP/1.1 protocol (uvicorn's `http=` option)."""

    _responses: _ResponseWriter

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._responses = _ResponseWriter(transport, self.loop)

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        # A new request's cycle (none for a WebSocket upgrade). Its task has not run yet: it
        # starts on the loop's next turn, or later behind a pipelined request.
        if self.cycle is not previous:
            self.cycle.transport = self._responses

    def on_response_complete(self) -> None:
        self._responses.response_done()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._responses.flush()
        super().send_400_response(msg)

    def handle_websocket_upgrade(self) -> None:
        self._responses.flush()
        super().handle_websocket_upgrade()
