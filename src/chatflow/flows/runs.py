"""Durable runs: start, resume, cancel, each inside the caller's write transaction.

A run's state, its new steps, its effects (messages sent, chatrooms created) and its events all
commit in one transaction, or none of them does: a crash between two steps repeats nothing, and a
step that commits is never done again. Where a run waits (a reply, a timer, an HTTP answer), the
row says so, with the time a timer is due; `timers` and `triggers` wake it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from chatflow.domain.errors import NotFoundError
from chatflow.domain.flows import document as flow_document
from chatflow.domain.flows.catalog import LIMITS
from chatflow.domain.flows.document import FlowDocument
from chatflow.domain.flows.interpreter import (
    Advance,
    Effects,
    Finished,
    JsonObject,
    Resume,
    RunState,
    Waiting,
    advance,
    start,
)
from chatflow.domain.flows.records import FlowRun, FlowVersion, RunStatus, RunStep
from chatflow.domain.models import ChatroomId, OrganizationId
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.flows.effects import DatabaseEffects
from chatflow.ids import new_id
from chatflow.storage import flows as store
from chatflow.storage.database import Tx, is_transient_database_error
from chatflow.views import run_view


@dataclass(frozen=True, slots=True)
class Deployed:
    version: FlowVersion
    document: FlowDocument


log = logging.getLogger(__name__)

_DEPLOYED: OrderedDict[str, Deployed] = OrderedDict()
_DEPLOYED_CACHE_SIZE = 512


def deployed(tx: Tx, version_id: str) -> Deployed:
    """A version and its parsed document. Versions never change, so they are kept in memory."""
    found = _DEPLOYED.get(version_id)
    if found is not None:
        _DEPLOYED.move_to_end(version_id)
        return found
    version = store.get_version(tx, version_id)
    if version is None:
        raise NotFoundError(f"No flow version {version_id}")
    found = Deployed(version, flow_document.parse(version.document))
    _DEPLOYED[version_id] = found
    if len(_DEPLOYED) > _DEPLOYED_CACHE_SIZE:
        _DEPLOYED.popitem(last=False)
    return found


@dataclass(frozen=True, slots=True)
class Start:
    """What a trigger hands a new run."""

    type: str
    chatroom_id: str | None
    context: JsonObject
    """The trigger's variables (`chatInstanceId`, `contact`, `message`, `trigger`, `inputs`)."""
    summary: JsonObject = field(default_factory=dict)
    """Kept with the run: what fired it (an event, a message, a schedule time)."""
    depth: int = 0


def start_run(
    tx: Tx,
    org_id: OrganizationId,
    flow_id: str,
    version_id: str,
    begin: Start,
    *,
    effects: Effects | None = None,
) -> FlowRun:
    """Start a run of the deployed version and run it until it waits or ends.

    One run per flow and chatroom: a second trigger is recorded as a skipped run, or replaces
    the running one, as the flow's `on_conflict` says.
    """
    target = deployed(tx, version_id)
    run_id = new_id("run")
    trigger = {"type": begin.type, **begin.summary}
    base = FlowRun(
        id=run_id,
        org_id=org_id,
        flow_id=flow_id,
        version_id=version_id,
        chatroom_id=begin.chatroom_id,
        status=RunStatus.RUNNING,
        trigger=trigger,
        state={},
        wait_kind=None,
        wait_chatroom_id=None,
        cancel_on_agent_reply=False,
        wake_at=None,
        depth=begin.depth,
        step_count=0,
        error=None,
        started_at=tx.now,
        updated_at=tx.now,
        ended_at=None,
    )
    if begin.depth > LIMITS.max_chain_depth:
        return _skipped(
            tx,
            base,
            {
                "code": "chain_too_deep",
                "message": f"Started by a chain of more than {LIMITS.max_chain_depth} flows",
            },
        )
    if begin.chatroom_id is not None:
        running = store.lock_active_run(tx, flow_id, begin.chatroom_id)
        if running is not None:
            if target.document.settings.on_conflict == "skip":
                return _skipped(
                    tx,
                    base,
                    {
                        "code": "run_in_progress",
                        "message": "The chatroom already has a run of this flow",
                        "run_id": running.id,
                    },
                )
            end_run(
                tx,
                running,
                RunStatus.CANCELLED,
                {"code": "replaced", "message": "A new trigger replaced this run", "by": run_id},
            )
    context = {**begin.context, "run": {"id": run_id}, "flow": {"id": flow_id}}
    state = start(target.document, run_id, context, tx.now)
    try:
        with tx.savepoint():
            return _go(tx, base, target, state, None, effects, new=True)
    except Exception as exc:
        if is_transient_database_error(exc):
            raise
        log.exception("Run %s of flow %s failed to start", run_id, flow_id)
        failed = replace(base, status=RunStatus.FAILED, error=_internal(exc), ended_at=tx.now)
        store.insert_run(tx, failed)
        _announce(tx, failed)
        return failed


