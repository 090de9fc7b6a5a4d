"""A real HTTP server on 127.0.0.1 that records webhook requests and answers as scripted.

It runs its own asyncio event loop in a background thread, so a test can drive it from plain
synchronous code, from its own event loop, or let another process send to it. HTTP/1.1 is parsed
by httptools (the parser uvicorn uses): keep-alive, many connections at once, and tens of
thousands of requests per second, enough for benchmarks. It is written on asyncio directly
rather than on a server framework so that `close` is immediate and closes every connection.

    receiver = WebhookReceiver()
    receiver.respond_with(500, times=2)          # two failures, then the default 200 "ok"
    ... send to receiver.url_for("/hook") ...
    [first, *_] = receiver.wait_for(3)
    payload = receiver.verify(secret, first)

A `responder` computes answers from the request (a fake API such as tests/fake_graph.py); it is
consulted before the scripted answers and returns None to leave a request to them.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, NamedTuple, TypeAlias

import httptools
from standardwebhooks import Webhook, WebhookVerificationError

_START_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    received_at: float  # time.monotonic()
    method: str = "POST"
    query: str = ""  # the raw query string, without "?"; "" when there is none


class Answer(NamedTuple):
    """A responder's answer; a plain `(status, body, headers)` tuple is accepted too."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = {}
    delay_seconds: float = 0.0
    drop_connection: bool = False  # close the connection without answering


Responder: TypeAlias = Callable[[Received], Answer | tuple[int, bytes, Mapping[str, str]] | None]


@dataclass(slots=True)
class _Script:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    remaining: int | None  # None: forever
    path: str | None  # None: any path
    delay_seconds: float
    drop_connection: bool = False


_DEFAULT_ANSWER = _Script(200, b"ok", (), None, None, 0.0)


