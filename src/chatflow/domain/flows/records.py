"""Flows, their deployed versions and their runs, as stored."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from chatflow.domain.models import OrganizationId, record

JsonObject = dict[str, Any]


@record
class Flow:
    id: str
    org_id: OrganizationId
    name: str
    draft: JsonObject
    revision: int
    version_id: str | None
    """The deployed version; None: not deployed (its triggers start nothing)."""
    trigger_type: str | None
    webhook_secret: str
    next_fire_at: int | None
    created_at: int
    updated_at: int


@record
class FlowVersion:
    id: str
    flow_id: str
    org_id: OrganizationId
    number: int
    document: JsonObject
    message: str
    created_by: str
    created_at: int


class RunStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    """Not run: its chatroom already had a run of the flow (`on_conflict: skip`), or the chain
    of flows that caused it was too deep. Recorded so nobody wonders why nothing happened."""

    @property
    def active(self) -> bool:
        return self in (RunStatus.RUNNING, RunStatus.WAITING)


@record
class FlowRun:
    id: str
    org_id: OrganizationId
    flow_id: str
    version_id: str
    chatroom_id: str | None
    status: RunStatus
    trigger: JsonObject
    state: JsonObject
    wait_kind: str | None
    wait_chatroom_id: str | None
    cancel_on_agent_reply: bool
    wake_at: int | None
    depth: int
    step_count: int
    error: JsonObject | None
    started_at: int
    updated_at: int
    ended_at: int | None


@record
class RunStep:
    run_id: str
    number: int
    node_id: str
    action: str
    params: JsonObject
    outcome: str | None
    output: JsonObject
    error: JsonObject | None
    started_at: int
    ended_at: int
