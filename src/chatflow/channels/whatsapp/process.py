"""Applying a stored WhatsApp notification: customer messages through the one inbound path,
delivery statuses, template verdicts. Runs in the background, one transaction per batch."""

from __future__ import annotations

import logging
from typing import Any

from chatflow.channels.whatsapp.notifications import (
    CustomerMessage,
    Part,
    StatusReport,
    TemplateReview,
    Unhandled,
    read_notification,
)
from chatflow.domain.errors import DomainError
from chatflow.domain.models import Channel, JsonObject, MessageStatus, TemplateStatus
from chatflow.services import contacts, deliveries, inbound
from chatflow.services import templates as template_service
from chatflow.storage import json
from chatflow.storage import messages as message_store
from chatflow.storage import templates as template_store
from chatflow.storage.database import Tx

log = logging.getLogger(__name__)

_VERDICTS = {
    "APPROVED": TemplateStatus.APPROVED,
    "REJECTED": TemplateStatus.REJECTED,
    "DISABLED": TemplateStatus.DISABLED,
    "PAUSED": TemplateStatus.PAUSED,
    "PENDING": TemplateStatus.PENDING,
    "REINSTATED": TemplateStatus.APPROVED,
}


def apply_notification(tx: Tx, channel: Channel, body: bytes) -> JsonObject:
    """Apply every part of one notification; returns what was done and what was not understood."""
    outcome: dict[str, Any] = {"messages": 0, "duplicates": 0, "statuses": 0, "templates": 0}
    unhandled: list[JsonObject] = []
    try:
        payload = json.loads(body.decode())
    except (UnicodeDecodeError, ValueError):
        payload = None
    for part in read_notification(payload):
        problem = _apply(tx, channel, part, outcome)
        if problem is not None:
            unhandled.append({"pointer": problem.pointer, "reason": problem.reason})
    if unhandled:
        outcome["unhandled"] = unhandled
        log.warning(
            "WhatsApp notification for channel %s: parts not applied: %s", channel.id, unhandled
        )
    return outcome


def _apply(tx: Tx, channel: Channel, part: Part, outcome: dict[str, Any]) -> Unhandled | None:
    if isinstance(part, Unhandled):
        return part
    if isinstance(part, TemplateReview):
        return _template_review(tx, channel, part, outcome)
    if part.phone_number_id != channel.config.get("phone_number_id"):
        return Unhandled("", f"for phone number {part.phone_number_id[:32]!r}, not this channel's")
    if isinstance(part, StatusReport):
        applied = deliveries.do_apply_status_report(
            tx,
            channel.org_id,
            part.wamid,
            MessageStatus(part.status),
            part.timestamp_ms,
            part.error,
        )
        outcome["statuses"] += int(applied)
        return None
    return _customer_message(tx, channel, part, outcome)


def _customer_message(
    tx: Tx, channel: Channel, part: CustomerMessage, outcome: dict[str, Any]
) -> Unhandled | None:
    try:
        contact = contacts.customer_by_phone(
            tx, channel.org_id, part.wa_id, first_name=part.profile_name
        )
    except DomainError as exc:
        return Unhandled("", f"sender {part.wa_id[:32]!r}: {exc}")
    context = None
    if part.context_id is not None:
        context = message_store.find_by_channel_message_id(tx, channel.org_id, part.context_id)
    button = None
    if part.button_payload is not None:
        button = inbound.InboundButton(payload=part.button_payload, text=part.button_text or "")
    result = inbound.receive(
        tx,
        inbound.InboundMessage(
            channel=channel,
            contact=contact,
            text=part.text,
            timestamp=part.timestamp_ms,
            channel_message_id=part.wamid,
            button=button,
            reply_to_message_id=None if context is None else context.id,
        ),
    )
    outcome["duplicates" if result.duplicate else "messages"] += 1
    return None


def _template_review(
    tx: Tx, channel: Channel, part: TemplateReview, outcome: dict[str, Any]
) -> Unhandled | None:
    status = _VERDICTS.get(part.event)
    if status is None:
        return Unhandled("", f"template event {part.event[:32]!r}")
    template = None
    if part.template_id is not None:
        template = template_store.get_template_by_external_id(tx, channel.org_id, part.template_id)
    if template is None and part.name is not None and part.language is not None:
        template = template_store.get_template_by_name(tx, channel.org_id, part.name, part.language)
    if template is None:
        return Unhandled("", f"template {part.name!r} ({part.language}) is not known here")
    template_service.do_apply_review(tx, template, status, part.reason)
    outcome["templates"] += 1
    return None
