"""The flow engine's timed work: timers (reply timeouts, delays), schedules and HTTP requests.

Due work is claimed with `FOR UPDATE SKIP LOCKED` inside the write transaction that acts on it,
so with any number of processes each timer fires once: a reply that arrives while the timeout
fires waits for the lock, then finds the run no longer waiting. An HTTP request cannot be made
inside a transaction: its run is leased (its wake time moved past the request's deadline), the
request made, and the answer applied in a second transaction, only if the run still waits at
that step. A process killed mid-request leaves the lease to run out; the request is made again
with the same `Idempotency-Key`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from chatflow.clock import iso
from chatflow.domain.flows.catalog import LIMITS
from chatflow.domain.flows.document import next_fire_at
from chatflow.domain.flows.interpreter import HttpCall, JsonObject, Resume
from chatflow.domain.flows.records import RunStatus
from chatflow.domain.models import OrganizationId
from chatflow.events.bus import EventBus
from chatflow.flows.runs import Start, deployed, end_run, resume_run, start_run
from chatflow.storage import flows as store
from chatflow.storage import json
from chatflow.storage.database import Database, Tx, is_database_error
from chatflow.webhooks.sender import WebhookSender

log = logging.getLogger(__name__)

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


def fire_due(tx: Tx, *, limit: int = CLAIM_LIMIT) -> list[_Claimed]:
    """Fire the due timers and schedules; lease the due HTTP requests and return them."""
    calls: list[_Claimed] = []
    for run in store.claim_due_timers(tx, limit=limit):
        if run.wait_kind == "http":
            pending = run.state["pending"]
            params = pending["params"]
            call = HttpCall(
                method=params["method"],
                url=params["url"],
                headers=params["headers"],
                body=params.get("body"),
                timeout_seconds=params["timeout_seconds"],
                idempotency_key=f"{run.id}.{pending['number']}",
            )
            lease = tx.now + call.timeout_seconds * 1000 + LEASE_GRACE_MS
            store.save_run(tx, replace(run, wake_at=lease, updated_at=tx.now))
            calls.append(_Claimed(run.id, run.org_id, pending["number"], run.depth, call))
            continue
        resume = Resume("timeout", {"reply": None}) if run.wait_kind == "reply" else Resume("next")
        try:
            with tx.savepoint():
                resume_run(tx, run, resume)
        except Exception as exc:
            if is_database_error(exc):
                raise  # nothing of this tick is kept; it fires again
            # A bug met by one run fails that run, rather than every timer behind it forever.
            log.exception("Run %s failed on its timer", run.id)
            end_run(tx, run, RunStatus.FAILED, {"code": "internal_error", "message": str(exc)})
    for flow_id, org_id, version_id, due in store.claim_due_schedules(tx, limit=limit):
        target = deployed(tx, version_id)
        begin = Start(
            "schedule",
            None,
            {"trigger": {"scheduled_at": iso(due)}},
            {"scheduled_at": iso(due)},
        )
        try:
            with tx.savepoint():
                start_run(tx, OrganizationId(org_id), flow_id, version_id, begin)
        except Exception as exc:
            if is_database_error(exc):
                raise
            log.exception("Scheduled flow %s could not start", flow_id)
        # Missed times (the server was down) fire once, not once each.
        store.update_flow(
            tx, flow_id, {"next_fire_at": next_fire_at(target.document.trigger, tx.now)}
        )
    return calls


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
            parsed = json.loads(parsed)
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
    ) -> None:
        self._database = database
        self._sender = sender
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._requests = asyncio.Semaphore(HTTP_CONCURRENCY)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def tick(self) -> int:
        """Fire what is due now; how many timers, schedules and requests were taken."""
        if not await self._database.read(store.any_due):
            return 0
        calls = await self._database.write(fire_due)
        for claimed in calls:
            task = asyncio.get_running_loop().create_task(self._request(claimed))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(calls) + 1

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
        async with self._requests:
            answer = await self._sender.request(
                call.method,
                call.url,
                headers,
                body,
                timeout_seconds=call.timeout_seconds,
                read_limit=LIMITS.max_http_response_bytes,
            )
        resume = answer_of(answer.status_code, answer.headers, answer.body, answer.error)
        try:
            await self._database.write(partial(complete_http, claimed=claimed, resume=resume))
        except Exception:
            log.exception(
                "Could not record the answer to run %s; it is asked again", claimed.run_id
            )

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
