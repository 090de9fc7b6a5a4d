"""Message templates, named by name and language within an organization."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatflow.domain.models import OrganizationId, Template, TemplateId, TemplateStatus
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import templates


def _template(row: Any) -> Template:
    return Template(
        id=TemplateId(row.id),
        org_id=OrganizationId(row.org_id),
        name=row.name,
        language=row.language,
        category=row.category,
        components=json.loads(row.components),
        status=TemplateStatus(row.status),
        rejection_reason=row.rejection_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        external_id=row.external_id,
    )


def insert_template(tx: Tx, template: Template) -> None:
    tx.execute(
        templates.insert().values(
            id=template.id,
            org_id=template.org_id,
            name=template.name,
            language=template.language,
            category=template.category,
            components=json.dumps(template.components),
            status=template.status.value,
            rejection_reason=template.rejection_reason,
            external_id=template.external_id,
            created_at=template.created_at,
            updated_at=template.updated_at,
        )
    )


def update_template(tx: Tx, template: Template) -> None:
    tx.execute(
        templates.update()
        .where(templates.c.id == template.id)
        .values(
            category=template.category,
            components=json.dumps(template.components),
            status=template.status.value,
            rejection_reason=template.rejection_reason,
            external_id=template.external_id,
            updated_at=template.updated_at,
        )
    )


def get_template(tx: Tx, org_id: str, template_id: str) -> Template | None:
    row = tx.execute(
        sa.select(templates).where(templates.c.org_id == org_id, templates.c.id == template_id)
    ).first()
    return None if row is None else _template(row)


_BY_NAME = Query(
    sa.select(templates).where(
        templates.c.org_id == param("org_id"),
        templates.c.name == param("name"),
        templates.c.language == param("language"),
    )
)


def get_template_by_name(tx: Tx, org_id: str, name: str, language: str) -> Template | None:
    row = tx.run(_BY_NAME, {"org_id": org_id, "name": name, "language": language}).first()
    return None if row is None else _template(row)


def list_templates(
    tx: Tx, org_id: str, *, after: str | None, limit: int, status: str | None, name: str | None
) -> list[Template]:
    query = sa.select(templates).where(templates.c.org_id == org_id)
    if status is not None:
        query = query.where(templates.c.status == status)
    if name is not None:
        query = query.where(templates.c.name == name)
    if after is not None:
        query = query.where(templates.c.id > after)
    return [_template(r) for r in tx.execute(query.order_by(templates.c.id).limit(limit + 1))]


def get_template_by_external_id(tx: Tx, org_id: str, external_id: str) -> Template | None:
    row = tx.execute(
        sa.select(templates).where(
            templates.c.org_id == org_id, templates.c.external_id == external_id
        )
    ).first()
    return None if row is None else _template(row)
