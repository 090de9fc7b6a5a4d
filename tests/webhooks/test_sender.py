from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from tests.webhook_receiver import WebhookReceiver
from tests.webhooks.fake_dns import FakeDns

from chatflow.clock import ManualClock
from chatflow.webhooks.guard import UrlGuard
from chatflow.webhooks.sender import AttemptResult, WebhookSender
from chatflow.webhooks.signing import new_secret, webhook_headers

CLOCK = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
LOOPBACK = UrlGuard.from_setting("127.0.0.0/8")
SECRET = new_secret()
BODY = b'{"type":"message.created","data":{"id":"msg_1"}}'
HEADERS = webhook_headers([SECRET], "evt_1", int(CLOCK.now().timestamp()), BODY)


def send(
    *urls: str,
    guard: UrlGuard = LOOPBACK,
    timeout_seconds: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
    dns: FakeDns | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> list[AttemptResult]:
    """One attempt per URL, in order, through one sender (one connection pool)."""

    async def scenario() -> list[AttemptResult]:
        if dns is not None:
            assert monkeypatch is not None
            dns.install(monkeypatch)
        sender = WebhookSender(
            guard, clock=CLOCK, timeout_seconds=timeout_seconds, ssl_context=ssl_context
        )
        try:
            return [await sender.send(url, HEADERS, BODY) for url in urls]
        finally:
            await sender.aclose()

    return asyncio.run(scenario())


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port: int = listener.getsockname()[1]
        return port


class RawServer:
    """A TCP server on 127.0.0.1 whose connections run `handle(connection, stop)` in threads,
    for answers the receiver cannot give: none at all, endless bodies, a body drip-fed."""

    def __init__(self, handle: Callable[[socket.socket, threading.Event], None]) -> None:
        self._handle = handle
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(connection,))
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.05)
            self._handle(connection, self._stop)

    def close(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], str]]:
    servers: list[RawServer] = []

    def start(handle: Callable[[socket.socket, threading.Event], None]) -> str:
        servers.append(RawServer(handle))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()


