"""Flows, versions, runs and their steps."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatflow.domain.flows.records import Flow, FlowRun, FlowVersion, RunStatus, RunStep
from chatflow.domain.models import OrganizationId
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import InQuery, Query, insert_row, param
from chatflow.storage.tables import flow_run_steps as _steps
from chatflow.storage.tables import flow_runs as _runs
from chatflow.storage.tables import flow_versions as _versions
from chatflow.storage.tables import flows as _flows


def _active() -> sa.ColumnElement[bool]:
    # Two comparisons, not IN: a compiled `Query` binds no list.
    return sa.or_(
        _runs.c.status == RunStatus.RUNNING.value, _runs.c.status == RunStatus.WAITING.value
    )


# -- flows ------------------------------------------------------------------------------------


def _flow(row: Any) -> Flow:
    return Flow(
        id=row.id,
        org_id=OrganizationId(row.org_id),
        name=row.name,
        draft=json.loads(row.draft),
        revision=row.revision,
        version_id=row.version_id,
        trigger_type=row.trigger_type,
        webhook_secret=row.webhook_secret,
        next_fire_at=row.next_fire_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def insert_flow(tx: Tx, flow: Flow) -> None:
    tx.execute(
        _flows.insert().values(
            id=flow.id,
            org_id=flow.org_id,
            name=flow.name,
            draft=json.dumps(flow.draft),
            revision=flow.revision,
            version_id=flow.version_id,
            trigger_type=flow.trigger_type,
            webhook_secret=flow.webhook_secret,
            next_fire_at=flow.next_fire_at,
            created_at=flow.created_at,
            updated_at=flow.updated_at,
        )
    )


_get_flow = sa.select(_flows).where(_flows.c.org_id == param("org_id"), _flows.c.id == param("id"))
_GET_FLOW = Query(_get_flow)
_LOCK_FLOW = Query(_get_flow.with_for_update())


def get_flow(tx: Tx, org_id: str, flow_id: str, *, lock: bool = False) -> Flow | None:
    row = tx.run(_LOCK_FLOW if lock else _GET_FLOW, {"org_id": org_id, "id": flow_id}).first()
    return None if row is None else _flow(row)


def get_flow_any_org(tx: Tx, flow_id: str) -> Flow | None:
    """For the incoming-webhook URL, whose caller proves itself with the flow's secret."""
    row = tx.execute(sa.select(_flows).where(_flows.c.id == flow_id)).first()
    return None if row is None else _flow(row)


def list_flows(tx: Tx, org_id: str, *, after: str | None, limit: int) -> list[Flow]:
    query = sa.select(_flows).where(_flows.c.org_id == org_id)
    if after is not None:
        query = query.where(_flows.c.id > after)
    rows = tx.execute(query.order_by(_flows.c.id).limit(limit + 1)).all()
    return [_flow(r) for r in rows]


def update_flow(tx: Tx, flow_id: str, values: dict[str, Any]) -> None:
    if "draft" in values:
        values = {**values, "draft": json.dumps(values["draft"])}
    tx.execute(_flows.update().where(_flows.c.id == flow_id).values(**values))


_DEPLOYED = InQuery(
    lambda among: sa.select(_flows.c.id, _flows.c.version_id, _flows.c.trigger_type).where(
        _flows.c.org_id == param("org_id"),
        among(_flows.c.trigger_type),
    )
)


def deployed_flows(tx: Tx, org_id: str, trigger_types: list[str]) -> list[tuple[str, str, str]]:
    """(flow, version, trigger type) of the organization's deployed flows with these triggers."""
    rows = _DEPLOYED.run(tx.conn, trigger_types, {"org_id": org_id}).all()
    return [(r.id, r.version_id, r.trigger_type) for r in rows]


_DUE_SCHEDULES = Query(
    sa.select(_flows.c.id, _flows.c.org_id, _flows.c.version_id, _flows.c.next_fire_at)
    .where(_flows.c.next_fire_at <= param("now"))
    .order_by(_flows.c.next_fire_at)
    .limit(param("limit"))
    .with_for_update(skip_locked=True)
)
_ANY_DUE_SCHEDULE = Query(
    sa.select(_flows.c.id).where(_flows.c.next_fire_at <= param("now")).limit(1)
)


def claim_due_schedules(tx: Tx, *, limit: int) -> list[tuple[str, str, str, int]]:
    """(flow, org, version, due time) of schedule flows due now, locked; others skip them."""
    rows = tx.run(_DUE_SCHEDULES, {"now": tx.now, "limit": limit}).all()
    return [(r.id, r.org_id, r.version_id, r.next_fire_at) for r in rows]


# -- versions -----------------------------------------------------------------------------------