class WebhookReceiver:
    def __init__(
        self, *, ssl_context: ssl.SSLContext | None = None, responder: Responder | None = None
    ) -> None:
        """`ssl_context` (a server-side context with a certificate) makes it serve HTTPS.

        `responder` runs on the receiver's thread for every request, before the scripted answers;
        it must not block. If it raises, the request gets a 500 whose body is the error.
        """
        self._responder = responder
        self._changed = threading.Condition()
        self._received: list[Received] = []
        self._scripts: list[_Script] = []
        self._connections: set[_Connection] = set()
        self._connections_accepted = 0
        self._closed = False

        listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port: int = listener.getsockname()[1]
        scheme = "http" if ssl_context is None else "https"
        self.url = f"{scheme}://127.0.0.1:{self.port}"

        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._server = self._loop.run_until_complete(
                    self._loop.create_server(
                        lambda: _Connection(self), sock=listener, ssl=ssl_context
                    )
                )
            except BaseException as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            self._loop.run_forever()

        # A daemon thread: a test that forgets `close` must not keep the test run from ending.
        self._thread = threading.Thread(
            target=run, name=f"webhook-receiver-{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT_SECONDS) or failure:
            self._thread.join(_START_TIMEOUT_SECONDS)
            self._loop.close()
            listener.close()
            raise RuntimeError(f"the webhook receiver did not start: {failure}")

    def url_for(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

    @property
    def received(self) -> list[Received]:
        """The requests so far, oldest first (a copy)."""
        with self._changed:
            return list(self._received)

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections were opened to the receiver: keep-alive keeps this low."""
        with self._changed:
            return self._connections_accepted

    def bodies_json(self) -> list[Any]:
        return [json.loads(request.body) for request in self.received]

    def clear(self) -> None:
        """Forget the requests received so far; scripted responses stay."""
        with self._changed:
            self._received.clear()

    def respond_with(
        self,
        status: int,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
        path: str | None = None,
        delay_seconds: float = 0.0,
        drop_connection: bool = False,
    ) -> None:
        """Queue an answer: used `times` times (None: forever) for requests to `path` (None: any).

        Answers are used first in, first out; a request no queued answer matches gets 200 "ok".
        `delay_seconds` holds the answer back, for timeout tests; `drop_connection` closes the
        connection instead of answering (after the delay, if any).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        script = _Script(
            status,
            body,
            tuple((headers or {}).items()),
            times,
            path,
            delay_seconds,
            drop_connection,
        )
        with self._changed:
            self._scripts.append(script)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least `count` requests have arrived; return them all (a copy)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    paths = [request.path for request in self._received]
                    raise AssertionError(
                        f"expected {count} webhook request(s) within {timeout} s at {self.url}, "
                        f"got {len(self._received)}: {paths}"
                    )
                self._changed.wait(remaining)
            return list(self._received)

    async def wait_for_async(self, count: int, timeout: float = 5.0) -> list[Received]:
        """`wait_for` for a test running its own event loop, which must not be blocked."""
        return await asyncio.to_thread(self.wait_for, count, timeout)

    @staticmethod
    def verify(secret: str, received: Received) -> dict[str, Any]:
        """Check the Standard Webhooks signature exactly, whatever the timestamp; return the body.

        `standardwebhooks.Webhook.verify` also refuses a timestamp more than 5 minutes away from
        the real clock. Our sender stamps attempts with the application clock, which the tests
        set to 2026 (a ManualClock), so that check would pass or fail with the day the tests run.
        The timestamp is still part of the signed content: a changed timestamp fails here. The
        signature is computed by the library and compared in constant time, as it does.
        """
        msg_id = received.headers.get("webhook-id")
        timestamp = received.headers.get("webhook-timestamp")
        signatures = received.headers.get("webhook-signature")
        if not (msg_id and timestamp and signatures):
            raise WebhookVerificationError("webhook-id, -timestamp or -signature is missing")
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise WebhookVerificationError(f"webhook-timestamp {timestamp!r} is not Unix seconds")
        moment = datetime.fromtimestamp(int(timestamp), UTC)
        expected = Webhook(secret).sign(msg_id, moment, received.body.decode("utf-8"))
        expected_bytes = base64.b64decode(expected.removeprefix("v1,"))
        for candidate in signatures.split(" "):
            version, _, encoded = candidate.partition(",")
            if version != "v1":
                continue
            try:
                offered = base64.b64decode(encoded, validate=True)
            except ValueError:
                continue
            if hmac.compare_digest(expected_bytes, offered):
                payload = json.loads(received.body)
                if not isinstance(payload, dict):
                    raise WebhookVerificationError("the body is not a JSON object")
                return payload
        raise WebhookVerificationError("no v1 signature matches this secret")

    def close(self) -> None:
        """Stop serving and close every connection, at once; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result(
            _START_TIMEOUT_SECONDS
        )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT_SECONDS)
        self._loop.close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def _shut_down(self) -> None:
        assert self._server is not None
        self._server.close()
        for connection in list(self._connections):
            connection.abort()
        await self._server.wait_closed()
        for _ in range(100):  # aborted connections close on the loop's next turns
            if not self._connections:
                break
            await asyncio.sleep(0)

    def _opened(self, connection: _Connection) -> None:
        self._connections.add(connection)
        with self._changed:
            self._connections_accepted += 1

    def _lost(self, connection: _Connection) -> None:
        self._connections.discard(connection)

    def _record(self, request: Received) -> _Script:
        # The responder runs before the request is visible, so that whatever it records is
        # there by the time `wait_for` returns this request.
        answer = self._respond(request)
        with self._changed:
            self._received.append(request)
            self._changed.notify_all()
            if answer is not None:
                return answer
            for index, script in enumerate(self._scripts):
                if script.path is not None and script.path != request.path:
                    continue
                if script.remaining is not None:
                    script.remaining -= 1
                    if script.remaining == 0:
                        del self._scripts[index]
                return script
            return _DEFAULT_ANSWER

    def _respond(self, request: Received) -> _Script | None:
        if self._responder is None:
            return None
        try:
            answer = self._responder(request)
        except Exception as exc:
            return _Script(500, f"responder failed: {exc!r}".encode(), (), None, None, 0.0)
        if answer is None:
            return None
        if not isinstance(answer, Answer):
            answer = Answer(*answer)
        return _Script(
            answer.status,
            answer.body,
            tuple(answer.headers.items()),
            None,
            None,
            answer.delay_seconds,
            answer.drop_connection,
        )


@dataclass(slots=True)
class _Reply:
    """A response slot: answers go out in request order even when one of them is delayed."""

    data: bytes | None = None
    close_after: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, record them, write the scripted answers."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self._receiver = receiver
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._replies: deque[_Reply] = deque()
        self._url = bytearray()
        self._headers: dict[str, str] = {}
        self._body = bytearray()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._receiver._opened(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.abort()
        except httptools.HttpParserError:
            self._queue(_Reply(_response(400, b"bad request", (), close=True), True))

    def connection_lost(self, exc: Exception | None) -> None:
        for reply in self._replies:
            if reply.timer is not None:
                reply.timer.cancel()
        self._replies.clear()
        self._receiver._lost(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers = {}
        self._body.clear()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        url = httptools.parse_url(bytes(self._url))
        path = url.path.decode("utf-8", errors="replace")
        query = (url.query or b"").decode("utf-8", errors="replace")
        method = self._parser.get_method().decode("latin-1")
        request = Received(path, self._headers, bytes(self._body), time.monotonic(), method, query)
        script = self._receiver._record(request)
        keep_alive = self._parser.should_keep_alive()
        if script.drop_connection:
            # Nothing is written: the client sees the connection close with no response.
            data, close_after = b"", True
        else:
            body = b"" if method == "HEAD" else script.body
            data = _response(script.status, body, script.headers, close=not keep_alive)
            close_after = not keep_alive
        reply = _Reply(close_after=close_after)
        if script.delay_seconds > 0:
            loop = asyncio.get_running_loop()
            reply.timer = loop.call_later(script.delay_seconds, self._fill, reply, data)
            self._replies.append(reply)
        else:
            reply.data = data
            self._queue(reply)

    # answers

    def _fill(self, reply: _Reply, data: bytes) -> None:
        reply.data = data
        reply.timer = None
        self._flush()

    def _queue(self, reply: _Reply) -> None:
        self._replies.append(reply)
        self._flush()

    def _flush(self) -> None:
        assert self._transport is not None
        while self._replies and self._replies[0].data is not None:
            reply = self._replies.popleft()
            assert reply.data is not None
            self._transport.write(reply.data)
            if reply.close_after:
                self._transport.close()
                self._replies.clear()
                return


def _response(
    status: int, body: bytes, headers: tuple[tuple[str, str], ...], *, close: bool
) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    names = {name.lower() for name, _ in headers}
    if "content-length" not in names:
        lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
