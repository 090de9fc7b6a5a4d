"""The entities of chatflow as immutable values. Stores return these, never ORM rows.

Times are integers: milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NewType, TypeVar

from typing_extensions import dataclass_transform

OrganizationId = NewType("OrganizationId", str)
AgentId = NewType("AgentId", str)
ApiKeyId = NewType("ApiKeyId", str)
ContactId = NewType("ContactId", str)
ChannelId = NewType("ChannelId", str)
ChatroomId = NewType("ChatroomId", str)
MessageId = NewType("MessageId", str)
TemplateId = NewType("TemplateId", str)
EventId = NewType("EventId", str)
WebhookEndpointId = NewType("WebhookEndpointId", str)
WebhookDeliveryId = NewType("WebhookDeliveryId", str)

JsonObject = dict[str, Any]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """An entity's value as stores return it: immutable to mypy, which refuses any assignment to
    its fields, and a plain slots dataclass at run time. A frozen dataclass sets each field
    through `object.__setattr__` and takes twice as long to build (2.6 against 1.5 µs for
    thirteen fields), and a page of twenty chatrooms builds forty of these. Hashed by value, as
    a frozen one is."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


LogPosition = tuple[int, int]
"""A place in the event log: `(txid, position)`, the order in which events become final."""


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class ChannelType(StrEnum):
    WHATSAPP = "whatsapp"
    WEBCHAT = "webchat"
    SANDBOX = "sandbox"

    @property
    def sends_through_provider(self) -> bool:
        """Whether outbound messages leave through a provider's API after commit (queued, then
        sent or failed); the other kinds deliver by writing the message, read live by their
        customers, so it is sent as it commits."""
        return self is ChannelType.WHATSAPP


class ChatroomStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SenderType(StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    BOT = "bot"


class MessageKind(StrEnum):
    TEXT = "text"
    TEMPLATE = "template"
    BUTTON_REPLY = "button_reply"
    SYSTEM = "system"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(StrEnum):
    """Delivery progress of an outbound message; inbound messages are `received`."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    RECEIVED = "received"


class TemplateStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


class AssignReason(StrEnum):
    CREATED = "created"
    HANDOVER = "handover"
    REASSIGN = "reassign"


@record
class Organization:
    id: OrganizationId
    name: str
    idle_close_seconds: int | None
    created_at: int


@record
class Agent:
    id: AgentId
    org_id: OrganizationId
    email: str
    name: str
    role: Role
    active: bool
    created_at: int


@record
class ApiKey:
    id: ApiKeyId
    org_id: OrganizationId
    name: str
    prefix: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


@record
class Contact:
    id: ContactId
    org_id: OrganizationId
    phone: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    external_id: str | None
    custom_attributes: JsonObject
    opted_in: bool
    opted_in_at: int | None
    created_at: int
    updated_at: int

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.phone or self.email or self.id


@record
class Channel:
    id: ChannelId
    org_id: OrganizationId
    type: ChannelType
    name: str
    customer_window: bool
    config: JsonObject
    created_at: int


@record
class Participant:
    agent_id: AgentId
    joined_at: int
    bump_key: int
    unread_count: int
    last_read_at: int | None


@record
class Chatroom:
    id: ChatroomId
    org_id: OrganizationId
    contact_id: ContactId
    channel_id: ChannelId
    status: ChatroomStatus
    created_at: int
    closed_at: int | None
    last_activity_at: int
    bump_key: int
    window_expires_at: int | None
    event_seq: int
    participants: tuple[Participant, ...] = ()
    pending_agent_ids: tuple[AgentId, ...] = ()

    def participant(self, agent_id: str) -> Participant | None:
        return next((p for p in self.participants if p.agent_id == agent_id), None)


@record
class ChatroomListItem:
    """A chatroom as one agent's list shows it: the agent's own order key and unread count."""

    chatroom: Chatroom
    bump_key: int
    unread_count: int


@record
class ButtonTap:
    index: int
    text: str
    payload: str
    template_message_id: MessageId | None


@record
class MessageFlags:
    relay_response: bool = False
    bump: bool = True
    bump_response: bool = True


@record
class Message:
    id: MessageId
    org_id: OrganizationId
    chatroom_id: ChatroomId
    direction: Direction
    sender_type: SenderType
    sender_id: str | None
    kind: MessageKind
    text: str
    template: JsonObject | None
    button: ButtonTap | None
    reply_to_message_id: MessageId | None
    flags: MessageFlags
    status: MessageStatus
    channel_message_id: str | None
    channel_timestamp: int | None
    error: JsonObject | None
    created_at: int


@record
class Template:
    id: TemplateId
    org_id: OrganizationId
    name: str
    language: str
    category: str
    components: list[JsonObject]
    status: TemplateStatus
    rejection_reason: str | None
    created_at: int
    updated_at: int
    external_id: str | None = None
    """Its id on the WhatsApp Business Account it was submitted to or synced from."""


@record
class Event:
    id: EventId
    org_id: OrganizationId
    type: str
    chatroom_id: ChatroomId | None
    seq: int | None
    data: JsonObject
    created_at: int
    position: int = 0
    txid: int = 0
    cause: JsonObject | None = None
    """The flow run whose step made the change: `{"flow", "run", "depth"}`."""

    @property
    def log_position(self) -> LogPosition:
        return (self.txid, self.position)


@record
class EventHead:
    """An event without its payload: what a consumer of the log needs to tell whether a batch
    concerns it, read without decoding every event's data."""

    org_id: OrganizationId
    type: str
    chatroom_id: ChatroomId | None
    created_at: int
    position: int
    txid: int

    @property
    def log_position(self) -> LogPosition:
        return (self.txid, self.position)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    HELD = "held"
    """Pending, behind an earlier event of its chatroom whose first attempt to the same
    endpoint has not been made yet: first attempts of a chatroom go out in `seq` order. Shown
    as `pending` outside."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def waiting(self) -> bool:
        return self in (DeliveryStatus.PENDING, DeliveryStatus.HELD)


class DisabledReason(StrEnum):
    MANUAL = "manual"
    GONE = "gone"
    """The receiver answered 410 Gone."""
    FAILING = "failing"
    """Every attempt failed for five days."""


@record
class WebhookEndpoint:
    id: WebhookEndpointId
    org_id: OrganizationId
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: DisabledReason | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: int | None
    failing_since: int | None
    created_at: int
    updated_at: int

    def signing_secrets(self, now: int) -> list[str]:
        """The current secret, then the previous one while it is still honoured."""
        expires = self.previous_secret_expires_at
        if self.previous_secret is not None and expires is not None and now < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]


@record
class WebhookDelivery:
    """One event for one endpoint, however many attempts it takes."""

    id: WebhookDeliveryId
    org_id: OrganizationId
    endpoint_id: WebhookEndpointId
    event_id: EventId
    event_type: str
    chatroom_id: ChatroomId | None
    seq: int | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: int
    last_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    created_at: int
    updated_at: int


@record
class WebhookAttempt:
    id: str
    delivery_id: WebhookDeliveryId
    attempted_at: int
    latency_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None
