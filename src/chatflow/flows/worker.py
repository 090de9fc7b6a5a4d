"""The flow engine's timed work: timers (reply timeouts, delays), schedules and HTTP requests.

Due work is claimed with `FOR UPDATE SKIP LOCKED` inside the write transaction that acts on it,
so with any number of processes each timer fires once: a reply that arrives while the timeout
fires waits for the lock, then finds the run no longer waiting. A reply that committed before
the deadline wins, even when the triggers have not read it yet: they catch up first. An HTTP
request cannot be made inside a transaction: its run is leased (its wake time moved past the
request's deadline), the request made, and the answer applied in a second transaction, only if
the run still waits at that step. A process killed mid-request leaves the lease to run out; the
request is made again with the same `Idempotency-Key`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from chatflow.clock import iso
from chatflow.domain.flows.catalog import LIMITS
from chatflow.domain.flows.document import MAX_JSON_DEPTH, json_depth, next_fire_at
from chatflow.domain.flows.interpreter import HttpCall, JsonObject, Resume, http_call
from chatflow.domain.flows.records import RunStatus
from chatflow.domain.models import OrganizationId
from chatflow.events.bus import EventBus
from chatflow.flows.runs import Start, deployed, resume_run, start_run
from chatflow.storage import flows as store
from chatflow.storage import json
from chatflow.storage.database import Database, Tx
from chatflow.webhooks.sender import WebhookSender

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[\r\n\x00]")

CLAIM_LIMIT = 200
LEASE_GRACE_MS = 30_000
HTTP_CONCURRENCY = 16
USER_AGENT = "chatflow-flows/1"
DEPTH_HEADER = "chatflow-flow-depth"
"""Sent with a flow's HTTP requests: a webhook-triggered flow called by another flow counts one
deeper, so a chain of flows calling each other stops."""


@dataclass(frozen=True, slots=True)
class _Claimed:
    run_id: str
    org_id: str
    step: int
    depth: int
    call: HttpCall


def fire_due(tx: Tx, *, limit: int = CLAIM_LIMIT, http_slots: int = HTTP_CONCURRENCY) -> Fired:
    """Fire the due timers and schedules; lease as many due HTTP requests as there are free
    slots, and return them. A request claimed must start before its lease runs out, so none is
    claimed to wait in a queue."""
    fired = Fired()
    for run in store.claim_due_timers(tx, limit=limit):
        if run.wait_kind == "http":
            if len(fired.calls) >= http_slots:
                continue  # stays due: the next tick takes it
            pending = run.state["pending"]
            call = http_call(pending["params"], run.id, pending["number"])
            lease = tx.now + call.timeout_seconds * 1000 + LEASE_GRACE_MS
            store.save_run(tx, replace(run, wake_at=lease, updated_at=tx.now))
            fired.calls.append(_Claimed(run.id, run.org_id, pending["number"], run.depth, call))
            continue
        resume = Resume("timeout", {"reply": None}) if run.wait_kind == "reply" else Resume("next")
        resume_run(tx, run, resume)
        fired.timers += 1
    for flow_id, org_id, version_id, due in store.claim_due_schedules(tx, limit=limit):
        target = deployed(tx, version_id)
        begin = Start(
            "schedule",
            None,
            {"trigger": {"scheduled_at": iso(due)}},
            {"scheduled_at": iso(due)},
        )
        start_run(tx, OrganizationId(org_id), flow_id, version_id, begin)
        fired.timers += 1
        # Missed times (the server was down) fire once, not once each.
        store.update_flow(
            tx, flow_id, {"next_fire_at": next_fire_at(target.document.trigger, tx.now)}
        )
    return fired


@dataclass(slots=True)
class Fired:
    timers: int = 0
    """Timers fired and scheduled runs started."""
    calls: list[_Claimed] = field(default_factory=list)
    """HTTP requests leased, to be made."""


def complete_http(tx: Tx, claimed: _Claimed, resume: Resume) -> None:
    run = store.get_run(tx, claimed.org_id, claimed.run_id, lock=True)
    if (
        run is None
        or run.status is not RunStatus.WAITING
        or run.wait_kind != "http"
        or run.state["pending"]["number"] != claimed.step
    ):
        return  # cancelled meanwhile, or answered by another process after a lease ran out
    resume_run(tx, run, resume)


def answer_of(
    status: int | None, headers: dict[str, str], body: bytes, error: str | None
) -> Resume:
    parsed: Any = body.decode("utf-8", errors="replace")
    if headers.get("content-type", "").split(";")[0].strip().endswith("json"):
        with contextlib.suppress(ValueError):
            decoded = json.loads(parsed)
            # Kept as text when deeper than a run's variables may be: they are stored as JSON.
            parsed = decoded if json_depth(decoded) <= MAX_JSON_DEPTH else parsed
    output: JsonObject = {"status": status or 0, "body": parsed, "headers": headers}
    ok = status is not None and 200 <= status < 300 and error is None
    return Resume(
        "success" if ok else "error",
        output,
        None if ok else {"code": "http_error", "message": error or f"HTTP {status}"},
    )


class FlowWorker:
    """Runs `fire_due` whenever something may be due, and the HTTP requests it claims."""

    def __init__(
        self,
        database: Database,
        sender: WebhookSender,
        bus: EventBus | None = None,
        *,
        poll_seconds: float = 0.25,
        read_replies: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """`read_replies` brings the flow triggers up to the log's end (`ConsumerLoop.catch_up`):
        it runs before anything due fires, so a reply that committed before its wait's deadline
        answers the wait even when the triggers had not read it yet, never the timeout."""
        self._database = database
        self._sender = sender
        self._bus = bus
        self._read_replies = read_replies
        self._poll_seconds = poll_seconds
        self._requests = asyncio.Semaphore(HTTP_CONCURRENCY)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def tick(self) -> int:
        """Fire what is due now; how many timers, schedules and requests were taken (0: none,
        though some may be due, held by another process or waiting for a free slot)."""
        if not await self._database.read(store.any_due):
            return 0
        if self._read_replies is not None:
            await self._read_replies()
        slots = HTTP_CONCURRENCY - len(self._in_flight)
        fired = await self._database.write(partial(fire_due, http_slots=slots))
        for claimed in fired.calls:
            task = asyncio.get_running_loop().create_task(self._request(claimed))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return fired.timers + len(fired.calls)

    async def drain(self) -> None:
        """Wait for the requests under way (tests)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _request(self, claimed: _Claimed) -> None:
        call = claimed.call
        headers = {
            "user-agent": USER_AGENT,
            **{k.lower(): v for k, v in call.headers.items()},
            "idempotency-key": call.idempotency_key,
            DEPTH_HEADER: str(claimed.depth + 1),
        }
        body: bytes | None = None
        if call.body is not None:
            body = json.dumps(call.body).encode()
            headers.setdefault("content-type", "application/json")
        resume = await self._exchange(call, headers, body)
        try:
            await self._database.write(partial(complete_http, claimed=claimed, resume=resume))
        except Exception:
            log.exception(
                "Could not record the answer to run %s; it is asked again", claimed.run_id
            )

    async def _exchange(
        self, call: HttpCall, headers: dict[str, str], body: bytes | None
    ) -> Resume:
        bad = [name for name, value in headers.items() if _UNSAFE.search(name + value)]
        if bad:
            return answer_of(None, {}, b"", f"header {bad[0]!r} holds a line break")
        try:
            async with self._requests:
                answer = await self._sender.request(
                    call.method,
                    call.url,
                    headers,
                    body,
                    timeout_seconds=call.timeout_seconds,
                    read_limit=LIMITS.max_http_response_bytes,
                )
        except Exception as exc:
            # The sender reports network and HTTP failures itself; anything else it meets is
            # still this step's failure, never a request left to be made again forever.
            log.exception("HTTP step %s failed", call.idempotency_key)
            return answer_of(None, {}, b"", f"request failed: {type(exc).__name__}: {exc}")
        return answer_of(answer.status_code, answer.headers, answer.body, answer.error)

    async def run(self) -> None:
        """Until cancelled: after each commit of this process (a run may have just asked for an
        HTTP request) and every `poll_seconds` (timers come due with time alone)."""
        subscription = None if self._bus is None else self._bus.subscribe()
        try:
            while True:
                try:
                    while await self.tick():
                        pass
                except Exception:
                    log.exception("Flow timers failed; they are tried again shortly")
                if subscription is None:
                    await asyncio.sleep(self._poll_seconds)
                else:
                    await subscription.wait(self._poll_seconds)
        finally:
            if subscription is not None:
                subscription.close()
