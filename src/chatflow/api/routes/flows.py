"""Flows: the catalog, drafts, validation, test runs, deploys, runs and incoming webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Cursor, Db, Limit
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import JSON, json_response, page_response, write
from chatflow.clock import to_millis
from chatflow.domain.access import Actor
from chatflow.domain.errors import ValidationError
from chatflow.domain.flows import document as flow_document
from chatflow.domain.flows.catalog import LIMITS, catalog_view
from chatflow.domain.flows.records import RunStatus
from chatflow.flows import operations, testing
from chatflow.services import flows
from chatflow.storage.database import Database, Tx
from chatflow.views import (
    FlowRead,
    FlowVersionRead,
    RunDetail,
    RunRead,
    ValidationRead,
    flow_version_view,
    flow_view,
    run_detail_view,
    run_view,
    validation_view,
)

router = APIRouter(route_class=CompiledRoute, tags=["flows"], responses=PROBLEM_RESPONSES)
FLOWS = "/v1/flows"
TEST_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
RunStatusQuery = Annotated[
    Literal["running", "waiting", "completed", "failed", "cancelled", "skipped"] | None, Query()
]


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type=JSON)


@router.get("/v1/flow-actions")
async def flow_actions() -> Response:
    """The action catalog: every action and trigger with its parameters (type, required,
    description, example), outcomes and outputs, and the limits. The validator and the builder
    read only this."""
    return _json(catalog_view())


@router.get("/v1/flow-schema")
async def flow_schema() -> Response:
    """The JSON Schema (2020-12) of a flow document, made from the catalog."""
    return _json(flow_document.document_schema())


@router.post(FLOWS, status_code=201, response_model=FlowRead)
async def create_flow(
    body: schemas.FlowCreate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """A new flow with a draft. Drafts may be incomplete; deploying requires a valid one."""
    return await write(
        request,
        db,
        actor,
        lambda tx: flows.do_create_flow(tx, actor, name=body.name, document=body.document),
        lambda flow: (201, flow_view(flow)),
    )


@router.get(FLOWS)
async def list_flows(
    actor: CurrentActor, db: Db, cursor: Cursor = None, limit: Limit = 20
) -> Response:
    page = await db.read(lambda tx: flows.list_flows(tx, actor, cursor=cursor, limit=limit))
    return page_response(page, flow_view)


@router.get(FLOWS + "/{flow_id}", response_model=FlowRead)
async def get_flow(flow_id: str, actor: CurrentActor, db: Db) -> Response:
    return json_response(flow_view(await db.read(lambda tx: flows.access_flow(tx, actor, flow_id))))


@router.put(FLOWS + "/{flow_id}", response_model=FlowRead)
async def save_draft(
    flow_id: str, body: schemas.FlowUpdate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Save the draft. `revision` is the one the change was made from: if someone saved since,
    the answer is 409 `flow_revision_conflict` and nothing is overwritten."""
    return await write(
        request,
        db,
        actor,
        lambda tx: flows.do_save_draft(
            tx, actor, flow_id, revision=body.revision, document=body.document, name=body.name
        ),
        lambda flow: (200, flow_view(flow)),
    )


@router.post(FLOWS + "/{flow_id}/validate", response_model=ValidationRead)
async def validate_flow(
    flow_id: str, actor: CurrentActor, db: Db, body: schemas.FlowValidate | None = None
) -> Response:
    """Every problem at once, each with a JSON pointer, the node and the parameter."""
    flow = await db.read(lambda tx: flows.access_flow(tx, actor, flow_id))
    document = flow.draft if body is None or body.document is None else body.document
    return json_response(validation_view(flows.validate_document(document)))


@router.post(FLOWS + "/{flow_id}/test-runs")
async def test_run(
    flow_id: str, body: schemas.TestRunRequest, actor: CurrentActor, db: Db
) -> Response:
    """Run the draft (or the document given) against a simulated chatroom: scripted replies and
    HTTP answers, a frozen clock, seeded ids. Nothing is sent and nothing is stored; the answer
    is the transcript, the steps and the side effects the run would have had. The same input
    gives the same output, byte for byte."""
    now = to_millis(body.now or TEST_EPOCH)

    def run(tx: Tx) -> dict[str, Any]:
        flow = flows.access_flow(tx, actor, flow_id)
        raw = flow.draft if body.document is None else body.document
        checked = flows.validate_document(raw)
        flow_document.raise_if_any(checked.errors, "The document")
        trigger = body.trigger.model_dump(exclude_none=True)
        flow_document.check_depth(trigger, "/trigger")
        script = testing.TestScript(
            trigger,
            [r.model_dump(exclude_none=True) for r in body.replies],
            [a.model_dump() for a in body.http],
            now,
            body.seed,
        )
        return testing.run_test(tx, actor, flow.id, flow_document.parse(raw), script)

    return _json(await db.read(run))


@router.post(FLOWS + "/{flow_id}/deploy", status_code=201, response_model=FlowVersionRead)
async def deploy_flow(
    flow_id: str,
    request: Request,
    actor: CurrentActor,
    db: Db,
    body: schemas.FlowDeploy | None = None,
) -> Response:
    """Deploy the draft as a new immutable version (the draft must be valid). Its trigger starts
    runs from now on; runs already going stay on the version they started on."""
    deploy = body or schemas.FlowDeploy()
    return await write(
        request,
        db,
        actor,
        lambda tx: flows.do_deploy(
            tx, actor, flow_id, message=deploy.message, revision=deploy.revision
        ),
        lambda version: (201, flow_version_view(version)),
    )


