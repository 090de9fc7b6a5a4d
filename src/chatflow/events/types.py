"""Every event type chatflow records (SPEC "Events, webhooks, realtime")."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    CONTACT_CREATED = "contact.created"
    CONTACT_UPDATED = "contact.updated"
    CHATROOM_CREATED = "chatroom.created"
    CHATROOM_BUMPED = "chatroom.bumped"
    CHATROOM_ASSIGNED = "chatroom.assigned"
    CHATROOM_UNASSIGNED = "chatroom.unassigned"
    CHATROOM_CLOSED = "chatroom.closed"
    CHATROOM_REOPENED = "chatroom.reopened"
    MESSAGE_CREATED = "message.created"
    MESSAGE_STATUS_UPDATED = "message.status_updated"
    TEMPLATE_RESPONSE = "template.response"
    TEMPLATE_STATUS_UPDATED = "template.status_updated"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"
    FLOW_RUN_WAITING = "flow_run.waiting"
    FLOW_RUN_COMPLETED = "flow_run.completed"
    FLOW_RUN_FAILED = "flow_run.failed"
