"""How each entity looks from outside: the bodies of API responses and of event payloads.

One representation per entity, so a webhook consumer and an API client read the same shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatflow.clock import iso
from chatflow.domain.flows.document import Validation
from chatflow.domain.flows.records import Flow, FlowRun, FlowVersion, RunStep
from chatflow.domain.models import (
    Agent,
    ApiKey,
    Channel,
    Chatroom,
    ChatroomListItem,
    Contact,
    Event,
    Message,
    Organization,
    Participant,
    Template,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


def _iso(millis: int | None) -> str | None:
    return None if millis is None else iso(millis)


class OrganizationRead(View):
    id: str = Field(examples=["org_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    name: str
    idle_close_seconds: int | None = Field(
        description="Open chatrooms with no activity for this long close by themselves; "
        "null: never."
    )
    created_at: str

    @classmethod
    def of(cls, org: Organization) -> OrganizationRead:
        return cls(
            id=org.id,
            name=org.name,
            idle_close_seconds=org.idle_close_seconds,
            created_at=iso(org.created_at),
        )


class AgentRead(View):
    id: str = Field(examples=["ag_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    email: str
    name: str
    role: Literal["admin", "agent"]
    active: bool
    created_at: str

    @classmethod
    def of(cls, agent: Agent) -> AgentRead:
        return cls(
            id=agent.id,
            email=agent.email,
            name=agent.name,
            role=agent.role.value,
            active=agent.active,
            created_at=iso(agent.created_at),
        )


class ApiKeyRead(View):
    id: str
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyRead:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=iso(key.created_at),
            last_used_at=_iso(key.last_used_at),
            revoked_at=_iso(key.revoked_at),
        )


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret. It is shown this once and stored only as a hash.")


class ContactRead(View):
    id: str = Field(examples=["ct_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    phone: str | None = Field(examples=["+14155550123"])
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

    @classmethod
    def of(cls, contact: Contact) -> ContactRead:
        return cls(
            id=contact.id,
            phone=contact.phone,
            first_name=contact.first_name,
            last_name=contact.last_name,
            display_name=contact.display_name,
            email=contact.email,
            external_id=contact.external_id,
            custom_attributes=contact.custom_attributes,
            opted_in=contact.opted_in,
            opted_in_at=_iso(contact.opted_in_at),
            created_at=iso(contact.created_at),
            updated_at=iso(contact.updated_at),
        )


class ChannelRead(View):
    id: str = Field(examples=["ch_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    type: Literal["whatsapp", "webchat", "sandbox"]
    name: str
    customer_window: bool = Field(
        description="Whether free-form sends need the 24-hour customer-service window (R4)."
    )
    config: dict[str, Any] = Field(description="Settings; secrets are never returned.")
    created_at: str

    @classmethod
    def of(cls, channel: Channel) -> ChannelRead:
        return cls(
            id=channel.id,
            type=channel.type.value,
            name=channel.name,
            customer_window=channel.customer_window,
            config=channel.config,
            created_at=iso(channel.created_at),
        )


class ParticipantRead(View):
    agent_id: str
    joined_at: str
    bump_key: int = Field(description="This agent's order key for the chatroom (R3).")
    bumped_at: str
    unread_count: int
    last_read_at: str | None

    @classmethod
    def of(cls, participant: Participant) -> ParticipantRead:
        return cls(
            agent_id=participant.agent_id,
            joined_at=iso(participant.joined_at),
            bump_key=participant.bump_key,
            bumped_at=iso(participant.bump_key // 1000),
            unread_count=participant.unread_count,
            last_read_at=_iso(participant.last_read_at),
        )


class ChatroomRead(View):
    id: str = Field(examples=["cr_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    contact_id: str
    channel_id: str
    status: Literal["open", "closed"]
    participants: list[ParticipantRead]
    pending_agent_ids: list[str] = Field(
        description="Agents who join at handover (assign_on_handover, R8)."
    )
    created_at: str
    closed_at: str | None
    last_activity_at: str
    bump_key: int
    window_expires_at: str | None = Field(
        description="When the 24-hour customer-service window closes; null: it is not open."
    )
    last_seq: int = Field(description="The sequence number of the chatroom's latest event.")

    @classmethod
    def of(cls, chatroom: Chatroom) -> ChatroomRead:
        return cls(**_chatroom_fields(chatroom))


def _chatroom_fields(chatroom: Chatroom) -> dict[str, Any]:
    return {
        "id": chatroom.id,
        "contact_id": chatroom.contact_id,
        "channel_id": chatroom.channel_id,
        "status": chatroom.status.value,
        "participants": [ParticipantRead.of(p) for p in chatroom.participants],
        "pending_agent_ids": list(chatroom.pending_agent_ids),
        "created_at": iso(chatroom.created_at),
        "closed_at": _iso(chatroom.closed_at),
        "last_activity_at": iso(chatroom.last_activity_at),
        "bump_key": chatroom.bump_key,
        "window_expires_at": _iso(chatroom.window_expires_at),
        "last_seq": chatroom.event_seq,
    }


class ChatroomCreated(ChatroomRead):
    created: bool = Field(
        description="false: the contact already had an open chatroom on this channel, which is "
        "returned unchanged (R2)."
    )

    @classmethod
    def of_result(cls, chatroom: Chatroom, created: bool) -> ChatroomCreated:
        return cls(**_chatroom_fields(chatroom), created=created)


class ChatroomListEntry(ChatroomRead):
    """A chatroom in one agent's list, with that agent's own order key and unread count."""

    agent_bump_key: int
    agent_unread_count: int

    @classmethod
    def of_item(cls, item: ChatroomListItem) -> ChatroomListEntry:
        return cls(
            **_chatroom_fields(item.chatroom),
            agent_bump_key=item.bump_key,
            agent_unread_count=item.unread_count,
        )


class SenderRead(View):
    type: Literal["contact", "agent", "bot"]
    id: str | None


class ButtonRead(View):
    index: int
    text: str
    payload: str
    template_message_id: str | None


class FlagsRead(View):
    relay_response: bool
    bump: bool
    bump_response: bool


class MessageRead(View):
    id: str = Field(examples=["msg_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    chatroom_id: str
    direction: Literal["inbound", "outbound"]
    sender: SenderRead
    kind: Literal["text", "template", "button_reply", "system"]
    text: str
    template: dict[str, Any] | None = Field(
        description="For template messages: name, language, the rendered components and the "
        "buttons with the payloads sent."
    )
    button: ButtonRead | None = Field(description="For button replies: the button tapped.")
    reply_to_message_id: str | None
    flags: FlagsRead
    status: Literal["queued", "sent", "delivered", "read", "failed", "received"]
    channel_message_id: str | None
    channel_timestamp: str | None
    error: dict[str, Any] | None
    created_at: str

    @classmethod
    def of(cls, message: Message) -> MessageRead:
        button = message.button
        return cls(
            id=message.id,
            chatroom_id=message.chatroom_id,
            direction=message.direction.value,
            sender=SenderRead(type=message.sender_type.value, id=message.sender_id),
            kind=message.kind.value,
            text=message.text,
            template=message.template,
            button=None
            if button is None
            else ButtonRead(
                index=button.index,
                text=button.text,
                payload=button.payload,
                template_message_id=button.template_message_id,
            ),
            reply_to_message_id=message.reply_to_message_id,
            flags=FlagsRead(
                relay_response=message.flags.relay_response,
                bump=message.flags.bump,
                bump_response=message.flags.bump_response,
            ),
            status=message.status.value,
            channel_message_id=message.channel_message_id,
            channel_timestamp=_iso(message.channel_timestamp),
            error=message.error,
            created_at=iso(message.created_at),
        )


class VisitorSenderRead(View):
    type: Literal["contact", "agent", "bot"]
    name: str | None = Field(description="The agent's name; null for the customer and the bot.")


class VisitorTemplateButtonRead(View):
    index: int
    type: str = Field(examples=["QUICK_REPLY"])
    text: str
    url: str | None = None
    phone_number: str | None = None
    code: str | None = None


class VisitorTemplateRead(View):
    header: dict[str, Any] | None = Field(description="`format` and, for TEXT, `text`.")
    body: str
    footer: str | None
    buttons: list[VisitorTemplateButtonRead] = Field(
        description="Quick replies are tapped by `index`; their payloads stay on the server."
    )


class VisitorButtonRead(View):
    index: int
    text: str
    template_message_id: str | None


class VisitorMessageRead(View):
    """A message as the web-chat customer sees it: no agent ids, flags, payloads or errors."""

    id: str
    direction: Literal["inbound", "outbound"] = Field(
        description="inbound: written by the customer; outbound: by the business."
    )
    sender: VisitorSenderRead
    kind: Literal["text", "template", "button_reply", "system"]
    text: str
    template: VisitorTemplateRead | None
    button: VisitorButtonRead | None = Field(description="For taps: the button tapped.")
    reply_to_message_id: str | None
    status: Literal["queued", "sent", "delivered", "read", "failed", "received"]
    created_at: str

    @classmethod
    def of(cls, message: MessageRead, sender_name: str | None) -> VisitorMessageRead:
        """`sender_name`: the name of the agent who sent it, if an agent did."""
        template = message.template
        button = message.button
        return cls(
            id=message.id,
            direction=message.direction,
            sender=VisitorSenderRead(
                type=message.sender.type,
                name=sender_name if message.sender.type == "agent" else None,
            ),
            kind=message.kind,
            text=message.text,
            template=None
            if template is None
            else VisitorTemplateRead(
                header=template.get("header"),
                body=str(template.get("body", "")),
                footer=template.get("footer"),
                buttons=[
                    VisitorTemplateButtonRead(
                        index=b["index"],
                        type=b["type"],
                        text=b["text"],
                        url=b.get("url"),
                        phone_number=b.get("phone_number"),
                        code=b.get("code"),
                    )
                    for b in template.get("buttons", [])
                ],
            ),
            button=None
            if button is None
            else VisitorButtonRead(
                index=button.index,
                text=button.text,
                template_message_id=button.template_message_id,
            ),
            reply_to_message_id=message.reply_to_message_id,
            status=message.status,
            created_at=message.created_at,
        )


class TemplateRead(View):
    id: str = Field(examples=["tpl_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    name: str = Field(examples=["order_update"])
    language: str = Field(examples=["en_US"])
    category: Literal["AUTHENTICATION", "MARKETING", "UTILITY"]
    components: list[dict[str, Any]]
    status: Literal["PENDING", "APPROVED", "REJECTED", "PAUSED", "DISABLED"]
    rejection_reason: str | None
    external_id: str | None = Field(
        description="Its id on the WhatsApp Business Account it was submitted to or synced from."
    )
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, template: Template) -> TemplateRead:
        return cls(
            id=template.id,
            name=template.name,
            language=template.language,
            category=template.category,
            components=template.components,
            status=template.status.value,
            rejection_reason=template.rejection_reason,
            external_id=template.external_id,
            created_at=iso(template.created_at),
            updated_at=iso(template.updated_at),
        )


class EventRead(View):
    id: str = Field(examples=["evt_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    type: str = Field(examples=["message.created"])
    created_at: str
    chatroom_id: str | None
    seq: int | None = Field(description="The event's number within its chatroom, from 1.")
    position: int = Field(description="The event's place in the organization's log.")
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> EventRead:
        return cls(
            id=event.id,
            type=event.type,
            created_at=iso(event.created_at),
            chatroom_id=event.chatroom_id,
            seq=event.seq,
            position=event.position,
            data=event.data,
        )


class WebhookEndpointRead(View):
    id: str = Field(examples=["whe_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    url: str = Field(examples=["https://example.com/chatflow/webhooks"])
    description: str
    event_types: list[str] = Field(
        description="The event types sent to this endpoint; `*` is every type.",
        examples=[["template.response"]],
    )
    enabled: bool
    disabled_reason: Literal["manual", "gone", "failing"] | None = Field(
        description="`gone`: the receiver answered 410; `failing`: every attempt failed for "
        "five days; `manual`: disabled through the API."
    )
    failing_since: str | None = Field(
        description="Since when every attempt has failed; null while deliveries succeed."
    )
    previous_secret_expires_at: str | None = Field(
        description="After a rotation, the old secret also signs until this time."
    )
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookEndpointRead:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=endpoint.event_types,
            enabled=endpoint.enabled,
            disabled_reason=None
            if endpoint.disabled_reason is None
            else endpoint.disabled_reason.value,
            failing_since=_iso(endpoint.failing_since),
            previous_secret_expires_at=_iso(endpoint.previous_secret_expires_at),
            created_at=iso(endpoint.created_at),
            updated_at=iso(endpoint.updated_at),
        )


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, `whsec_…`). Shown this once.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )

    @classmethod
    def made(cls, endpoint: WebhookEndpoint) -> WebhookEndpointCreated:
        return cls(**WebhookEndpointRead.of(endpoint).model_dump(), secret=endpoint.secret)


class WebhookAttemptRead(View):
    id: str
    attempted_at: str
    status_code: int | None = Field(description="null when no HTTP answer came back.")
    latency_ms: int
    error: str | None
    response_excerpt: str | None = Field(description="The first 1,024 characters of the answer.")

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> WebhookAttemptRead:
        return cls(
            id=attempt.id,
            attempted_at=iso(attempt.attempted_at),
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
            response_excerpt=attempt.response_excerpt,
        )


class WebhookDeliveryRead(View):
    id: str = Field(examples=["whd_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    endpoint_id: str
    event_id: str = Field(description="Also the `webhook-id` header: the same on every attempt.")
    event_type: str
    chatroom_id: str | None
    seq: int | None
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: str | None = Field(description="When the next attempt is due, if pending.")
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[WebhookAttemptRead] = Field(description="Every attempt, oldest first.")
    created_at: str

    @classmethod
    def of(cls, delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> WebhookDeliveryRead:
        pending = delivery.status.waiting
        return cls(
            id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            chatroom_id=delivery.chatroom_id,
            seq=delivery.seq,
            status="pending" if pending else delivery.status.value,
            attempt_count=delivery.attempts,
            next_attempt_at=iso(delivery.next_attempt_at) if pending else None,
            last_attempt_at=_iso(delivery.last_attempt_at),
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            attempts=[WebhookAttemptRead.of(a) for a in attempts],
            created_at=iso(delivery.created_at),
        )


class WebhookPingResult(View):
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None


class WebhookRecovery(View):
    requeued: int = Field(description="Failed deliveries queued again.")
    created: int = Field(description="Events with no delivery yet (the endpoint was disabled).")


class FlowRead(View):
    id: str = Field(examples=["flow_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    name: str
    revision: int = Field(description="Send it back when saving the draft: a stale one is a 409.")
    draft: dict[str, Any] = Field(description="The flow document being edited.")
    deployed_version_id: str | None = Field(
        description="The version whose trigger starts runs; null: not deployed."
    )
    trigger_type: str | None = Field(description="The deployed version's trigger.")
    webhook_url: str = Field(description="For an `incoming_webhook` trigger: POST here.")
    webhook_secret: str = Field(
        description="For an `incoming_webhook` trigger: send it as `X-Chatflow-Secret`."
    )
    next_fire_at: str | None = Field(description="For a deployed `schedule` trigger.")
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, flow: Flow) -> FlowRead:
        return cls(
            id=flow.id,
            name=flow.name,
            revision=flow.revision,
            draft=flow.draft,
            deployed_version_id=flow.version_id,
            trigger_type=flow.trigger_type,
            webhook_url=f"/hooks/flows/{flow.id}",
            webhook_secret=flow.webhook_secret,
            next_fire_at=_iso(flow.next_fire_at),
            created_at=iso(flow.created_at),
            updated_at=iso(flow.updated_at),
        )


class FlowVersionRead(View):
    id: str = Field(examples=["flv_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    flow_id: str
    number: int
    message: str
    document: dict[str, Any]
    created_by: str
    created_at: str

    @classmethod
    def of(cls, version: FlowVersion) -> FlowVersionRead:
        return cls(
            id=version.id,
            flow_id=version.flow_id,
            number=version.number,
            message=version.message,
            document=version.document,
            created_by=version.created_by,
            created_at=iso(version.created_at),
        )


class ValidationRead(View):
    valid: bool
    errors: list[dict[str, Any]] = Field(
        description="Each with `pointer`, `code`, `message`, `node` and `parameter`."
    )
    warnings: list[dict[str, Any]] = Field(description="Worth a look; deploying is allowed.")

    @classmethod
    def of(cls, validation: Validation) -> ValidationRead:
        return cls(
            valid=validation.valid,
            errors=[p.view() for p in validation.errors],
            warnings=[p.view() for p in validation.warnings],
        )


class RunWaitRead(View):
    kind: Literal["reply", "delay", "http"]
    node: str | None
    chatroom_id: str | None
    until: str | None


class RunRead(View):
    id: str = Field(examples=["run_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    flow_id: str
    version_id: str
    chatroom_id: str | None
    status: Literal["running", "waiting", "completed", "failed", "cancelled", "skipped"]
    trigger: dict[str, Any]
    waiting: RunWaitRead | None
    step_count: int
    depth: int
    error: dict[str, Any] | None
    started_at: str
    ended_at: str | None

    @classmethod
    def of(cls, run: FlowRun) -> RunRead:
        waiting = None
        if run.wait_kind is not None and run.status.active:
            waiting = RunWaitRead(
                kind=run.wait_kind,
                node=run.state.get("node"),
                chatroom_id=run.wait_chatroom_id,
                until=None if run.wait_kind == "http" else _iso(run.wake_at),
            )
        return cls(
            id=run.id,
            flow_id=run.flow_id,
            version_id=run.version_id,
            chatroom_id=run.chatroom_id,
            status=run.status.value,
            trigger=run.trigger,
            waiting=waiting,
            step_count=run.step_count,
            depth=run.depth,
            error=run.error,
            started_at=iso(run.started_at),
            ended_at=_iso(run.ended_at),
        )


class RunStepRead(View):
    number: int
    node: str
    action: str
    params: dict[str, Any] = Field(description="After variables were put in.")
    outcome: str | None
    output: dict[str, Any]
    error: dict[str, Any] | None
    started_at: str
    ended_at: str

    @classmethod
    def of(cls, step: RunStep) -> RunStepRead:
        return cls(
            number=step.number,
            node=step.node_id,
            action=step.action,
            params=step.params,
            outcome=step.outcome,
            output=step.output,
            error=step.error,
            started_at=iso(step.started_at),
            ended_at=iso(step.ended_at),
        )


class RunDetail(RunRead):
    steps: list[RunStepRead]


def dump(view: BaseModel) -> dict[str, Any]:
    """A view as plain JSON values, for event payloads."""
    return view.model_dump(mode="json")