def never_answer(connection: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            if not connection.recv(65536):
                return
        except TimeoutError:
            continue


def answer_then(
    body_chunk: bytes, pause: float
) -> Callable[[socket.socket, threading.Event], None]:
    """Answer 200 with a body that never ends, `body_chunk` every `pause` seconds."""

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                connection.recv(65536)
                break
            except TimeoutError:
                continue
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n")
        while not stop.wait(pause):
            try:
                connection.sendall(body_chunk)
            except TimeoutError:
                continue
            except OSError:  # the sender hung up: what the test wants
                return

    return handle


def test_2xx_is_a_success_and_the_request_is_signed(webhook_receiver: WebhookReceiver) -> None:
    [result] = send(webhook_receiver.url_for("/hooks/in"))

    assert result.succeeded
    assert (result.status_code, result.error, result.response_excerpt) == (200, None, "ok")
    assert result.retry_after_seconds is None
    assert result.latency_ms >= 0
    [request] = webhook_receiver.received
    assert request.path == "/hooks/in"
    assert request.body == BODY
    assert webhook_receiver.verify(SECRET, request) == {
        "type": "message.created",
        "data": {"id": "msg_1"},
    }
    assert request.headers["user-agent"] == "chatflow-webhooks/1"
    assert request.headers["accept-encoding"] == "identity"


def test_500_is_a_failure_with_an_excerpt_of_1024_characters(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.respond_with(500, body="é".encode() * 3000)

    [result] = send(webhook_receiver.url_for("/hook"))

    assert not result.succeeded
    assert (result.status_code, result.error) == (500, "HTTP 500")
    assert result.response_excerpt == "é" * 1024


def test_410_marks_the_endpoint_gone(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond_with(410, body=b"no such hook")

    [result] = send(webhook_receiver.url_for("/hook"))

    assert result.gone
    assert not result.succeeded
    assert result.error == "HTTP 410"


def test_redirect_is_a_failure_and_is_not_followed(webhook_receiver: WebhookReceiver) -> None:
    elsewhere = webhook_receiver.url_for("/elsewhere")
    webhook_receiver.respond_with(302, headers={"location": elsewhere}, path="/hook")

    [result] = send(webhook_receiver.url_for("/hook"))

    assert not result.succeeded
    assert result.status_code == 302
    assert result.error == f"redirect not followed (302 to {elsewhere})"
    assert [request.path for request in webhook_receiver.received] == ["/hook"]


def test_retry_after_is_read_as_seconds_or_as_an_http_date(
    webhook_receiver: WebhookReceiver,
) -> None:
    in_90_seconds = format_datetime(CLOCK.now() + timedelta(seconds=90), usegmt=True)
    webhook_receiver.respond_with(429, headers={"retry-after": "120"}, times=1)
    webhook_receiver.respond_with(503, headers={"retry-after": in_90_seconds}, times=1)
    webhook_receiver.respond_with(503, headers={"retry-after": "soon"}, times=1)
    webhook_receiver.respond_with(200, headers={"retry-after": "60"}, times=1)

    results = send(*[webhook_receiver.url_for("/hook")] * 4)

    assert [(r.status_code, r.retry_after_seconds) for r in results] == [
        (429, 120.0),
        (503, 90.0),
        (503, None),
        (200, None),
    ]
    assert results[0].error == "HTTP 429"


def test_timeout_when_the_server_never_answers(
    raw_server: Callable[[Callable[[socket.socket, threading.Event], None]], str],
) -> None:
    [result] = send(raw_server(never_answer), timeout_seconds=0.2)

    assert result.status_code is None
    assert result.error == "timeout after 0.2 s"
    assert 190 <= result.latency_ms < 1000


def test_timeout_bounds_a_body_that_drips_in(
    raw_server: Callable[[Callable[[socket.socket, threading.Event], None]], str],
) -> None:
    [result] = send(raw_server(answer_then(b"x", pause=0.02)), timeout_seconds=0.3)

    assert result.status_code == 200
    assert result.error == "timeout after 0.3 s while reading the response body"
    assert result.response_excerpt is not None
    assert set(result.response_excerpt) == {"x"}
    assert 290 <= result.latency_ms < 1000


def test_delayed_answer_times_out(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond_with(200, delay_seconds=5)

    [result] = send(webhook_receiver.url_for("/hook"), timeout_seconds=0.2)

    assert (result.status_code, result.error) == (None, "timeout after 0.2 s")


def test_connection_refused() -> None:
    [result] = send(f"http://127.0.0.1:{free_port()}/hook")

    assert (result.status_code, result.error) == (None, "connection refused")


def test_huge_body_is_read_only_up_to_the_bound(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond_with(200, body=b"y" * 10_000_000)

    [result] = send(webhook_receiver.url_for("/hook"))

    assert (result.status_code, result.error) == (200, None)
    assert result.response_excerpt == "y" * 1024


def test_endless_body_is_cut_off_without_waiting_for_the_timeout(
    raw_server: Callable[[Callable[[socket.socket, threading.Event], None]], str],
) -> None:
    [result] = send(raw_server(answer_then(b"z" * 65536, pause=0)), timeout_seconds=5)

    assert (result.status_code, result.error) == (200, None)
    assert result.response_excerpt == "z" * 1024
    assert result.latency_ms < 2000


def test_loopback_url_is_forbidden_without_connecting_unless_allowlisted(
    webhook_receiver: WebhookReceiver,
) -> None:
    [result] = send(webhook_receiver.url_for("/hook"), guard=UrlGuard())

    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("url_forbidden: 127.0.0.1 is a loopback address")
    assert webhook_receiver.connections_accepted == 0


def test_body_cut_short_keeps_the_status_and_says_what_happened(
    raw_server: Callable[[Callable[[socket.socket, threading.Event], None]], str],
) -> None:
    def three_of_ten_bytes(connection: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                connection.recv(65536)
                break
            except TimeoutError:
                continue
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")

    [result] = send(raw_server(three_of_ten_bytes))

    assert result.status_code == 200
    assert result.error is not None
    assert result.error.startswith("protocol error: ")
    assert result.error.endswith(" while reading the response body")
    assert result.response_excerpt == "abc"


def test_cookies_set_by_one_answer_are_never_sent_back(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Endpoints of different organizations may share a host: what one sets must not reach another.
    # A name, not an IP address: cookie jars commonly ignore cookies of IP addresses.
    dns = FakeDns({"hooks.example": ["127.0.0.1"]})
    webhook_receiver.respond_with(200, headers={"set-cookie": "session=abc; Path=/"}, times=1)
    url = f"http://hooks.example:{webhook_receiver.port}/hook"

    results = send(url, url, dns=dns, monkeypatch=monkeypatch)

    assert all(result.succeeded for result in results)
    assert [request.headers.get("cookie") for request in webhook_receiver.received] == [None, None]


def test_sender_built_outside_a_loop_serves_each_loop_it_is_closed_in(
    webhook_receiver: WebhookReceiver,
) -> None:
    sender = WebhookSender(LOOPBACK, clock=CLOCK)  # as the app builds it, before any loop runs
    url = webhook_receiver.url_for("/hook")

    async def send_then_close() -> AttemptResult:
        try:
            return await sender.send(url, HEADERS, BODY)
        finally:
            await sender.aclose()

    first = asyncio.run(send_then_close())
    second = asyncio.run(send_then_close())

    assert first.succeeded
    assert second.succeeded
    assert webhook_receiver.connections_accepted == 2


def test_sender_refuses_a_second_loop_while_its_connections_are_open(
    webhook_receiver: WebhookReceiver,
) -> None:
    sender = WebhookSender(LOOPBACK, clock=CLOCK)
    url = webhook_receiver.url_for("/hook")
    first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert first_loop.run_until_complete(sender.send(url, HEADERS, BODY)).succeeded
        with pytest.raises(RuntimeError, match="another event loop"):
            second_loop.run_until_complete(sender.send(url, HEADERS, BODY))
    finally:
        first_loop.run_until_complete(sender.aclose())
        first_loop.close()
        second_loop.close()


def test_keep_alive_reuses_one_connection(webhook_receiver: WebhookReceiver) -> None:
    results = send(*[webhook_receiver.url_for("/hook")] * 20)

    assert all(result.succeeded for result in results)
    assert len(webhook_receiver.received) == 20
    assert webhook_receiver.connections_accepted == 1


def test_connects_to_the_checked_address_and_keeps_the_host_header(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding name: checked as 127.0.0.1, then answering 127.0.0.2, where nothing listens.
    dns = FakeDns({"hooks.example": ["127.0.0.1"]}, later={"hooks.example": ["127.0.0.2"]})
    port = webhook_receiver.port

    [result] = send(f"http://hooks.example:{port}/hook", dns=dns, monkeypatch=monkeypatch)

    assert result.succeeded
    assert dns.lookups == [("hooks.example", port)]
    assert webhook_receiver.received[0].headers["host"] == f"hooks.example:{port}"


def test_name_rebound_to_a_forbidden_address_is_refused_at_send_time(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns({"hooks.example": ["127.0.0.1"]}, later={"hooks.example": ["10.0.0.1"]})
    url = f"http://hooks.example:{webhook_receiver.port}/hook"

    first, second = send(url, url, dns=dns, monkeypatch=monkeypatch)

    assert first.succeeded
    assert second.error is not None
    assert second.error.startswith("url_forbidden: hooks.example (10.0.0.1) is a private address")
    assert len(webhook_receiver.received) == 1


def test_next_checked_address_is_tried_when_one_refuses(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns({"hooks.example": ["127.0.0.2", "127.0.0.1"]})

    [result] = send(
        f"http://hooks.example:{webhook_receiver.port}/hook", dns=dns, monkeypatch=monkeypatch
    )

    assert result.succeeded
    assert len(webhook_receiver.received) == 1


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for hooks.example only, and a client that trusts it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-nodes", "-days", "2"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-subj", "/CN=hooks.example", "-addext", "subjectAltName=DNS:hooks.example"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return Tls(server=server, client=ssl.create_default_context(cafile=str(cert)))


def test_https_verifies_the_hostname_while_connecting_to_the_checked_address(
    tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns({"hooks.example": ["127.0.0.1"]})
    with WebhookReceiver(ssl_context=tls.server) as receiver:
        [result] = send(
            f"https://hooks.example:{receiver.port}/hook",
            ssl_context=tls.client,
            dns=dns,
            monkeypatch=monkeypatch,
        )

        assert (result.status_code, result.error) == (200, None)
        assert receiver.received[0].headers["host"] == f"hooks.example:{receiver.port}"


def test_tls_connection_of_one_host_is_not_reused_for_another_on_the_same_address(
    tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hosts behind one CDN address: the second must be verified as itself, on its own connection.
    dns = FakeDns({"hooks.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    with WebhookReceiver(ssl_context=tls.server) as receiver:
        first, second = send(
            f"https://hooks.example:{receiver.port}/hook",
            f"https://other.example:{receiver.port}/hook",
            ssl_context=tls.client,
            dns=dns,
            monkeypatch=monkeypatch,
        )

        assert first.succeeded
        assert second.status_code is None
        assert second.error is not None
        assert second.error.startswith("TLS certificate not accepted: Hostname mismatch")
        assert len(receiver.received) == 1
