"""Message templates and their review in sandbox mode."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Cursor, Db, Limit
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response, page_response, write
from chatflow.domain.models import TemplateStatus
from chatflow.services import templates
from chatflow.views import TemplateRead, template_view

router = APIRouter(
    route_class=CompiledRoute,
    prefix="/v1/templates",
    tags=["templates"],
    responses=PROBLEM_RESPONSES,
)


@router.post("", status_code=201, response_model=TemplateRead)
async def create_template(
    body: schemas.TemplateCreate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Define a template in WhatsApp's shape; it starts PENDING. Every rule broken is listed."""
    return await write(
        request,
        db,
        actor,
        lambda tx: templates.do_create_template(
            tx,
            actor,
            name=body.name,
            language=body.language,
            category=body.category,
            components=body.components,
        ),
        lambda template: (201, template_view(template)),
    )


@router.get("")
async def list_templates(
    actor: CurrentActor,
    db: Db,
    status: Annotated[
        Literal["PENDING", "APPROVED", "REJECTED", "PAUSED", "DISABLED"] | None, Query()
    ] = None,
    name: Annotated[str | None, Query(max_length=512)] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Response:
    page = await db.read(
        lambda tx: templates.list_templates(
            tx,
            actor,
            cursor=cursor,
            limit=limit,
            status=None if status is None else TemplateStatus(status),
            name=name,
        )
    )
    return page_response(page, template_view)


@router.get("/{template_id}", response_model=TemplateRead)
async def get_template(template_id: str, actor: CurrentActor, db: Db) -> Response:
    return json_response(
        template_view(await db.read(lambda tx: templates.access_template(tx, actor, template_id)))
    )


@router.patch("/{template_id}", response_model=TemplateRead)
async def update_template(
    template_id: str, body: schemas.TemplateUpdate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Edit the category or components; the template goes back to PENDING, as on WhatsApp."""
    return await write(
        request,
        db,
        actor,
        lambda tx: templates.do_update_template(
            tx, actor, template_id, category=body.category, components=body.components
        ),
        lambda template: (200, template_view(template)),
    )


@router.post("/{template_id}/approve", response_model=TemplateRead)
async def approve_template(
    template_id: str, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Sandbox mode: approve a PENDING template (on WhatsApp, Meta decides)."""
    return await write(
        request,
        db,
        actor,
        lambda tx: templates.do_review_template(tx, actor, template_id, approve=True),
        lambda template: (200, template_view(template)),
    )


@router.post("/{template_id}/reject", response_model=TemplateRead)
async def reject_template(
    template_id: str,
    request: Request,
    actor: CurrentActor,
    db: Db,
    body: schemas.TemplateReject | None = None,
) -> Response:
    """Sandbox mode: reject a PENDING template, with a reason."""
    reason = None if body is None else body.reason
    return await write(
        request,
        db,
        actor,
        lambda tx: templates.do_review_template(
            tx, actor, template_id, approve=False, reason=reason
        ),
        lambda template: (200, template_view(template)),
    )
