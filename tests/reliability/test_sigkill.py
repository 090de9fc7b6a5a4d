"""Nothing lost when the server is killed (SPEC "Events, webhooks": never lose an event that was
committed; POSTs accept `Idempotency-Key`): the real `chatflow serve`, SIGKILLed while it works,
on SQLite and PostgreSQL. A few kills here; `python -m bench.kill_soak` runs many."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.kill_harness import (
    Api,
    ChatflowProcess,
    SoakPlan,
    create_endpoint,
    open_chatrooms,
    run_soak,
    server_env,
)
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow


def test_sigkilled_again_and_again_no_acknowledged_message_or_event_is_lost(
    empty_database: str, tmp_path: Path
) -> None:
    plan = SoakPlan(kills=3, senders=4, chatrooms=6, send_pause_seconds=0.05)
    report = run_soak(empty_database.split(":", maxsplit=1)[0], empty_database, plan, tmp_path)

    assert report.problems == [], report.summary()
    assert report.kills == 3
    assert report.sends_acknowledged >= 20, "the clients sent too little to prove anything"
    assert report.messages_stored == report.sends_acknowledged
    assert report.lost == 0
    assert report.distinct_received == report.deliveries_expected


def test_a_delivery_cut_off_by_a_crash_is_made_again_with_the_same_webhook_id(
    empty_database: str, tmp_path: Path
) -> None:
    # The attempt times out after 2 s, so the kill lands well inside it; the delivery it held is
    # claimed again when its lease (timeout + 5 s) runs out.
    env = server_env(webhook_timeout_seconds=2)
    server = ChatflowProcess(empty_database, log_path=tmp_path / "server.log", env=env)
    with WebhookReceiver() as receiver:
        receiver.respond_with(200, delay_seconds=60, times=1)  # holds the first answer back
        try:
            server.start()
            welcome = server.welcome()
            api = Api(server.base_url, welcome.api_key)
            try:
                endpoint = create_endpoint(api, receiver, "/hook", ["message.created"])
                open_chatrooms(api, welcome.channel_id, 1, "crash")
            finally:
                api.close()

            [held] = receiver.wait_for(1, timeout=30)
            server.kill()  # while the receiver holds its answer: the attempt is in flight
            server.start()
            first, again = receiver.wait_for(2, timeout=30)[:2]

            api = Api(server.base_url, welcome.api_key)
            try:
                [delivery] = _when_finished(api, endpoint.id)
            finally:
                api.close()
        finally:
            server.kill()

    assert first == held
    assert again.headers["webhook-id"] == held.headers["webhook-id"] == delivery["event_id"]
    assert again.body == held.body
    receiver.verify(endpoint.secret, held)
    receiver.verify(endpoint.secret, again)
    assert delivery["status"] == "succeeded"
    # The attempt cut off by the kill was never recorded: the log shows the one that succeeded.
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    assert len(receiver.received) == 2


def _when_finished(api: Api, endpoint_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is pending (the outcome is recorded just after the
    receiver answers)."""
    deadline = time.monotonic() + timeout
    while True:
        deliveries: list[dict[str, Any]] = api.ok(
            "GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries"
        )["data"]
        if all(d["status"] != "pending" for d in deliveries) or time.monotonic() > deadline:
            return deliveries
        time.sleep(0.05)