@router.get(FLOWS + "/{flow_id}/versions")
async def list_versions(
    flow_id: str, actor: CurrentActor, db: Db, cursor: Cursor = None, limit: Limit = 20
) -> Response:
    """Newest first."""
    page = await db.read(
        lambda tx: flows.list_versions(tx, actor, flow_id, cursor=cursor, limit=limit)
    )
    return page_response(page, flow_version_view)


@router.post(FLOWS + "/{flow_id}/rollback", response_model=FlowVersionRead)
async def rollback_flow(
    flow_id: str, body: schemas.FlowRollback, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Deploy an earlier version again."""
    return await write(
        request,
        db,
        actor,
        lambda tx: flows.do_rollback(tx, actor, flow_id, number=body.version),
        lambda version: (200, flow_version_view(version)),
    )


@router.post(FLOWS + "/{flow_id}/undeploy", response_model=FlowRead)
async def undeploy_flow(flow_id: str, request: Request, actor: CurrentActor, db: Db) -> Response:
    """Stop starting runs. Runs under way go on to their end (cancel them one by one)."""
    return await write(
        request,
        db,
        actor,
        lambda tx: flows.do_undeploy(tx, actor, flow_id),
        lambda flow: (200, flow_view(flow)),
    )


@router.post(FLOWS + "/{flow_id}/runs", status_code=201, response_model=RunRead)
async def start_run(
    flow_id: str, body: schemas.RunStart, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Start a run of a deployed flow whose trigger is `manual`, with its inputs."""
    return await write(
        request,
        db,
        actor,
        lambda tx: operations.do_start_manual(
            tx, actor, flow_id, inputs=body.inputs, chatroom_id=body.chatroom_id
        ),
        lambda run: (201, run_view(run)),
    )


@router.get(FLOWS + "/{flow_id}/runs")
async def list_flow_runs(
    flow_id: str,
    actor: CurrentActor,
    db: Db,
    status: RunStatusQuery = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Response:
    """The flow's runs, newest first."""
    return await _runs_page(db, actor, flow_id, None, status, cursor, limit)


@router.get("/v1/runs")
async def list_runs(
    actor: CurrentActor,
    db: Db,
    chatroom_id: Annotated[str | None, Query(max_length=64)] = None,
    status: RunStatusQuery = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Response:
    """Every flow's runs, newest first; `chatroom_id` narrows to one chatroom."""
    return await _runs_page(db, actor, None, chatroom_id, status, cursor, limit)


async def _runs_page(
    db: Database,
    actor: Actor,
    flow_id: str | None,
    chatroom_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Response:
    page = await db.read(
        lambda tx: flows.list_runs(
            tx,
            actor,
            flow_id=flow_id,
            chatroom_id=chatroom_id,
            status=None if status is None else RunStatus(status),
            cursor=cursor,
            limit=limit,
        )
    )
    return page_response(page, run_view)


@router.get("/v1/runs/{run_id}", response_model=RunDetail)
async def get_run(run_id: str, actor: CurrentActor, db: Db) -> Response:
    """A run and every step it took: parameters after interpolation, outcome, output, error,
    start and end."""
    run, steps = await db.read(lambda tx: flows.run_with_steps(tx, actor, run_id))
    return json_response(run_detail_view(run, steps))


@router.post("/v1/runs/{run_id}/cancel", response_model=RunRead)
async def cancel_run(run_id: str, request: Request, actor: CurrentActor, db: Db) -> Response:
    """End a running or waiting run where it is; a run that has ended answers 409."""
    return await write(
        request,
        db,
        actor,
        lambda tx: operations.do_cancel_run(tx, actor, run_id),
        lambda run: (200, run_view(run)),
    )


@router.post("/hooks/flows/{flow_id}", status_code=202, tags=["flows"])
async def incoming_webhook(flow_id: str, request: Request, db: Db) -> Response:
    """An incoming webhook for a deployed flow with the `incoming_webhook` trigger. Send the
    flow's secret in `X-Chatflow-Secret`; the body (JSON, or text), headers and query become
    `{trigger.body…}`, `{trigger.headers…}` and `{trigger.query…}`."""
    raw = await request.body()
    if len(raw) > LIMITS.max_http_response_bytes:
        raise ValidationError(
            f"The body is larger than {LIMITS.max_http_response_bytes} bytes",
            errors=[{"pointer": "", "message": "too large"}],
        )
    text = raw.decode("utf-8", errors="replace")
    body: Any = text
    if request.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise ValidationError(
                "The body is not valid JSON", errors=[{"pointer": "", "message": str(exc)}]
            ) from exc
    headers = {k.lower(): v for k, v in request.headers.items()}
    run = await db.write(
        lambda tx: operations.do_start_from_webhook(
            tx,
            flow_id,
            secret=request.headers.get(operations.SECRET_HEADER),
            body=body,
            headers=headers,
            query=dict(request.query_params),
        )
    )
    return _json({"run_id": run.id, "status": run.status.value}, 202)
