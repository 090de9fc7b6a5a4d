"""How each entity looks from outside: the bodies of API responses and of event payloads.

One representation per entity, so a webhook consumer and an API client read the same shape. A
view is a plain dict of JSON values, typed by a `TypedDict` whose fields (with their descriptions
and examples) are also the OpenAPI schema. Building a dict costs a tenth of building and
validating a pydantic model, and the types are checked where the view is built, by mypy.
Enumerated fields are typed by the domain's `StrEnum`s, so the schemas name them, and hold
their values as plain strings (`_wire`): pydantic writes a plain string in half the time of an
enum member. A view shares the record's dicts and lists (a contact's custom attributes, a
channel's config): views are read, never changed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict

from chatflow.clock import iso
from chatflow.domain.flows.document import Validation
from chatflow.domain.flows.records import Flow, FlowRun, FlowVersion, RunStatus, RunStep
from chatflow.domain.models import (
    Agent,
    ApiKey,
    Channel,
    ChannelType,
    Chatroom,
    ChatroomListItem,
    ChatroomStatus,
    Contact,
    Direction,
    DisabledReason,
    Event,
    Message,
    MessageKind,
    MessageStatus,
    Organization,
    Participant,
    Role,
    SenderType,
    Template,
    TemplateStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


def _iso(millis: int | None) -> str | None:
    return None if millis is None else iso(millis)


def _wire(member: StrEnum) -> Any:
    """The member's value, for a field typed by its enumeration."""
    return member.value


def _example(value: object) -> Any:
    return Field(examples=[value])


def _about(text: str) -> Any:
    return Field(description=text)


