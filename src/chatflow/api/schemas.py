"""Request bodies. Unknown fields are refused (422), so nothing can be set that is not meant to."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)
from typing_extensions import TypedDict

from chatflow.services.messages import MAX_TEXT_LENGTH
from chatflow.views import AgentRead


def _unstorable(value: Any) -> str | None:
    """Why a value cannot be stored as sent: PostgreSQL text holds no NUL, JSON documents no
    integers past 64 bits and no infinities (a float past its range is read as one)."""
    if isinstance(value, str):
        return "may not contain a NUL character" if "\x00" in value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -(2**63) <= value < 2**64 else "number out of range"
    if isinstance(value, float):
        return None if math.isfinite(value) else "number out of range"
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    return next((reason for item in items if (reason := _unstorable(item))), None)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if reason := _unstorable(value):
            raise ValueError(reason)
        return value


Name = Field(default=None, min_length=1, max_length=200)  # an optional new name, in updates


class LoginRequest(Body):
    email: str = Field(max_length=320, examples=["admin@example.com"])
    password: str = Field(max_length=1000, examples=["correct horse battery staple"])


class SessionRead(TypedDict):
    token: Annotated[
        str, Field(description="Send as `Authorization: Bearer <token>` (also set as a cookie).")
    ]
    expires_at: str
    agent: AgentRead


class OrganizationUpdate(Body):
    name: str | None = Name
    idle_close_seconds: int | None = Field(
        default=None,
        ge=60,
        le=365 * 24 * 3600,
        description="Close open chatrooms idle this long; null turns auto-close off.",
    )


class AgentCreate(Body):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    name: str = Field(min_length=1, max_length=200, examples=["Ada Lovelace"])
    role: Literal["admin", "agent"] = "agent"
    password: str = Field(min_length=8, max_length=1000)


class AgentUpdate(Body):
    name: str | None = Name
    role: Literal["admin", "agent"] | None = None
    active: bool | None = Field(
        default=None, description="false deactivates: the agent's sessions end at once."
    )
    password: str | None = Field(default=None, min_length=8, max_length=1000)


class ApiKeyCreate(Body):
    name: str = Field(min_length=1, max_length=200, examples=["CRM integration"])


class ContactCreate(Body):
    phone: str | None = Field(
        default=None,
        max_length=40,
        description="Any valid number with its country code; stored in E.164.",
        examples=["+14155550123"],
    )
    first_name: str | None = Field(default=None, max_length=128, examples=["Ada"])
    last_name: str | None = Field(default=None, max_length=128, examples=["Lovelace"])
    email: str | None = Field(default=None, max_length=320, examples=["ada@example.com"])
    external_id: str | None = Field(
        default=None, max_length=128, description="Your id for the contact (CRM id)."
    )
    custom_attributes: dict[str, Any] | None = Field(default=None, max_length=100)
    opted_in: bool | None = Field(
        default=None,
        description="Whether the contact agreed to receive template messages (R4).",
    )


class ContactUpdate(ContactCreate):
    """Only the fields sent change; `custom_attributes` merges (null removes a key)."""


class ChannelCreate(Body):
    type: Literal["sandbox", "webchat", "whatsapp"]
    name: str = Field(min_length=1, max_length=200, examples=["Support line"])
    customer_window: bool | None = Field(
        default=None,
        description="Enforce the 24-hour window (R4). Always on for WhatsApp; on by default for "
        "the sandbox, which emulates it; off by default for web chat.",
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="WhatsApp: phone_number_id, waba_id, access_token, app_secret, "
        "verify_token, optional display_phone_number and graph_api_version. Secrets are "
        "write-only.",
    )


class ChannelUpdate(Body):
    name: str | None = Name
    customer_window: bool | None = None
    config: dict[str, Any] | None = None


class ChatroomCreate(Body):
    contact_id: str = Field(max_length=40, examples=["ct_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    channel_id: str = Field(max_length=40, examples=["ch_01jd3m6x0v8k2c4w9a7b5e1f3g"])
    participants: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Agent ids.",
        examples=[["ag_01jd3m6x0v8k2c4w9a7b5e1f3g"]],
    )
    assign_on_handover: bool = Field(
        default=False,
        description="R8: the agents join only at handover (the customer's free-flow message, or "
        "a tap on a template sent with relay_response=false).",
    )


class ReassignRequest(Body):
    agent_ids: list[str] = Field(max_length=50, examples=[["ag_01jd3m6x0v8k2c4w9a7b5e1f3g"]])


class MarkReadRequest(Body):
    agent_id: str | None = Field(
        default=None,
        max_length=40,
        description="For API keys and admins: whose unread count to reset. Agents: themselves.",
    )


class MessageCreate(Body):
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        examples=["Your order has been confirmed. Let us know if you need further assistance."],
    )
    as_agent_id: str | None = Field(
        default=None,
        max_length=40,
        description="For API keys: send as this agent instead of as the bot.",
    )


class TemplateVariablesBody(Body):
    header: list[str] = Field(default_factory=list, max_length=1)
    body: list[str] = Field(default_factory=list, max_length=100, examples=[["Ada", "#1234"]])
    buttons: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Button index → its variables (URL suffix, code).",
    )


class TemplateMessageCreate(Body):
    template: str = Field(min_length=1, max_length=512, examples=["order_update"])
    language: str = Field(min_length=1, max_length=16, examples=["en_US"])
    variables: TemplateVariablesBody = Field(default_factory=TemplateVariablesBody)
    as_agent_id: str | None = Field(default=None, max_length=40)


class TemplateCreate(Body):
    name: str = Field(max_length=512, examples=["order_update"])
    language: str = Field(max_length=16, examples=["en_US"])
    category: Literal["AUTHENTICATION", "MARKETING", "UTILITY"] = "UTILITY"
    components: list[dict[str, Any]] = Field(
        max_length=4,
        examples=[
            [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, your order {{2}} has shipped.",
                    "example": {"body_text": [["Ada", "#1234"]]},
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Track it"},
                        {"type": "QUICK_REPLY", "text": "Talk to us"},
                    ],
                },
            ]
        ],
    )


class TemplateUpdate(Body):
    category: Literal["AUTHENTICATION", "MARKETING", "UTILITY"] | None = None
    components: list[dict[str, Any]] | None = Field(default=None, max_length=4)


class TemplateReject(Body):
    reason: str | None = Field(default=None, max_length=500)


class SandboxButton(Body):
    message_id: str = Field(max_length=40, description="The template message tapped.")
    index: int = Field(ge=0, le=9, description="The button's index in the template.")


class SandboxInbound(Body):
    chatroom_id: str | None = Field(default=None, max_length=40)
    channel_id: str | None = Field(
        default=None, max_length=40, description="With contact_id: a customer who writes first."
    )
    contact_id: str | None = Field(default=None, max_length=40)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    button: SandboxButton | None = None
    reply_to_message_id: str | None = Field(default=None, max_length=40)
    timestamp: str | None = Field(
        default=None,
        description="The channel's time of the message (RFC 3339); the window runs from it.",
    )


class WebhookEndpointCreate(Body):
    url: str = Field(max_length=2048, examples=["https://example.com/chatflow/webhooks"])
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(
        default_factory=lambda: ["template.response"],
        max_length=64,
        description="Event types to send; `*` for all. Default: the seed's relay, "
        "`template.response`.",
        examples=[["template.response", "message.created"]],
    )
    enabled: bool = True


class WebhookEndpointUpdate(Body):
    url: str | None = Field(default=None, max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] | None = Field(default=None, max_length=64)
    enabled: bool | None = None


class WebhookRecover(Body):
    since: AwareDatetime = Field(
        description="Queue again every failed delivery, and deliver every event the endpoint "
        "missed, from this time on.",
        examples=["2026-03-01T09:00:00Z"],
    )


_FLOW_EXAMPLE: dict[str, Any] = {
    "trigger": {
        "type": "message_received",
        "params": {"text_operator": "contains", "text": "order"},
    },
    "start": "confirm",
    "nodes": [
        {
            "id": "confirm",
            "action": "send_message",
            "params": {
                "message": "Your order has been confirmed. Let us know if you need further "
                "assistance.",
                "chatInstanceId": "{chatInstanceId}",
            },
        }
    ],
    "edges": [],
    "layout": {"confirm": {"x": 120, "y": 80}},
}


class FlowCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    document: dict[str, Any] | None = Field(
        default=None,
        description="The first draft; omitted: an empty flow started by hand.",
        examples=[_FLOW_EXAMPLE],
    )


class FlowUpdate(Body):
    revision: int = Field(description="The draft's revision this change was made from.")
    document: dict[str, Any] = Field(examples=[_FLOW_EXAMPLE])
    name: str | None = Field(default=None, min_length=1, max_length=200)


class FlowValidate(Body):
    document: dict[str, Any] | None = Field(
        default=None, description="A document to check; omitted: the saved draft."
    )


class FlowDeploy(Body):
    message: str = Field(default="", max_length=500, description="What changed, for the history.")
    revision: int | None = Field(
        default=None, description="Deploy only if the draft is still at this revision."
    )


class FlowRollback(Body):
    version: int = Field(ge=1, description="The version number to deploy again.")


class RunStart(Body):
    inputs: dict[str, Any] = Field(default_factory=dict)
    chatroom_id: str | None = Field(default=None, max_length=64)


class TestContact(Body):
    first_name: str | None = Field(default=None, max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    external_id: str | None = Field(default=None, max_length=128)
    opted_in: StrictBool = True
    custom_attributes: dict[str, Any] = Field(default_factory=dict)


class TestMessage(Body):
    text: str = Field(default="", max_length=MAX_TEXT_LENGTH)


class TestButton(Body):
    index: StrictInt = Field(default=0, ge=0, le=9)
    text: str = Field(default="", max_length=25)
    payload: str = Field(default="", max_length=256)


class TestTemplate(Body):
    name: str = Field(default="", max_length=512)
    language: str = Field(default="", max_length=15)


class TestTrigger(Body):
    """What fired the test run; each trigger reads its own part."""

    contact: TestContact | None = None
    channel_id: str | None = Field(default=None, max_length=64)
    window_open: StrictBool = Field(
        default=True, description="Whether the customer wrote in the last 24 hours (R4)."
    )
    message: TestMessage | None = None
    button: TestButton | None = None
    template: TestTemplate | None = None
    body: Any = Field(default=None, description="An incoming webhook's JSON body.")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)


class TestReply(Body):
    text: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)
    button: StrictInt | None = Field(default=None, ge=0, le=9, description="A tap on button n.")
    timeout: StrictBool = Field(default=False, description="No reply: the wait times out.")
    after_seconds: StrictInt = Field(default=1, ge=0, le=35 * 24 * 3600)


class TestHttpAnswer(Body):
    node: str | None = Field(default=None, max_length=64, description="Only for this node.")
    status: StrictInt = Field(default=200, ge=100, le=599)
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)


class TestRunRequest(Body):
    document: dict[str, Any] | None = Field(
        default=None, description="The document to test; omitted: the saved draft."
    )
    trigger: TestTrigger = Field(
        default_factory=TestTrigger,
        examples=[{"contact": {"first_name": "Ada"}, "message": {"text": "order 42"}}],
    )
    replies: list[TestReply] = Field(
        default_factory=list, max_length=100, description="The customer's replies, in order."
    )
    http: list[TestHttpAnswer] = Field(
        default_factory=list, max_length=100, description="HTTP answers, in order."
    )
    now: AwareDatetime | None = Field(
        default=None, description="The frozen clock's start; omitted: 2026-01-01T00:00:00Z."
    )
    seed: str = Field(default="t", pattern=r"^[a-z0-9]{1,8}$", description="Test ids' stem.")

    @field_validator("now")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        if value is not None and not 2000 <= value.year <= 2999:
            raise ValueError("a time between the years 2000 and 2999")
        return value
