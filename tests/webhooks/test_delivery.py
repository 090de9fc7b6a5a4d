"""Webhook delivery end to end (SPEC "Events, webhooks"; R6): fan-out, signing, retries on the
schedule, ordering by seq, disabling, the delivery log, redelivery, recovery, rotation, ping."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.factories import Org, expect_problem
from tests.webhook_receiver import Received, WebhookReceiver

from chatflow.api.deps import Runtime
from chatflow.clock import ManualClock, to_millis
from chatflow.domain.webhooks import RETRY_DELAYS_MS
from chatflow.storage.database import Database
from chatflow.webhooks.delivery import Outcome, do_record_attempts
from chatflow.webhooks.dispatcher import Dispatcher
from chatflow.webhooks.sender import AttemptResult


def payload_of(received: Received) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(received.body)
    return payload


@dataclass
class Hooks:
    """An organization's webhook endpoints, a receiver, and the dispatcher, run step by step."""

    org: Org
    receiver: WebhookReceiver
    dispatcher: Dispatcher
    client: TestClient
    clock: ManualClock

    def endpoint(self, path: str = "/hook", **fields: Any) -> dict[str, Any]:
        body = {"url": self.receiver.url_for(path), **fields}
        made: dict[str, Any] = self.org.api.ok("POST", "/v1/webhook-endpoints", body, status=201)
        return made

    def run(self) -> int:
        """Fan out what committed and make every attempt that is due now."""
        assert self.client.portal is not None
        attempts: int = self.client.portal.call(self.dispatcher.run_due)
        return attempts

    def deliveries(self, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
        page = self.org.api.ok(
            "GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params
        )
        data: list[dict[str, Any]] = page["data"]
        return data

    def later(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    def relayed_tap(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A customer taps a template sent with relay_response=true: a template.response."""
        chatroom = self.org.chatroom()
        sent = self.org.send_template(chatroom["id"], self.org.template(), relay_response=True)
        return chatroom, self.org.customer_taps(chatroom["id"], sent["id"], 0)


@pytest.fixture
def hooks(org: Org, client: TestClient, database: Database, clock: ManualClock) -> Iterator[Hooks]:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    dispatcher = Dispatcher(
        database,
        runtime.bus,
        runtime.webhook_sender,
        clock,
        concurrency=16,
        timeout_seconds=5,
        rng=random.Random(7),
    )
    receiver = WebhookReceiver()
    try:
        yield Hooks(org, receiver, dispatcher, client, clock)
    finally:
        # Deleting the endpoints deletes their deliveries: nothing of this test is attempted
        # by a later one, whose clock has moved on.
        for endpoint in org.api.ok("GET", "/v1/webhook-endpoints", params={"limit": 100})["data"]:
            org.api.ok("DELETE", f"/v1/webhook-endpoints/{endpoint['id']}", status=204)
        receiver.close()


# -- endpoints ---------------------------------------------------------------------------------


def test_an_endpoint_shows_its_secret_once_and_defaults_to_template_responses(
    hooks: Hooks,
) -> None:
    made = hooks.endpoint()
    assert made["secret"].startswith("whsec_")
    assert made["event_types"] == ["template.response"]
    assert made["enabled"] is True
    shown = hooks.org.api.ok("GET", f"/v1/webhook-endpoints/{made['id']}")
    assert "secret" not in shown
    listed = hooks.org.api.ok("GET", "/v1/webhook-endpoints")["data"]
    assert [e["id"] for e in listed] == [made["id"]]
    assert all("secret" not in e for e in listed)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://127.0.0.1/hook", "webhook_url_forbidden"),
        ("http://10.0.0.7/hook", "webhook_url_forbidden"),
        ("http://169.254.169.254/latest/meta-data", "webhook_url_forbidden"),
        ("http://user:secret@127.0.0.1/hook", "webhook_url_forbidden"),
        ("not a url", "webhook_url_forbidden"),
    ],
)
def test_endpoint_urls_into_internal_networks_are_refused_and_nothing_is_stored(
    hooks: Hooks, url: str, code: str
) -> None:
    response = hooks.org.api.post("/v1/webhook-endpoints", {"url": url})
    expect_problem(response, 422, code)
    assert hooks.org.api.ok("GET", "/v1/webhook-endpoints")["data"] == []


def test_unknown_event_types_are_refused_with_a_pointer(hooks: Hooks) -> None:
    response = hooks.org.api.post(
        "/v1/webhook-endpoints",
        {"url": hooks.receiver.url_for("/x"), "event_types": ["message.created", "nope"]},
    )
    problem = expect_problem(response, 422, "validation_error")
    assert problem["errors"][0]["pointer"] == "/event_types/1"


def test_endpoints_are_for_admins_and_invisible_to_other_organizations(
    hooks: Hooks, client: TestClient, database: Database
) -> None:
    from tests.factories import make_org

    made = hooks.endpoint()
    _, agent = hooks.org.agent()
    expect_problem(agent.get("/v1/webhook-endpoints"), 403, "forbidden")
    other = make_org(client, database)
    for response in (
        other.api.get(f"/v1/webhook-endpoints/{made['id']}"),
        other.api.patch(f"/v1/webhook-endpoints/{made['id']}", {"description": "mine"}),
        other.api.delete(f"/v1/webhook-endpoints/{made['id']}"),
        other.api.post(f"/v1/webhook-endpoints/{made['id']}/ping"),
        other.api.get(f"/v1/webhook-endpoints/{made['id']}/deliveries"),
    ):
        expect_problem(response, 404, "not_found")


def test_an_endpoint_can_be_changed_and_deleted(hooks: Hooks) -> None:
    made = hooks.endpoint()
    changed = hooks.org.api.ok(
        "PATCH",
        f"/v1/webhook-endpoints/{made['id']}",
        {"description": "CRM", "event_types": ["*"]},
    )
    assert (changed["description"], changed["event_types"]) == ("CRM", ["*"])
    hooks.org.api.ok("DELETE", f"/v1/webhook-endpoints/{made['id']}", status=204)
    expect_problem(hooks.org.api.get(f"/v1/webhook-endpoints/{made['id']}"), 404, "not_found")


# -- the relay (R6) and signing ----------------------------------------------------------------


def test_a_relayed_tap_reaches_the_endpoint_signed_r6(hooks: Hooks) -> None:
    made = hooks.endpoint()
    chatroom, tap = hooks.relayed_tap()

    assert hooks.run() == 1
    [received] = hooks.receiver.received
    payload = hooks.receiver.verify(made["secret"], received)
    [event] = hooks.org.events(type="template.response")
    assert received.headers["webhook-id"] == event["id"]
    assert payload["type"] == "template.response"
    assert payload["chatroom_id"] == chatroom["id"]
    assert payload["seq"] == event["seq"]
    assert payload["data"] == event["data"]
    assert payload["data"]["message_id"] == tap["id"]


def test_only_template_responses_by_default_and_free_flow_is_not_relayed_r6(
    hooks: Hooks,
) -> None:
    hooks.endpoint()
    chatroom = hooks.org.chatroom()
    sent = hooks.org.send_template(chatroom["id"], hooks.org.template())  # relay off
    hooks.org.customer_taps(chatroom["id"], sent["id"], 0)
    hooks.org.customer_says(chatroom["id"], "free flow")
    assert hooks.run() == 0
    assert hooks.receiver.received == []


def test_with_no_endpoint_the_response_is_recorded_and_nothing_is_sent_r6(hooks: Hooks) -> None:
    hooks.relayed_tap()
    assert hooks.run() == 0
    assert len(hooks.org.events(type="template.response")) == 1


def test_an_endpoint_gets_the_types_it_subscribes_to_and_nothing_from_before_it(
    hooks: Hooks,
) -> None:
    hooks.org.contact()  # before the endpoint: not sent
    hooks.later(timedelta(seconds=1))
    hooks.endpoint(event_types=["contact.created", "chatroom.created"])
    contact = hooks.org.contact()
    hooks.org.chatroom(contact=contact)
    hooks.run()
    types = [payload_of(r)["type"] for r in hooks.receiver.received]
    assert sorted(types) == ["chatroom.created", "contact.created"]


# -- retries, ordering, disabling ----------------------------------------------------------------


def test_a_failed_attempt_is_retried_on_the_schedule_with_the_same_webhook_id(
    hooks: Hooks,
) -> None:
    made = hooks.endpoint()
    hooks.receiver.respond_with(500, body=b"down for maintenance", times=1)
    hooks.relayed_tap()

    assert hooks.run() == 1
    [delivery] = hooks.deliveries(made["id"])
    assert delivery["status"] == "pending"
    assert delivery["attempts"][0]["status_code"] == 500
    assert delivery["attempts"][0]["response_excerpt"] == "down for maintenance"
    assert hooks.run() == 0  # not due yet

    hooks.later(timedelta(milliseconds=RETRY_DELAYS_MS[0] * 1.2 + 1))
    assert hooks.run() == 1
    [delivery] = hooks.deliveries(made["id"])
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    first, second = hooks.receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body


def test_retries_span_at_least_72_hours_then_the_delivery_fails(hooks: Hooks) -> None:
    made = hooks.endpoint()
    hooks.receiver.respond_with(503)
    hooks.relayed_tap()
    started = hooks.clock.now()

    hooks.run()
    while hooks.deliveries(made["id"])[0]["status"] == "pending":
        hooks.later(timedelta(hours=1))
        hooks.run()

    [delivery] = hooks.deliveries(made["id"])
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == len(RETRY_DELAYS_MS) + 1 == 10
    assert len(hooks.receiver.received) == 10
    assert hooks.clock.now() - started >= timedelta(hours=72)


def test_first_attempts_of_a_chatroom_go_out_in_seq_order(hooks: Hooks) -> None:
    hooks.endpoint(event_types=["message.created"])
    chatroom = hooks.org.chatroom()
    hooks.org.customer_says(chatroom["id"], "start")
    for i in range(12):
        hooks.org.api.ok(
            "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": f"m{i}"}, status=201
        )
    hooks.run()
    seqs = [payload_of(r)["seq"] for r in hooks.receiver.received]
    assert len(seqs) == 13
    assert seqs == sorted(seqs)


def test_a_retry_does_not_hold_later_events_of_the_chatroom_back(hooks: Hooks) -> None:
    hooks.endpoint(event_types=["message.created"])
    chatroom = hooks.org.chatroom()
    hooks.org.customer_says(chatroom["id"], "first")
    hooks.receiver.respond_with(500, times=1)
    hooks.run()
    hooks.org.customer_says(chatroom["id"], "second")
    hooks.run()
    texts = [payload_of(r)["data"]["message"]["text"] for r in hooks.receiver.received]
    assert texts == ["first", "second"]  # the first failed, the second went anyway
    hooks.later(timedelta(seconds=10))
    hooks.run()
    texts = [payload_of(r)["data"]["message"]["text"] for r in hooks.receiver.received]
    assert texts == ["first", "second", "first"]


def test_410_gone_disables_the_endpoint_and_tells_the_organization(hooks: Hooks) -> None:
    made = hooks.endpoint(event_types=["message.created"])
    chatroom = hooks.org.chatroom()
    hooks.receiver.respond_with(410)
    hooks.org.customer_says(chatroom["id"], "one")
    hooks.run()

    endpoint = hooks.org.api.ok("GET", f"/v1/webhook-endpoints/{made['id']}")
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (False, "gone")
    [told] = hooks.org.events(type="webhook_endpoint.disabled")
    assert told["data"]["reason"] == "gone"
    assert told["data"]["endpoint"]["id"] == made["id"]
    hooks.org.customer_says(chatroom["id"], "two")
    assert hooks.run() == 0
    assert len(hooks.receiver.received) == 1


def test_an_endpoint_failing_for_five_days_is_disabled(hooks: Hooks) -> None:
    made = hooks.endpoint(event_types=["message.created"])
    chatroom = hooks.org.chatroom()
    hooks.receiver.respond_with(500)
    hooks.org.customer_says(chatroom["id"], "day 0")
    hooks.run()
    failing = hooks.org.api.ok("GET", f"/v1/webhook-endpoints/{made['id']}")
    assert failing["enabled"] is True
    assert failing["failing_since"] is not None

    for _ in range(5):
        hooks.later(timedelta(days=1))
        hooks.org.customer_says(chatroom["id"], "another day")
        hooks.run()

    endpoint = hooks.org.api.ok("GET", f"/v1/webhook-endpoints/{made['id']}")
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (False, "failing")
    [told] = hooks.org.events(type="webhook_endpoint.disabled")
    assert told["data"]["reason"] == "failing"
    assert all(d["status"] == "failed" for d in hooks.deliveries(made["id"]))


def test_a_success_ends_the_failing_streak(hooks: Hooks) -> None:
    made = hooks.endpoint(event_types=["message.created"])
    chatroom = hooks.org.chatroom()
    hooks.receiver.respond_with(500, times=1)
    hooks.org.customer_says(chatroom["id"], "one")
    hooks.run()
    hooks.later(timedelta(seconds=10))
    hooks.run()
    endpoint = hooks.org.api.ok("GET", f"/v1/webhook-endpoints/{made['id']}")
    assert endpoint["failing_since"] is None


def test_a_delivery_claimed_by_a_process_that_died_is_attempted_again(hooks: Hooks) -> None:
    made = hooks.endpoint()
    hooks.relayed_tap()
    assert hooks.client.portal is not None
    hooks.client.portal.call(hooks.dispatcher.fan_out)
    # A process claims the delivery, then dies before sending it: only its lease remains.
    [claimed] = hooks.client.portal.call(hooks.dispatcher.claim, 10)
    assert hooks.run() == 0  # leased: nobody else takes it
    hooks.later(timedelta(minutes=2))
    assert hooks.run() == 1
    [delivery] = hooks.deliveries(made["id"])
    assert delivery["id"] == claimed.delivery.id
    assert delivery["status"] == "succeeded"


# -- the log, redelivery, recovery --------------------------------------------------------------


def test_the_delivery_log_records_every_attempt(hooks: Hooks) -> None:
    made = hooks.endpoint()
    hooks.receiver.respond_with(429, headers={"Retry-After": "120"}, times=1)
    hooks.relayed_tap()
    hooks.run()
    [delivery] = hooks.deliveries(made["id"])
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 429
    assert attempt["latency_ms"] >= 0
    assert attempt["error"]
    # Retry-After is honoured: not due after the scheduled 5-6 s.
    hooks.later(timedelta(seconds=10))
    assert hooks.run() == 0
    hooks.later(timedelta(seconds=120))
    assert hooks.run() == 1
    shown = hooks.org.api.ok("GET", f"/v1/webhook-deliveries/{delivery['id']}")
    assert [a["status_code"] for a in shown["attempts"]] == [429, 200]
    failed_only = hooks.deliveries(made["id"], status="failed")
    assert failed_only == []


def test_a_delivery_can_be_sent_again_by_hand(hooks: Hooks) -> None:
    made = hooks.endpoint()
    hooks.relayed_tap()
    hooks.run()
    [delivery] = hooks.deliveries(made["id"])
    again = hooks.org.api.ok(
        "POST", f"/v1/webhook-deliveries/{delivery['id']}/redeliver", status=202
    )
    assert again["status"] == "pending"
    assert hooks.run() == 1
    first, second = hooks.receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_recover_sends_what_failed_and_what_was_missed_while_disabled(hooks: Hooks) -> None:
    made = hooks.endpoint(event_types=["message.created"])
    chatroom = hooks.org.chatroom()
    since = hooks.clock.now()
    hooks.receiver.respond_with(410, times=1)
    hooks.org.customer_says(chatroom["id"], "failed")
    hooks.run()  # gone: disabled
    hooks.org.customer_says(chatroom["id"], "missed")
    hooks.run()
    expect_problem(
        hooks.org.api.post(
            f"/v1/webhook-endpoints/{made['id']}/recover", {"since": since.isoformat()}
        ),
        409,
        "webhook_endpoint_disabled",
    )
    hooks.org.api.ok("PATCH", f"/v1/webhook-endpoints/{made['id']}", {"enabled": True})
    recovered = hooks.org.api.ok(
        "POST",
        f"/v1/webhook-endpoints/{made['id']}/recover",
        {"since": since.isoformat()},
        status=202,
    )
    assert recovered == {"requeued": 1, "created": 1}
    hooks.run()
    texts = [payload_of(r)["data"]["message"]["text"] for r in hooks.receiver.received]
    assert texts[0] == "failed"
    assert sorted(texts[1:]) == ["failed", "missed"]


# -- secrets and ping ------------------------------------------------------------------------------


def test_after_rotation_both_secrets_sign_for_a_day(hooks: Hooks) -> None:
    made = hooks.endpoint()
    rotated = hooks.org.api.ok("POST", f"/v1/webhook-endpoints/{made['id']}/rotate-secret")
    assert rotated["secret"] != made["secret"]
    hooks.relayed_tap()
    hooks.run()
    [received] = hooks.receiver.received
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    hooks.receiver.verify(made["secret"], received)
    hooks.receiver.verify(rotated["secret"], received)

    hooks.later(timedelta(hours=24, minutes=1))
    hooks.relayed_tap()
    hooks.run()
    latest = hooks.receiver.received[-1]
    assert len(latest.headers["webhook-signature"].split(" ")) == 1
    hooks.receiver.verify(rotated["secret"], latest)
    with pytest.raises(Exception, match=r"(?i)signature"):
        hooks.receiver.verify(made["secret"], latest)


def test_ping_reports_what_the_receiver_answered(hooks: Hooks) -> None:
    made = hooks.endpoint()
    result = hooks.org.api.ok("POST", f"/v1/webhook-endpoints/{made['id']}/ping")
    assert result["succeeded"] is True
    assert result["status_code"] == 200
    [received] = hooks.receiver.received
    assert hooks.receiver.verify(made["secret"], received)["type"] == "webhook.ping"

    hooks.receiver.respond_with(503, body=b"nope", times=1)
    failed = hooks.org.api.ok("POST", f"/v1/webhook-endpoints/{made['id']}/ping")
    assert (failed["succeeded"], failed["status_code"]) == (False, 503)
    assert hooks.deliveries(made["id"]) == []  # pings are not deliveries


def test_claims_by_concurrent_processes_never_overlap(hooks: Hooks, database: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from chatflow.storage.webhooks import claim_due

    hooks.endpoint(event_types=["contact.created"])
    for _ in range(40):
        hooks.org.contact()
    assert hooks.client.portal is not None
    hooks.client.portal.call(hooks.dispatcher.fan_out)
    now = to_millis(hooks.clock.now())

    def claim(_: int) -> list[str]:
        return [
            c.delivery.id
            for c in database.write_sync(
                lambda tx: claim_due(tx, now=now, limit=15, lease_ms=60_000)
            )
        ]

    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(claim, range(4)))
    claimed = [d for batch in batches for d in batch]
    assert len(claimed) == len(set(claimed)) == 40


def test_a_batch_of_outcomes_is_recorded_as_one_by_one_would_be(
    hooks: Hooks, database: Database
) -> None:
    """Successes in a batch are written together; a failure in the same batch still retries,
    and each line's next event is released whatever its head's first attempt came to."""
    made = hooks.endpoint(event_types=["message.created"])
    rooms = [hooks.org.chatroom() for _ in range(3)]
    for room in rooms:
        hooks.org.customer_says(room["id"], "first")
        hooks.org.customer_says(room["id"], "second")
    assert hooks.client.portal is not None
    hooks.client.portal.call(hooks.dispatcher.fan_out)
    heads = hooks.client.portal.call(hooks.dispatcher.claim, 100)
    assert len(heads) == 3  # one head per chatroom; the second messages are held behind them
    ok = AttemptResult(200, 3, None, "ok", None)
    broken = AttemptResult(500, 4, None, "broken", None)
    results = {heads[0].delivery.id: ok, heads[1].delivery.id: broken, heads[2].delivery.id: ok}
    now = to_millis(hooks.clock.now())
    database.write_sync(
        lambda tx: do_record_attempts(
            tx, [Outcome(h, results[h.delivery.id], now) for h in heads], random.Random(1)
        )
    )

    by_id = {d["id"]: d for d in hooks.deliveries(made["id"], limit=100)}
    assert [by_id[h.delivery.id]["status"] for h in heads] == ["succeeded", "pending", "succeeded"]
    retry_at = datetime.fromisoformat(by_id[heads[1].delivery.id]["next_attempt_at"])
    assert retry_at > hooks.clock.now()
    assert all(by_id[h.delivery.id]["attempt_count"] == 1 for h in heads)
    assert sorted(d["status"] for d in by_id.values()) == ["pending"] * 4 + ["succeeded"] * 2
    endpoint = hooks.org.api.ok("GET", f"/v1/webhook-endpoints/{made['id']}")
    assert endpoint["failing_since"] is not None  # the failure began a streak
    assert hooks.run() == 3  # the three released second messages, due now