class OrganizationRead(TypedDict):
    id: Annotated[str, _example("org_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    name: str
    idle_close_seconds: Annotated[
        int | None,
        _about("Open chatrooms with no activity for this long close by themselves; null: never."),
    ]
    created_at: str


def organization_view(org: Organization) -> OrganizationRead:
    return {
        "id": org.id,
        "name": org.name,
        "idle_close_seconds": org.idle_close_seconds,
        "created_at": iso(org.created_at),
    }


class AgentRead(TypedDict):
    id: Annotated[str, _example("ag_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    email: str
    name: str
    role: Role
    active: bool
    created_at: str


def agent_view(agent: Agent) -> AgentRead:
    return {
        "id": agent.id,
        "email": agent.email,
        "name": agent.name,
        "role": _wire(agent.role),
        "active": agent.active,
        "created_at": iso(agent.created_at),
    }


class ApiKeyRead(TypedDict):
    id: str
    name: str
    prefix: Annotated[str, _about("The first characters of the key, to recognise it.")]
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


def api_key_view(key: ApiKey) -> ApiKeyRead:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "revoked_at": _iso(key.revoked_at),
    }


class ApiKeyCreated(ApiKeyRead):
    key: Annotated[str, _about("The secret. It is shown this once and stored only as a hash.")]


def api_key_created_view(key: ApiKey, secret: str) -> ApiKeyCreated:
    return {**api_key_view(key), "key": secret}


class ContactRead(TypedDict):
    id: Annotated[str, _example("ct_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    phone: Annotated[str | None, _example("+14155550123")]
    first_name: str | None
    last_name: str | None
    display_name: str
    email: str | None
    external_id: str | None
    custom_attributes: dict[str, Any]
    opted_in: bool
    opted_in_at: str | None
    created_at: str
    updated_at: str


def contact_view(contact: Contact) -> ContactRead:
    return {
        "id": contact.id,
        "phone": contact.phone,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "display_name": contact.display_name,
        "email": contact.email,
        "external_id": contact.external_id,
        "custom_attributes": contact.custom_attributes,
        "opted_in": contact.opted_in,
        "opted_in_at": _iso(contact.opted_in_at),
        "created_at": iso(contact.created_at),
        "updated_at": iso(contact.updated_at),
    }


class ChannelRead(TypedDict):
    id: Annotated[str, _example("ch_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    type: ChannelType
    name: str
    customer_window: Annotated[
        bool, _about("Whether free-form sends need the 24-hour customer-service window (R4).")
    ]
    config: Annotated[dict[str, Any], _about("Settings; secrets are never returned.")]
    created_at: str


def channel_view(channel: Channel) -> ChannelRead:
    return {
        "id": channel.id,
        "type": _wire(channel.type),
        "name": channel.name,
        "customer_window": channel.customer_window,
        "config": channel.config,
        "created_at": iso(channel.created_at),
    }


class ParticipantRead(TypedDict):
    agent_id: str
    joined_at: str
    bump_key: Annotated[int, _about("This agent's order key for the chatroom (R3).")]
    bumped_at: str
    unread_count: int
    last_read_at: str | None


def participant_view(participant: Participant) -> ParticipantRead:
    return {
        "agent_id": participant.agent_id,
        "joined_at": iso(participant.joined_at),
        "bump_key": participant.bump_key,
        "bumped_at": iso(participant.bump_key // 1000),
        "unread_count": participant.unread_count,
        "last_read_at": _iso(participant.last_read_at),
    }


class ChatroomRead(TypedDict):
    id: Annotated[str, _example("cr_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    contact_id: str
    channel_id: str
    status: ChatroomStatus
    participants: list[ParticipantRead]
    pending_agent_ids: Annotated[
        list[str], _about("Agents who join at handover (assign_on_handover, R8).")
    ]
    created_at: str
    closed_at: str | None
    last_activity_at: str
    bump_key: int
    window_expires_at: Annotated[
        str | None,
        _about("When the 24-hour customer-service window closes; null: it is not open."),
    ]
    last_seq: Annotated[int, _about("The sequence number of the chatroom's latest event.")]


def chatroom_view(chatroom: Chatroom) -> ChatroomRead:
    return {
        "id": chatroom.id,
        "contact_id": chatroom.contact_id,
        "channel_id": chatroom.channel_id,
        "status": _wire(chatroom.status),
        "participants": [participant_view(p) for p in chatroom.participants],
        "pending_agent_ids": list(chatroom.pending_agent_ids),
        "created_at": iso(chatroom.created_at),
        "closed_at": _iso(chatroom.closed_at),
        "last_activity_at": iso(chatroom.last_activity_at),
        "bump_key": chatroom.bump_key,
        "window_expires_at": _iso(chatroom.window_expires_at),
        "last_seq": chatroom.event_seq,
    }


class ChatroomCreated(ChatroomRead):
    created: Annotated[
        bool,
        _about(
            "false: the contact already had an open chatroom on this channel, which is "
            "returned unchanged (R2)."
        ),
    ]


def chatroom_created_view(chatroom: Chatroom, created: bool) -> ChatroomCreated:
    return {**chatroom_view(chatroom), "created": created}


class ChatroomListEntry(ChatroomRead):
    """A chatroom in one agent's list, with that agent's own order key and unread count."""

    agent_bump_key: int
    agent_unread_count: int


def chatroom_list_entry_view(item: ChatroomListItem) -> ChatroomListEntry:
    return {
        **chatroom_view(item.chatroom),
        "agent_bump_key": item.bump_key,
        "agent_unread_count": item.unread_count,
    }


class SenderRead(TypedDict):
    type: SenderType
    id: str | None


class ButtonRead(TypedDict):
    index: int
    text: str
    payload: str
    template_message_id: str | None


class FlagsRead(TypedDict):
    relay_response: bool
    bump: bool
    bump_response: bool


class MessageRead(TypedDict):
    id: Annotated[str, _example("msg_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    chatroom_id: str
    direction: Direction
    sender: SenderRead
    kind: MessageKind
    text: str
    template: Annotated[
        dict[str, Any] | None,
        _about(
            "For template messages: name, language, the rendered components and the buttons "
            "with the payloads sent."
        ),
    ]
    button: Annotated[ButtonRead | None, _about("For button replies: the button tapped.")]
    reply_to_message_id: str | None
    flags: FlagsRead
    status: MessageStatus
    channel_message_id: str | None
    channel_timestamp: str | None
    error: dict[str, Any] | None
    created_at: str


def message_view(message: Message) -> MessageRead:
    button = message.button
    flags = message.flags
    return {
        "id": message.id,
        "chatroom_id": message.chatroom_id,
        "direction": _wire(message.direction),
        "sender": {"type": _wire(message.sender_type), "id": message.sender_id},
        "kind": _wire(message.kind),
        "text": message.text,
        "template": message.template,
        "button": None
        if button is None
        else {
            "index": button.index,
            "text": button.text,
            "payload": button.payload,
            "template_message_id": button.template_message_id,
        },
        "reply_to_message_id": message.reply_to_message_id,
        "flags": {
            "relay_response": flags.relay_response,
            "bump": flags.bump,
            "bump_response": flags.bump_response,
        },
        "status": _wire(message.status),
        "channel_message_id": message.channel_message_id,
        "channel_timestamp": _iso(message.channel_timestamp),
        "error": message.error,
        "created_at": iso(message.created_at),
    }


class VisitorSenderRead(TypedDict):
    type: SenderType
    name: Annotated[str | None, _about("The agent's name; null for the customer and the bot.")]


class VisitorTemplateButtonRead(TypedDict):
    index: int
    type: Annotated[str, _example("QUICK_REPLY")]
    text: str
    url: str | None
    phone_number: str | None
    code: str | None


class VisitorTemplateRead(TypedDict):
    header: Annotated[dict[str, Any] | None, _about("`format` and, for TEXT, `text`.")]
    body: str
    footer: str | None
    buttons: Annotated[
        list[VisitorTemplateButtonRead],
        _about("Quick replies are tapped by `index`; their payloads stay on the server."),
    ]


class VisitorButtonRead(TypedDict):
    index: int
    text: str
    template_message_id: str | None


class VisitorMessageRead(TypedDict):
    """A message as the web-chat customer sees it: no agent ids, flags, payloads or errors."""

    id: str
    direction: Annotated[
        Direction, _about("inbound: written by the customer; outbound: by the business.")
    ]
    sender: VisitorSenderRead
    kind: MessageKind
    text: str
    template: VisitorTemplateRead | None
    button: Annotated[VisitorButtonRead | None, _about("For taps: the button tapped.")]
    reply_to_message_id: str | None
    status: MessageStatus
    created_at: str


def visitor_message_view(message: MessageRead, sender_name: str | None) -> VisitorMessageRead:
    """`sender_name`: the name of the agent who sent it, if an agent did."""
    template = message["template"]
    button = message["button"]
    sender_type = message["sender"]["type"]
    return {
        "id": message["id"],
        "direction": message["direction"],
        "sender": {
            "type": sender_type,
            "name": sender_name if sender_type == SenderType.AGENT else None,
        },
        "kind": message["kind"],
        "text": message["text"],
        "template": None
        if template is None
        else {
            "header": template.get("header"),
            "body": str(template.get("body", "")),
            "footer": template.get("footer"),
            "buttons": [
                {
                    "index": b["index"],
                    "type": b["type"],
                    "text": b["text"],
                    "url": b.get("url"),
                    "phone_number": b.get("phone_number"),
                    "code": b.get("code"),
                }
                for b in template.get("buttons", [])
            ],
        },
        "button": None
        if button is None
        else {
            "index": button["index"],
            "text": button["text"],
            "template_message_id": button["template_message_id"],
        },
        "reply_to_message_id": message["reply_to_message_id"],
        "status": message["status"],
        "created_at": message["created_at"],
    }


TemplateCategory = Literal["AUTHENTICATION", "MARKETING", "UTILITY"]


class TemplateRead(TypedDict):
    id: Annotated[str, _example("tpl_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    name: Annotated[str, _example("order_update")]
    language: Annotated[str, _example("en_US")]
    category: TemplateCategory
    components: list[dict[str, Any]]
    status: TemplateStatus
    rejection_reason: str | None
    external_id: Annotated[
        str | None,
        _about("Its id on the WhatsApp Business Account it was submitted to or synced from."),
    ]
    created_at: str
    updated_at: str


def template_view(template: Template) -> TemplateRead:
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        # Checked against the three categories when the template was written.
        "category": cast(TemplateCategory, template.category),
        "components": template.components,
        "status": _wire(template.status),
        "rejection_reason": template.rejection_reason,
        "external_id": template.external_id,
        "created_at": iso(template.created_at),
        "updated_at": iso(template.updated_at),
    }


class EventRead(TypedDict):
    id: Annotated[str, _example("evt_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    type: Annotated[str, _example("message.created")]
    created_at: str
    chatroom_id: str | None
    seq: Annotated[int | None, _about("The event's number within its chatroom, from 1.")]
    position: Annotated[int, _about("The event's place in the organization's log.")]
    data: dict[str, Any]


def event_view(event: Event) -> EventRead:
    return {
        "id": event.id,
        "type": event.type,
        "created_at": iso(event.created_at),
        "chatroom_id": event.chatroom_id,
        "seq": event.seq,
        "position": event.position,
        "data": event.data,
    }


class WebhookEndpointRead(TypedDict):
    id: Annotated[str, _example("whe_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    url: Annotated[str, _example("https://example.com/chatflow/webhooks")]
    description: str
    event_types: Annotated[
        list[str],
        Field(
            description="The event types sent to this endpoint; `*` is every type.",
            examples=[["template.response"]],
        ),
    ]
    enabled: bool
    disabled_reason: Annotated[
        DisabledReason | None,
        _about(
            "`gone`: the receiver answered 410; `failing`: every attempt failed for five days; "
            "`manual`: disabled through the API."
        ),
    ]
    failing_since: Annotated[
        str | None, _about("Since when every attempt has failed; null while deliveries succeed.")
    ]
    previous_secret_expires_at: Annotated[
        str | None, _about("After a rotation, the old secret also signs until this time.")
    ]
    created_at: str
    updated_at: str


def webhook_endpoint_view(endpoint: WebhookEndpoint) -> WebhookEndpointRead:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabled_reason": None
        if endpoint.disabled_reason is None
        else _wire(endpoint.disabled_reason),
        "failing_since": _iso(endpoint.failing_since),
        "previous_secret_expires_at": _iso(endpoint.previous_secret_expires_at),
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: Annotated[
        str,
        Field(
            description="The signing secret (Standard Webhooks, `whsec_…`). Shown this once.",
            examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        ),
    ]


def webhook_endpoint_created_view(endpoint: WebhookEndpoint) -> WebhookEndpointCreated:
    return {**webhook_endpoint_view(endpoint), "secret": endpoint.secret}


class WebhookAttemptRead(TypedDict):
    id: str
    attempted_at: str
    status_code: Annotated[int | None, _about("null when no HTTP answer came back.")]
    latency_ms: int
    error: str | None
    response_excerpt: Annotated[str | None, _about("The first 1,024 characters of the answer.")]


def webhook_attempt_view(attempt: WebhookAttempt) -> WebhookAttemptRead:
    return {
        "id": attempt.id,
        "attempted_at": iso(attempt.attempted_at),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "response_excerpt": attempt.response_excerpt,
    }


class WebhookDeliveryRead(TypedDict):
    id: Annotated[str, _example("whd_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    endpoint_id: str
    event_id: Annotated[str, _about("Also the `webhook-id` header: the same on every attempt.")]
    event_type: str
    chatroom_id: str | None
    seq: int | None
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: Annotated[str | None, _about("When the next attempt is due, if pending.")]
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    attempts: Annotated[list[WebhookAttemptRead], _about("Every attempt, oldest first.")]
    created_at: str


def webhook_delivery_view(
    delivery: WebhookDelivery, attempts: list[WebhookAttempt]
) -> WebhookDeliveryRead:
    pending = delivery.status.waiting
    status = "pending" if pending else delivery.status.value
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "chatroom_id": delivery.chatroom_id,
        "seq": delivery.seq,
        # Held deliveries are pending to the outside; the rest are succeeded or failed.
        "status": cast(Literal["pending", "succeeded", "failed"], status),
        "attempt_count": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at) if pending else None,
        "last_attempt_at": _iso(delivery.last_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "attempts": [webhook_attempt_view(a) for a in attempts],
        "created_at": iso(delivery.created_at),
    }


class WebhookPingResult(TypedDict):
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None


class WebhookRecovery(TypedDict):
    requeued: Annotated[int, _about("Failed deliveries queued again.")]
    created: Annotated[int, _about("Events with no delivery yet (the endpoint was disabled).")]


class FlowRead(TypedDict):
    id: Annotated[str, _example("flow_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    name: str
    revision: Annotated[int, _about("Send it back when saving the draft: a stale one is a 409.")]
    draft: Annotated[dict[str, Any], _about("The flow document being edited.")]
    deployed_version_id: Annotated[
        str | None, _about("The version whose trigger starts runs; null: not deployed.")
    ]
    trigger_type: Annotated[str | None, _about("The deployed version's trigger.")]
    webhook_url: Annotated[str, _about("For an `incoming_webhook` trigger: POST here.")]
    webhook_secret: Annotated[
        str, _about("For an `incoming_webhook` trigger: send it as `X-Chatflow-Secret`.")
    ]
    next_fire_at: Annotated[str | None, _about("For a deployed `schedule` trigger.")]
    created_at: str
    updated_at: str


def flow_view(flow: Flow) -> FlowRead:
    return {
        "id": flow.id,
        "name": flow.name,
        "revision": flow.revision,
        "draft": flow.draft,
        "deployed_version_id": flow.version_id,
        "trigger_type": flow.trigger_type,
        "webhook_url": f"/hooks/flows/{flow.id}",
        "webhook_secret": flow.webhook_secret,
        "next_fire_at": _iso(flow.next_fire_at),
        "created_at": iso(flow.created_at),
        "updated_at": iso(flow.updated_at),
    }


class FlowVersionRead(TypedDict):
    id: Annotated[str, _example("flv_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    flow_id: str
    number: int
    message: str
    document: dict[str, Any]
    created_by: str
    created_at: str


def flow_version_view(version: FlowVersion) -> FlowVersionRead:
    return {
        "id": version.id,
        "flow_id": version.flow_id,
        "number": version.number,
        "message": version.message,
        "document": version.document,
        "created_by": version.created_by,
        "created_at": iso(version.created_at),
    }


class ValidationRead(TypedDict):
    valid: bool
    errors: Annotated[
        list[dict[str, Any]],
        _about("Each with `pointer`, `code`, `message`, `node` and `parameter`."),
    ]
    warnings: Annotated[list[dict[str, Any]], _about("Worth a look; deploying is allowed.")]


def validation_view(validation: Validation) -> ValidationRead:
    return {
        "valid": validation.valid,
        "errors": [p.view() for p in validation.errors],
        "warnings": [p.view() for p in validation.warnings],
    }


WaitKind = Literal["reply", "delay", "http"]


class RunWaitRead(TypedDict):
    kind: WaitKind
    node: str | None
    chatroom_id: str | None
    until: str | None


class RunRead(TypedDict):
    id: Annotated[str, _example("run_01jd3m6x0v8k2c4w9a7b5e1f3g")]
    flow_id: str
    version_id: str
    chatroom_id: str | None
    status: RunStatus
    trigger: dict[str, Any]
    waiting: RunWaitRead | None
    step_count: int
    depth: int
    error: dict[str, Any] | None
    started_at: str
    ended_at: str | None


def run_view(run: FlowRun) -> RunRead:
    waiting: RunWaitRead | None = None
    if run.wait_kind is not None and run.status.active:
        waiting = {
            # The engine only waits for these three.
            "kind": cast(WaitKind, run.wait_kind),
            "node": run.state.get("node"),
            "chatroom_id": run.wait_chatroom_id,
            "until": None if run.wait_kind == "http" else _iso(run.wake_at),
        }
    return {
        "id": run.id,
        "flow_id": run.flow_id,
        "version_id": run.version_id,
        "chatroom_id": run.chatroom_id,
        "status": _wire(run.status),
        "trigger": run.trigger,
        "waiting": waiting,
        "step_count": run.step_count,
        "depth": run.depth,
        "error": run.error,
        "started_at": iso(run.started_at),
        "ended_at": _iso(run.ended_at),
    }


class RunStepRead(TypedDict):
    number: int
    node: str
    action: str
    params: Annotated[dict[str, Any], _about("After variables were put in.")]
    outcome: str | None
    output: dict[str, Any]
    error: dict[str, Any] | None
    started_at: str
    ended_at: str


def run_step_view(step: RunStep) -> RunStepRead:
    return {
        "number": step.number,
        "node": step.node_id,
        "action": step.action,
        "params": step.params,
        "outcome": step.outcome,
        "output": step.output,
        "error": step.error,
        "started_at": iso(step.started_at),
        "ended_at": iso(step.ended_at),
    }


class RunDetail(RunRead):
    steps: list[RunStepRead]


def run_detail_view(run: FlowRun, steps: list[RunStep]) -> RunDetail:
    return {**run_view(run), "steps": [run_step_view(s) for s in steps]}


_ANY = TypeAdapter(Any)


_PLAIN_JSON_ONLY = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def to_json(value: object) -> bytes:
    """A view (or a list of views) as compact JSON: what pydantic writes, in the dicts' order.

    orjson writes the same bytes for plain JSON values three times as fast (a list page's
    twenty chatrooms: 19 µs against 55); what it writes otherwise or refuses (an integer past
    64 bits in a flow's stored document, a datetime, a non-string key) pydantic writes.
    """
    try:
        return orjson.dumps(value, option=_PLAIN_JSON_ONLY)
    except orjson.JSONEncodeError:
        return _ANY.dump_json(value)
