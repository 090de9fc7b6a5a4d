"""The server's HTTP protocol writes a response's head and body in one write (`api/http_protocol`).

The protocol is driven as uvicorn drives it, with bytes in and a transport that records what is
written, so each test sees exactly the writes a socket would get.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from chatflow.api.http_protocol import HttpProtocol

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.closed_by_server = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def serve(
    app: App,
    *requests: bytes,
    transport: RecordingTransport | None = None,
    protocols: list[HttpProtocol] | None = None,
    turns: int = 20,
) -> RecordingTransport:
    """Feed `requests` to one connection, let the loop run, and return what was written. The
    protocol is appended to `protocols`, for apps that act on the connection themselves."""
    transport = RecordingTransport() if transport is None else transport

    async def run() -> RecordingTransport:
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        config.load()
        protocol = HttpProtocol(config=config, server_state=ServerState(), app_state={})
        if protocols is not None:
            protocols.append(protocol)
        protocol.connection_made(transport)
        for request in requests:
            protocol.data_received(request)
            for _ in range(turns):
                await asyncio.sleep(0)
        for task in list(protocol.tasks):
            await task
        transport.closed_by_server = transport.closed
        protocol.connection_lost(None)
        return transport

    return asyncio.run(run())


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    body = b'{"hello":"world"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"17")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def test_a_response_is_one_write_with_its_head_and_body() -> None:
    transport = serve(hello, GET)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 17" in head
    assert body == b'{"hello":"world"}'


def test_each_response_on_a_kept_alive_connection_is_one_write() -> None:
    transport = serve(hello, GET, GET, GET)
    assert len(transport.writes) == 3
    assert all(w.endswith(b'{"hello":"world"}') for w in transport.writes)
    assert not transport.closed_by_server


def test_a_head_request_gets_its_head_alone_as_soon_as_the_response_is_complete() -> None:
    transport = RecordingTransport()
    written_when_complete: list[int] = []

    async def head(scope: Scope, receive: Receive, send: Send) -> None:
        await hello(scope, receive, send)
        written_when_complete.append(len(transport.writes))

    serve(head, b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n", transport=transport)
    # Written by the time the app's last send returned, not on a later turn of the loop: a
    # request behind it on the connection could otherwise be answered first.
    assert written_when_complete == [1]
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


def test_a_malformed_request_behind_a_response_is_refused_after_that_response_head() -> None:
    protocols: list[HttpProtocol] = []

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        # In the same turn of the loop, garbage arrives behind this request: uvicorn answers it
        # 400 and closes the connection at once.
        protocols[0].data_received(b"NOT HTTP AT ALL\r\n\r\n")
        await send({"type": "http.response.body", "body": b"late"})

    transport = serve(stream, GET, protocols=protocols)
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[1].startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_100_continue_goes_out_at_once_and_the_response_after_the_body() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        body = message["body"]
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    transport = serve(
        echo,
        b"POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        b"ping",
    )
    assert transport.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert len(transport.writes) == 2
    assert transport.writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[1].endswith(b"\r\n\r\nping")


def test_a_streaming_response_sends_its_head_before_a_late_first_chunk() -> None:
    transport = RecordingTransport()
    head_written_before_chunk: list[bool] = []

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.01)  # the first chunk is not ready in this turn of the loop
        head_written_before_chunk.append(bool(transport.writes))
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    serve(stream, GET, transport=transport, turns=200)
    assert head_written_before_chunk == [True]
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in transport.writes[0]
    assert transport.writes[0].endswith(b"\r\n\r\n")
    assert b"".join(transport.writes[1:]) == b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"


def test_an_app_failing_after_the_head_closes_the_connection_after_writing_it() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("the body never comes")

    transport = serve(broken, GET)
    assert transport.closed_by_server
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_are_answered_in_order_one_write_each() -> None:
    head_request = b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n"
    transport = serve(hello, GET + head_request + GET)
    assert len(transport.writes) == 3
    assert transport.writes[0].endswith(b'{"hello":"world"}')
    assert transport.writes[1].endswith(b"\r\n\r\n")
    assert transport.writes[2].endswith(b'{"hello":"world"}')
