"""Flows as documents: drafts, validation, deploys and rollbacks, and reading runs.

Edit a draft (each save names the revision it was made from: a stale one is a 409, so two
builders never overwrite each other silently) → validate → deploy an immutable version with a
message. Triggers start runs of the deployed version, and each run stays on the version it
started on; a rollback deploys an earlier version again.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

from chatflow.domain.access import Actor, check_administers
from chatflow.domain.errors import (
    FlowRevisionConflictError,
    NotFoundError,
    ValidationError,
)
from chatflow.domain.flows import document as flow_document
from chatflow.domain.flows.document import FlowDocument, Problem, Validation, next_fire_at
from chatflow.domain.flows.records import Flow, FlowRun, FlowVersion, RunStatus, RunStep
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.ids import new_id
from chatflow.storage import flows as store
from chatflow.storage import json
from chatflow.storage.database import Tx

EMPTY_DOCUMENT: dict[str, Any] = {
    "trigger": {"type": "manual", "params": {}},
    "start": None,
    "nodes": [],
    "edges": [],
}
MAX_NAME_LENGTH = 200


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"A flow's name is 1–{MAX_NAME_LENGTH} characters",
            errors=[{"pointer": "/name", "message": "1–200 characters"}],
        )


def _readable(raw: Any) -> FlowDocument:
    """A draft may be incomplete, but it must be a document of the right shape and size."""
    flow_document.check_depth(raw, "")
    problems = flow_document.size_problems(len(json.dumps(raw)))
    flow_document.raise_if_any(problems, "The document")
    return flow_document.parse(raw)


def do_create_flow(tx: Tx, actor: Actor, *, name: str, document: Any | None) -> Flow:
    check_administers(actor)
    _check_name(name)
    parsed = _readable(EMPTY_DOCUMENT if document is None else document)
    flow = Flow(
        id=new_id("flow"),
        org_id=actor.org_id,
        name=name,
        draft=flow_document.dump(parsed),
        revision=1,
        version_id=None,
        trigger_type=None,
        webhook_secret=secrets.token_urlsafe(32),
        next_fire_at=None,
        created_at=tx.now,
        updated_at=tx.now,
    )
    store.insert_flow(tx, flow)
    return flow


def access_flow(tx: Tx, actor: Actor, flow_id: str, *, lock: bool = False) -> Flow:
    check_administers(actor)
    flow = store.get_flow(tx, actor.org_id, flow_id, lock=lock)
    if flow is None:
        raise NotFoundError(f"No flow {flow_id}")
    return flow


def list_flows(tx: Tx, actor: Actor, *, cursor: str | None, limit: int) -> Page[Flow]:
    check_administers(actor)
    after = str(decode_cursor("flows", cursor, [str])[0]) if cursor else None
    rows = store.list_flows(tx, actor.org_id, after=after, limit=limit)
    return page_of(rows, limit, "flows", lambda f: [f.id])


def do_save_draft(
    tx: Tx,
    actor: Actor,
    flow_id: str,
    *,
    revision: int,
    document: Any,
    name: str | None = None,
) -> Flow:
    flow = access_flow(tx, actor, flow_id, lock=True)
    if revision != flow.revision:
        raise FlowRevisionConflictError(
            f"The draft is at revision {flow.revision}, not {revision}: load it again, and "
            "save your change on top of it",
            revision=flow.revision,
        )
    if name is not None:
        _check_name(name)
    parsed = _readable(document)
    saved = replace(
        flow,
        name=flow.name if name is None else name,
        draft=flow_document.dump(parsed),
        revision=flow.revision + 1,
        updated_at=tx.now,
    )
    store.update_flow(
        tx,
        flow.id,
        {
            "name": saved.name,
            "draft": saved.draft,
            "revision": saved.revision,
            "updated_at": tx.now,
        },
    )
    return saved


def validate_document(raw: Any) -> Validation:
    """Every problem of the document, each with its pointer, node and parameter."""
    flow_document.check_depth(raw, "")
    problems = flow_document.size_problems(len(json.dumps(raw)))
    document, more = flow_document.check(raw)
    problems += more
    warnings = []
    if document is not None:
        unreachable = set(flow_document.unreachable(document))
        warnings = [
            Problem(
                f"/nodes/{index}",
                "unreachable_node",
                f"No path from start reaches node {node.id!r}",
                node=node.id,
            )
            for index, node in enumerate(document.nodes)
            if node.id in unreachable
        ]
    return Validation(not problems, problems, warnings)


def do_deploy(
    tx: Tx, actor: Actor, flow_id: str, *, message: str, revision: int | None = None
) -> FlowVersion:
    """Deploy the draft as a new immutable version; its trigger starts runs from now on."""
    flow = access_flow(tx, actor, flow_id, lock=True)
    if revision is not None and revision != flow.revision:
        raise FlowRevisionConflictError(
            f"The draft is at revision {flow.revision}, not {revision}",
            revision=flow.revision,
        )
    if len(message) > 500:
        raise ValidationError(
            "A deploy message is at most 500 characters",
            errors=[{"pointer": "/message", "message": "at most 500 characters"}],
        )
    checked = validate_document(flow.draft)
    flow_document.raise_if_any(checked.errors, "The draft")
    version = FlowVersion(
        id=new_id("flv"),
        flow_id=flow.id,
        org_id=flow.org_id,
        number=store.latest_version_number(tx, flow.id) + 1,
        document=flow.draft,
        message=message,
        created_by=f"{actor.kind.value}:{actor.id}",
        created_at=tx.now,
    )
    store.insert_version(tx, version)
    _activate(tx, flow, version)
    return version


def do_rollback(tx: Tx, actor: Actor, flow_id: str, *, number: int) -> FlowVersion:
    """Deploy an earlier version again. Runs of other versions go on on their own version."""
    flow = access_flow(tx, actor, flow_id, lock=True)
    version = store.get_version_by_number(tx, flow.id, number)
    if version is None:
        raise NotFoundError(f"Flow {flow_id} has no version {number}")
    _activate(tx, flow, version)
    return version


def do_undeploy(tx: Tx, actor: Actor, flow_id: str) -> Flow:
    """Stop starting runs; runs under way go on to their end."""
    flow = access_flow(tx, actor, flow_id, lock=True)
    values = {"version_id": None, "trigger_type": None, "next_fire_at": None, "updated_at": tx.now}
    store.update_flow(tx, flow.id, values)
    return replace(flow, version_id=None, trigger_type=None, next_fire_at=None, updated_at=tx.now)


def _activate(tx: Tx, flow: Flow, version: FlowVersion) -> None:
    document = flow_document.parse(version.document)
    trigger = document.trigger
    fire_at = next_fire_at(trigger, tx.now) if trigger.type == "schedule" else None
    store.update_flow(
        tx,
        flow.id,
        {
            "version_id": version.id,
            "trigger_type": trigger.type,
            "next_fire_at": fire_at,
            "updated_at": tx.now,
        },
    )


def list_versions(
    tx: Tx, actor: Actor, flow_id: str, *, cursor: str | None, limit: int
) -> Page[FlowVersion]:
    flow = access_flow(tx, actor, flow_id)
    before = int(decode_cursor("flow_versions", cursor, [int])[0]) if cursor else None
    rows = store.list_versions(tx, flow.id, before=before, limit=limit)
    return page_of(rows, limit, "flow_versions", lambda v: [v.number])


def list_runs(
    tx: Tx,
    actor: Actor,
    *,
    flow_id: str | None,
    chatroom_id: str | None,
    status: RunStatus | None,
    cursor: str | None,
    limit: int,
) -> Page[FlowRun]:
    """Newest first."""
    check_administers(actor)
    if flow_id is not None:
        access_flow(tx, actor, flow_id)
    before = str(decode_cursor("runs", cursor, [str])[0]) if cursor else None
    rows = store.list_runs(
        tx,
        actor.org_id,
        flow_id=flow_id,
        chatroom_id=chatroom_id,
        status=status,
        before=before,
        limit=limit,
    )
    return page_of(rows, limit, "runs", lambda r: [r.id])


def access_run(tx: Tx, actor: Actor, run_id: str, *, lock: bool = False) -> FlowRun:
    check_administers(actor)
    run = store.get_run(tx, actor.org_id, run_id, lock=lock)
    if run is None:
        raise NotFoundError(f"No run {run_id}")
    return run


def run_with_steps(tx: Tx, actor: Actor, run_id: str) -> tuple[FlowRun, list[RunStep]]:
    run = access_run(tx, actor, run_id)
    return run, store.list_steps(tx, run.id)