def resume_run(tx: Tx, run: FlowRun, resume: Resume, *, effects: Effects | None = None) -> FlowRun:
    """Go on from a wait with what ended it. `run` was locked by the caller and is waiting."""
    target = deployed(tx, run.version_id)
    state = RunState.from_json(run.state)
    try:
        with tx.savepoint():
            return _go(tx, run, target, state, resume, effects, new=False)
    except Exception as exc:
        if is_transient_database_error(exc):
            raise
        log.exception("Run %s failed to resume", run.id)
        return end_run(tx, run, RunStatus.FAILED, _internal(exc))


def _internal(exc: Exception) -> JsonObject:
    """A bug (or a value the database refused) met by one run: it fails that run only."""
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"[:500]}


def _go(
    tx: Tx,
    run: FlowRun,
    target: Deployed,
    state: RunState,
    resume: Resume | None,
    effects: Effects | None,
    *,
    new: bool,
) -> FlowRun:
    outer = tx.cause
    tx.cause = {"flow": run.flow_id, "run": run.id, "depth": run.depth}
    try:
        result = advance(
            target.document,
            state,
            effects or DatabaseEffects(tx, run.org_id),
            tx.now,
            resume,
        )
    finally:
        tx.cause = outer
    updated = _after(run, state, result, tx.now)
    announced = _announce(tx, updated)
    if announced is not None and updated.status is RunStatus.WAITING:
        # Which messages answer this wait: those after this event in the log (see triggers).
        updated = replace(updated, state={**updated.state, "wait_event": announced})
    if new:
        store.insert_run(tx, updated)
    else:
        store.save_run(tx, updated)
    store.insert_steps(
        tx,
        [
            RunStep(
                run_id=run.id,
                number=s.number,
                node_id=s.node,
                action=s.action,
                params=s.params,
                outcome=s.outcome,
                output=s.output,
                error=s.error,
                started_at=s.started_at,
                ended_at=s.ended_at,
            )
            for s in result.steps
        ],
    )
    return updated


def _after(run: FlowRun, state: RunState, result: Advance, now: int) -> FlowRun:
    stop = result.stop
    common: dict[str, Any] = {
        "state": state.to_json(),
        "step_count": state.steps,
        "updated_at": now,
    }
    if isinstance(stop, Waiting):
        return replace(
            run,
            status=RunStatus.WAITING,
            wait_kind=stop.kind,
            wait_chatroom_id=stop.chatroom_id,
            cancel_on_agent_reply=stop.cancel_on_agent_reply,
            # An HTTP request is due at once: the timer worker makes it, outside any transaction.
            wake_at=now if stop.until is None else stop.until,
            **common,
        )
    assert isinstance(stop, Finished)
    return replace(
        run,
        status=RunStatus(stop.status),
        wait_kind=None,
        wait_chatroom_id=None,
        cancel_on_agent_reply=False,
        wake_at=None,
        error=stop.error,
        ended_at=now,
        **common,
    )


def end_run(tx: Tx, run: FlowRun, status: RunStatus, error: JsonObject | None) -> FlowRun:
    """Stop an active run where it is (cancelled, or failed by a limit)."""
    ended = replace(
        run,
        status=status,
        wait_kind=None,
        wait_chatroom_id=None,
        cancel_on_agent_reply=False,
        wake_at=None,
        error=error,
        updated_at=tx.now,
        ended_at=tx.now,
    )
    store.save_run(tx, ended)
    _announce(tx, ended)
    return ended


def _skipped(tx: Tx, run: FlowRun, error: JsonObject) -> FlowRun:
    skipped = replace(run, status=RunStatus.SKIPPED, error=error, ended_at=tx.now)
    store.insert_run(tx, skipped)
    return skipped


_EVENTS = {
    RunStatus.WAITING: EventType.FLOW_RUN_WAITING,
    RunStatus.COMPLETED: EventType.FLOW_RUN_COMPLETED,
    RunStatus.FAILED: EventType.FLOW_RUN_FAILED,
}


def _announce(tx: Tx, run: FlowRun) -> str | None:
    """`flow_run.waiting` when a run starts waiting for a reply or a timer (not for its own
    HTTP requests), `flow_run.completed` and `flow_run.failed` when it ends; the event's id."""
    event = _EVENTS.get(run.status)
    if event is None or (event is EventType.FLOW_RUN_WAITING and run.wait_kind == "http"):
        return None
    data = {"run": run_view(run)}
    if run.chatroom_id is not None:
        [recorded] = outbox.record_chatroom(
            tx, run.org_id, ChatroomId(run.chatroom_id), [(event, data)]
        )
    else:
        recorded = outbox.record(tx, run.org_id, event, data)
    return recorded.id
