"""Message templates in WhatsApp's shape, and their approval in sandbox mode."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chatflow.domain.access import Actor, check_administers
from chatflow.domain.errors import (
    DomainError,
    NotFoundError,
    TemplateExistsError,
    TemplateStatusError,
)
from chatflow.domain.models import Template, TemplateId, TemplateStatus
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.domain.templates import parse_template, to_components
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.storage import templates as store
from chatflow.storage.database import Tx
from chatflow.views import template_view


def access_template(tx: Tx, actor: Actor, template_id: str) -> Template:
    template = store.get_template(tx, actor.org_id, template_id)
    if template is None:
        raise NotFoundError(f"No template {template_id}")
    return template


def do_create_template(
    tx: Tx, actor: Actor, *, name: str, language: str, category: str, components: Any
) -> Template:
    """A new template waits for approval (PENDING), as on WhatsApp."""
    check_administers(actor)
    definition = parse_template(name, language, category, components)
    if store.get_template_by_name(tx, actor.org_id, name, language) is not None:
        raise TemplateExistsError(f"A template {name!r} in {language} already exists")
    template = Template(
        id=TemplateId(new_id("tpl")),
        org_id=actor.org_id,
        name=name,
        language=language,
        category=category,
        components=to_components(definition),
        status=TemplateStatus.PENDING,
        rejection_reason=None,
        created_at=tx.now,
        updated_at=tx.now,
    )
    store.insert_template(tx, template)
    return template


def do_update_template(
    tx: Tx, actor: Actor, template_id: str, *, category: str | None, components: Any | None
) -> Template:
    """Editing a template sends it back for approval, as WhatsApp does."""
    check_administers(actor)
    template = access_template(tx, actor, template_id)
    new_category = category if category is not None else template.category
    new_components = components if components is not None else template.components
    definition = parse_template(template.name, template.language, new_category, new_components)
    updated = replace(
        template,
        category=new_category,
        components=to_components(definition),
        status=TemplateStatus.PENDING,
        rejection_reason=None,
        updated_at=tx.now,
    )
    store.update_template(tx, updated)
    _record_status_change(tx, template, updated)
    return updated


def do_review_template(
    tx: Tx, actor: Actor, template_id: str, *, approve: bool, reason: str | None = None
) -> Template:
    """Sandbox approval: PENDING becomes APPROVED or REJECTED."""
    check_administers(actor)
    template = access_template(tx, actor, template_id)
    if template.status is not TemplateStatus.PENDING:
        raise TemplateStatusError(
            f"Template {template.id} is {template.status.value}; only PENDING templates are "
            "reviewed",
            template_status=template.status.value,
        )
    updated = replace(
        template,
        status=TemplateStatus.APPROVED if approve else TemplateStatus.REJECTED,
        rejection_reason=None if approve else (reason or "Rejected"),
        updated_at=tx.now,
    )
    store.update_template(tx, updated)
    _record_status_change(tx, template, updated)
    return updated


def do_apply_review(
    tx: Tx, template: Template, status: TemplateStatus, reason: str | None
) -> Template:
    """The provider's verdict on a template (WhatsApp's template status update, or a sync)."""
    updated = replace(
        template,
        status=status,
        rejection_reason=reason if status is TemplateStatus.REJECTED else None,
        updated_at=tx.now,
    )
    if updated != template:
        store.update_template(tx, updated)
        _record_status_change(tx, template, updated)
    return updated


def _record_status_change(tx: Tx, before: Template, after: Template) -> None:
    if before.status is after.status:
        return
    outbox.record(
        tx,
        after.org_id,
        EventType.TEMPLATE_STATUS_UPDATED,
        {"template": template_view(after), "previous_status": before.status.value},
    )


def list_templates(
    tx: Tx,
    actor: Actor,
    *,
    cursor: str | None,
    limit: int,
    status: TemplateStatus | None,
    name: str | None,
) -> Page[Template]:
    after = str(decode_cursor("templates", cursor, [str])[0]) if cursor else None
    rows = store.list_templates(
        tx,
        actor.org_id,
        after=after,
        limit=limit,
        status=None if status is None else status.value,
        name=name,
    )
    return page_of(rows, limit, "templates", lambda t: [t.id])


@dataclass(frozen=True, slots=True)
class RemoteTemplate:
    """A template as the provider's account lists it."""

    external_id: str
    name: str
    language: str
    category: str
    components: Any
    status: TemplateStatus
    reason: str | None


@dataclass(frozen=True, slots=True)
class SyncResult:
    created: list[Template]
    updated: list[Template]
    unchanged: int
    skipped: list[dict[str, Any]]


def do_sync_templates(tx: Tx, actor: Actor, remote: list[RemoteTemplate]) -> SyncResult:
    """Make the organization's templates match the provider account's: new ones are added with
    their status there, known ones take its status, components and id. Templates chatflow
    cannot send (a shape it does not support) are skipped and reported."""
    check_administers(actor)
    created: list[Template] = []
    updated: list[Template] = []
    skipped: list[dict[str, Any]] = []
    unchanged = 0
    for item in remote:
        try:
            definition = parse_template(item.name, item.language, item.category, item.components)
        except DomainError as exc:
            skipped.append({"name": item.name, "language": item.language, "reason": exc.detail})
            continue
        components = to_components(definition)
        reason = item.reason if item.status is TemplateStatus.REJECTED else None
        known = store.get_template_by_name(tx, actor.org_id, item.name, item.language)
        if known is None:
            template = Template(
                id=TemplateId(new_id("tpl")),
                org_id=actor.org_id,
                name=item.name,
                language=item.language,
                category=item.category,
                components=components,
                status=item.status,
                rejection_reason=reason,
                created_at=tx.now,
                updated_at=tx.now,
                external_id=item.external_id,
            )
            store.insert_template(tx, template)
            outbox.record(
                tx,
                actor.org_id,
                EventType.TEMPLATE_STATUS_UPDATED,
                {"template": template_view(template), "previous_status": None},
            )
            created.append(template)
            continue
        synced = replace(
            known,
            category=item.category,
            components=components,
            status=item.status,
            rejection_reason=reason,
            external_id=item.external_id,
        )
        if synced == known:
            unchanged += 1
            continue
        synced = replace(synced, updated_at=tx.now)
        store.update_template(tx, synced)
        _record_status_change(tx, known, synced)
        updated.append(synced)
    return SyncResult(created, updated, unchanged, skipped)


def do_record_submission(
    tx: Tx, actor: Actor, template_id: str, *, external_id: str, status: TemplateStatus
) -> Template:
    """The provider accepted the template for review under `external_id`."""
    template = access_template(tx, actor, template_id)
    submitted = replace(template, external_id=external_id, status=status, updated_at=tx.now)
    store.update_template(tx, submitted)
    _record_status_change(tx, template, submitted)
    return submitted