def _version(row: Any) -> FlowVersion:
    return FlowVersion(
        id=row.id,
        flow_id=row.flow_id,
        org_id=OrganizationId(row.org_id),
        number=row.number,
        document=json.loads(row.document),
        message=row.message,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def insert_version(tx: Tx, version: FlowVersion) -> None:
    tx.execute(
        _versions.insert().values(
            id=version.id,
            flow_id=version.flow_id,
            org_id=version.org_id,
            number=version.number,
            document=json.dumps(version.document),
            message=version.message,
            created_by=version.created_by,
            created_at=version.created_at,
        )
    )


_VERSION = Query(sa.select(_versions).where(_versions.c.id == param("id")))


def get_version(tx: Tx, version_id: str) -> FlowVersion | None:
    row = tx.run(_VERSION, {"id": version_id}).first()
    return None if row is None else _version(row)


def get_version_by_number(tx: Tx, flow_id: str, number: int) -> FlowVersion | None:
    row = tx.execute(
        sa.select(_versions).where(_versions.c.flow_id == flow_id, _versions.c.number == number)
    ).first()
    return None if row is None else _version(row)


def latest_version_number(tx: Tx, flow_id: str) -> int:
    found = tx.execute(
        sa.select(sa.func.max(_versions.c.number)).where(_versions.c.flow_id == flow_id)
    ).scalar()
    return int(found or 0)


def list_versions(tx: Tx, flow_id: str, *, before: int | None, limit: int) -> list[FlowVersion]:
    """Newest first."""
    query = sa.select(_versions).where(_versions.c.flow_id == flow_id)
    if before is not None:
        query = query.where(_versions.c.number < before)
    rows = tx.execute(query.order_by(_versions.c.number.desc()).limit(limit + 1)).all()
    return [_version(r) for r in rows]


# -- runs ---------------------------------------------------------------------------------------


def _run(row: Any) -> FlowRun:
    return FlowRun(
        id=row.id,
        org_id=OrganizationId(row.org_id),
        flow_id=row.flow_id,
        version_id=row.version_id,
        chatroom_id=row.chatroom_id,
        status=RunStatus(row.status),
        trigger=json.loads(row.trigger),
        state=json.loads(row.state),
        wait_kind=row.wait_kind,
        wait_chatroom_id=row.wait_chatroom_id,
        cancel_on_agent_reply=bool(row.cancel_on_agent_reply),
        wake_at=row.wake_at,
        depth=row.depth,
        step_count=row.step_count,
        error=json.loads(row.error),
        started_at=row.started_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
    )


def active_key(run: FlowRun) -> str | None:
    if run.chatroom_id is None or not run.status.active:
        return None
    return f"{run.flow_id}:{run.chatroom_id}"


def _run_values(run: FlowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "org_id": run.org_id,
        "flow_id": run.flow_id,
        "version_id": run.version_id,
        "chatroom_id": run.chatroom_id,
        "status": run.status.value,
        "active_key": active_key(run),
        "trigger": json.dumps(run.trigger),
        "state": json.dumps(run.state),
        "wait_kind": run.wait_kind,
        "wait_chatroom_id": run.wait_chatroom_id,
        "cancel_on_agent_reply": run.cancel_on_agent_reply,
        "wake_at": run.wake_at,
        "depth": run.depth,
        "step_count": run.step_count,
        "error": None if run.error is None else json.dumps(run.error),
        "started_at": run.started_at,
        "updated_at": run.updated_at,
        "ended_at": run.ended_at,
    }


_INSERT_RUN = insert_row(_runs)
_SAVE_RUN = Query(
    _runs.update()
    .where(_runs.c.id == param("id"))
    .values({c.name: param(c.name) for c in _runs.columns if c.name not in ("id", "org_id")})
)


def insert_run(tx: Tx, run: FlowRun) -> None:
    tx.run(_INSERT_RUN, _run_values(run))


def save_run(tx: Tx, run: FlowRun) -> None:
    tx.run(_SAVE_RUN, _run_values(run))


_GET_RUN = Query(
    sa.select(_runs).where(_runs.c.org_id == param("org_id"), _runs.c.id == param("id"))
)
_LOCK_RUN = Query(
    sa.select(_runs)
    .where(_runs.c.org_id == param("org_id"), _runs.c.id == param("id"))
    .with_for_update()
)


def get_run(tx: Tx, org_id: str, run_id: str, *, lock: bool = False) -> FlowRun | None:
    row = tx.run(_LOCK_RUN if lock else _GET_RUN, {"org_id": org_id, "id": run_id}).first()
    return None if row is None else _run(row)


_ACTIVE_RUN = Query(sa.select(_runs).where(_runs.c.active_key == param("key")).with_for_update())


def lock_active_run(tx: Tx, flow_id: str, chatroom_id: str) -> FlowRun | None:
    row = tx.run(_ACTIVE_RUN, {"key": f"{flow_id}:{chatroom_id}"}).first()
    return None if row is None else _run(row)


_WAITING_IN = InQuery(
    lambda among: (
        sa.select(_runs)
        .where(
            among(_runs.c.wait_chatroom_id),
            _runs.c.status == RunStatus.WAITING.value,
            _runs.c.wait_kind == "reply",
        )
        .order_by(_runs.c.id)
        .with_for_update()
    )
)


def lock_waiting_for_reply(tx: Tx, org_id: str, chatroom_ids: list[str]) -> list[FlowRun]:
    """The organization's runs waiting for a reply in these chatrooms, locked (a timer firing
    meanwhile waits)."""
    rows = _WAITING_IN.run(tx.conn, chatroom_ids, {"org_id": org_id}).all()
    return [_run(r) for r in rows]


_ANY_WAITING_IN = InQuery(
    lambda among: (
        sa.select(_runs.c.id)
        .where(among(_runs.c.wait_chatroom_id), _runs.c.status == RunStatus.WAITING.value)
        .limit(1)
    )
)


def any_waiting_in(tx: Tx, chatroom_ids: list[str]) -> bool:
    return _ANY_WAITING_IN.run(tx.conn, chatroom_ids).first() is not None


_ANY_ACTIVE_ABOUT = InQuery(
    lambda among: sa.select(_runs.c.id).where(among(_runs.c.chatroom_id), _active()).limit(1)
)


def any_active_about(tx: Tx, chatroom_ids: list[str]) -> bool:
    return _ANY_ACTIVE_ABOUT.run(tx.conn, chatroom_ids).first() is not None


_ACTIVE_IN = InQuery(
    lambda among: (
        sa.select(_runs)
        .where(among(_runs.c.chatroom_id), _active())
        .order_by(_runs.c.id)
        .with_for_update()
    )
)


def lock_active_in(tx: Tx, chatroom_ids: list[str]) -> list[FlowRun]:
    """Active runs about these chatrooms, locked."""
    return [_run(r) for r in _ACTIVE_IN.run(tx.conn, chatroom_ids).all()]


_DUE_TIMERS = Query(
    sa.select(_runs)
    .where(_runs.c.wake_at <= param("now"), _runs.c.status == RunStatus.WAITING.value)
    .order_by(_runs.c.wake_at)
    .limit(param("limit"))
    .with_for_update(skip_locked=True)
)
_ANY_DUE_TIMER = Query(
    sa.select(_runs.c.id)
    .where(_runs.c.wake_at <= param("now"), _runs.c.status == RunStatus.WAITING.value)
    .limit(1)
)


def any_due(tx: Tx) -> bool:
    """Whether a timer or a schedule is due: a read, so idle ticks cost no write."""
    params = {"now": tx.now}
    return (
        tx.run(_ANY_DUE_TIMER, params).first() is not None
        or tx.run(_ANY_DUE_SCHEDULE, params).first() is not None
    )


def claim_due_timers(tx: Tx, *, limit: int) -> list[FlowRun]:
    """Waiting runs whose timer is due, locked: another process's claim skips them, so each
    timer fires once."""
    return [_run(r) for r in tx.run(_DUE_TIMERS, {"now": tx.now, "limit": limit}).all()]


def list_runs(
    tx: Tx,
    org_id: str,
    *,
    flow_id: str | None,
    chatroom_id: str | None,
    status: RunStatus | None,
    before: str | None,
    limit: int,
) -> list[FlowRun]:
    """Newest first."""
    query = sa.select(_runs).where(_runs.c.org_id == org_id)
    if flow_id is not None:
        query = query.where(_runs.c.flow_id == flow_id)
    if chatroom_id is not None:
        query = query.where(_runs.c.chatroom_id == chatroom_id)
    if status is not None:
        query = query.where(_runs.c.status == status.value)
    if before is not None:
        query = query.where(_runs.c.id < before)
    rows = tx.execute(query.order_by(_runs.c.id.desc()).limit(limit + 1)).all()
    return [_run(r) for r in rows]


def prune_runs(tx: Tx, *, ended_before: int, limit: int = 1000) -> int:
    """Delete finished runs (and their steps) that ended before the cutoff; how many."""
    ids = [
        r.id
        for r in tx.execute(
            sa.select(_runs.c.id)
            .where(_runs.c.ended_at < ended_before)
            .order_by(_runs.c.ended_at)
            .limit(limit)
        )
    ]
    if not ids:
        return 0
    tx.execute(_steps.delete().where(_steps.c.run_id.in_(ids)))
    tx.execute(_runs.delete().where(_runs.c.id.in_(ids)))
    return len(ids)


# -- steps --------------------------------------------------------------------------------------

_INSERT_STEP = insert_row(_steps)


def insert_steps(tx: Tx, steps: list[RunStep]) -> None:
    if not steps:
        return
    tx.run_many(
        _INSERT_STEP,
        [
            {
                "run_id": s.run_id,
                "number": s.number,
                "node_id": s.node_id,
                "action": s.action,
                "params": json.dumps(s.params),
                "outcome": s.outcome,
                "output": json.dumps(s.output),
                "error": None if s.error is None else json.dumps(s.error),
                "started_at": s.started_at,
                "ended_at": s.ended_at,
            }
            for s in steps
        ],
    )


def list_steps(tx: Tx, run_id: str) -> list[RunStep]:
    rows = tx.execute(
        sa.select(_steps).where(_steps.c.run_id == run_id).order_by(_steps.c.number)
    ).all()
    return [
        RunStep(
            run_id=r.run_id,
            number=r.number,
            node_id=r.node_id,
            action=r.action,
            params=json.loads(r.params),
            outcome=r.outcome,
            output=json.loads(r.output),
            error=json.loads(r.error),
            started_at=r.started_at,
            ended_at=r.ended_at,
        )
        for r in rows
    ]
