"""The test receiver: other suites lean on it, so its own behaviour is pinned here."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from standardwebhooks import WebhookVerificationError
from tests.webhook_receiver import Received, WebhookReceiver

from chatflow.webhooks.signing import new_secret, webhook_headers

TIMESTAMP_IN_2026 = 1_772_442_000  # far from the real clock: verify must not care


def post(
    receiver: WebhookReceiver, path: str, body: bytes = b"{}", **headers: str
) -> httpx.Response:
    with httpx.Client(trust_env=False) as client:
        return client.post(receiver.url_for(path), content=body, headers=headers)


def test_records_path_lower_cased_headers_and_body(webhook_receiver: WebhookReceiver) -> None:
    before = time.monotonic()

    response = post(webhook_receiver, "/in?x=1", b'{"a":1}', **{"X-Custom": "Value"})

    assert (response.status_code, response.content) == (200, b"ok")
    [request] = webhook_receiver.received
    assert request.path == "/in"
    assert request.headers["x-custom"] == "Value"
    assert request.body == b'{"a":1}'
    assert before <= request.received_at <= time.monotonic()
    assert webhook_receiver.bodies_json() == [{"a": 1}]
    webhook_receiver.clear()
    assert webhook_receiver.received == []


def test_scripted_answers_are_used_in_order_then_the_default(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.respond_with(500, body=b"down", times=2)
    webhook_receiver.respond_with(429, headers={"retry-after": "7"}, times=1)

    answers = [post(webhook_receiver, "/hook") for _ in range(4)]

    assert [a.status_code for a in answers] == [500, 500, 429, 200]
    assert answers[0].content == b"down"
    assert answers[2].headers["retry-after"] == "7"


def test_scripted_answer_for_one_path_leaves_others_alone(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.respond_with(410, path="/gone")

    assert post(webhook_receiver, "/other").status_code == 200
    assert post(webhook_receiver, "/gone").status_code == 410
    assert post(webhook_receiver, "/gone").status_code == 410  # times=None: forever


def test_delayed_answer_does_not_hold_up_other_connections(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.respond_with(200, delay_seconds=1.0, path="/slow")

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(post, webhook_receiver, "/slow")
        webhook_receiver.wait_for(1)
        assert post(webhook_receiver, "/fast").status_code == 200
        # Answered while the slow one is still held back: an order, not a stopwatch.
        assert not slow.done()
        assert slow.result().status_code == 200


def test_keep_alive_and_concurrent_clients(webhook_receiver: WebhookReceiver) -> None:
    def client_posts(number: int) -> list[int]:
        with httpx.Client(trust_env=False) as client:
            url = webhook_receiver.url_for(f"/client/{number}")
            return [client.post(url, content=b"{}").status_code for _ in range(50)]

    with ThreadPoolExecutor(8) as pool:
        statuses = [status for batch in pool.map(client_posts, range(8)) for status in batch]

    assert statuses == [200] * 400
    assert len(webhook_receiver.wait_for(400)) == 400
    assert webhook_receiver.connections_accepted == 8


def test_wait_for_names_what_arrived_when_it_times_out(
    webhook_receiver: WebhookReceiver,
) -> None:
    post(webhook_receiver, "/only")

    with pytest.raises(
        AssertionError, match=r"expected 2 webhook request\(s\).*got 1: \['/only'\]"
    ):
        webhook_receiver.wait_for(2, timeout=0.05)


def test_wait_for_async_leaves_the_event_loop_free(webhook_receiver: WebhookReceiver) -> None:
    async def scenario() -> list[Received]:
        async with httpx.AsyncClient(trust_env=False) as client:
            waiting = asyncio.create_task(webhook_receiver.wait_for_async(1))
            await client.post(webhook_receiver.url_for("/async"), content=b"{}")
            return await waiting

    assert [request.path for request in asyncio.run(scenario())] == ["/async"]


def test_verify_checks_the_signature_exactly_at_any_timestamp(
    webhook_receiver: WebhookReceiver,
) -> None:
    current, previous = new_secret(), new_secret()
    body = b'{"type":"contact.created"}'
    headers = webhook_headers([current, previous], "evt_9", TIMESTAMP_IN_2026, body)
    post(webhook_receiver, "/hook", body, **headers)
    [request] = webhook_receiver.received

    assert WebhookReceiver.verify(current, request) == {"type": "contact.created"}
    assert WebhookReceiver.verify(previous, request) == {"type": "contact.created"}
    with pytest.raises(WebhookVerificationError):
        WebhookReceiver.verify(new_secret(), request)
    with pytest.raises(WebhookVerificationError):
        WebhookReceiver.verify(current, Received(request.path, request.headers, b"{}", 0.0))
    moved = request.headers | {"webhook-timestamp": str(TIMESTAMP_IN_2026 + 1)}
    with pytest.raises(WebhookVerificationError):
        WebhookReceiver.verify(current, Received(request.path, moved, request.body, 0.0))
    unsigned = {k: v for k, v in request.headers.items() if k != "webhook-signature"}
    with pytest.raises(WebhookVerificationError, match="missing"):
        WebhookReceiver.verify(current, Received(request.path, unsigned, request.body, 0.0))


def test_close_drops_open_connections_and_can_be_repeated() -> None:
    receiver = WebhookReceiver()
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=2) as connection:
        connection.sendall(b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        assert connection.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")

        receiver.close()
        receiver.close()

        with contextlib.suppress(ConnectionResetError):  # an abort may reset rather than end
            assert connection.recv(65536) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", receiver.port), timeout=2)
