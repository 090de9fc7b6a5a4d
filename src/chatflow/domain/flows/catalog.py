"""The action catalog: one description per action and trigger, in code (SPEC "Flows", R10).

The API serves it (`GET /v1/flow-actions`), the validator checks documents against it and the
builder draws its forms from it: nothing else knows what parameters an action takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ParamType(StrEnum):
    STRING = "string"
    """Text with variables (R10): `{path}` or `{{ path }}`."""
    STRING_LIST = "string_list"
    """A list of strings, each with variables."""
    STRING_MAP = "string_map"
    """An object of string values, each with variables (HTTP headers)."""
    JSON = "json"
    """Any JSON value; every string in it takes variables (an HTTP request's JSON body)."""
    BOOLEAN = "boolean"
    INTEGER = "integer"
    CHOICE = "choice"
    """One of `choices`."""
    NAME = "name"
    """A variable name, written without braces."""
    RESPONSE_MAPPING = "response_mapping"
    """An object: variable name → dotted path into the HTTP response (`body.order.status`)."""
    TEMPLATE_VARIABLES = "template_variables"
    """`{header: [..], body: [..], buttons: {"0": [..]}}`, each string with variables."""
    BRANCHES = "branches"
    """A condition's ordered branches (see the `condition` action)."""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    type: ParamType
    required: bool
    description: str
    example: Any = None
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    """For integers, the largest value; for strings, the longest text."""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutcomeSpec:
    name: str
    description: str
    failure: bool = False
    """Left unconnected, this outcome fails the run (nothing was done that the flow asked)."""
    dynamic: bool = False
    """A pattern: the node's parameters name the real outcomes (condition branches, buttons)."""


@dataclass(frozen=True, slots=True)
class OutputSpec:
    name: str
    type: str
    description: str
    open: bool = False
    """Any deeper path may be read (`{steps.lookup.body.order.id}`): its shape is the peer's."""


class ActionKind(StrEnum):
    ACTION = "action"
    LOGIC = "logic"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    key: str
    title: str
    category: str
    kind: ActionKind
    description: str
    params: tuple[ParamSpec, ...]
    outcomes: tuple[OutcomeSpec, ...]
    outputs: tuple[OutputSpec, ...] = ()

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def outcome(self, name: str) -> OutcomeSpec | None:
        return next((o for o in self.outcomes if o.name == name), None)


@dataclass(frozen=True, slots=True)
class VariableSpec:
    path: str
    description: str
    open: bool = False


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    key: str
    title: str
    description: str
    params: tuple[ParamSpec, ...]
    variables: tuple[VariableSpec, ...]
    about_chatroom: bool
    """Its runs belong to a chatroom (`{chatInstanceId}`): one run per flow and chatroom."""

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True, slots=True)
class Limits:
    """Published with the catalog; the validator and the engine enforce them."""

    max_nodes: int = 100
    max_edges: int = 300
    max_document_bytes: int = 256 * 1024
    max_string_length: int = 8192
    max_branches: int = 20
    max_rules_per_branch: int = 20
    max_steps_per_run: int = 500
    max_node_repeats: int = 100
    max_run_age_seconds: int = 35 * 24 * 3600
    """Longer than the longest wait, so that one wait never ends a run by age alone."""
    max_wait_seconds: int = 30 * 24 * 3600
    max_chain_depth: int = 5
    """A flow started by another flow's effect (a chatroom it created, a webhook it called)
    counts one deeper; past this depth no flow starts."""
    max_http_timeout_seconds: int = 30
    max_http_response_bytes: int = 256 * 1024


LIMITS = Limits()

SEND_OUTCOMES = (
    OutcomeSpec("sent", "The message was stored and handed to the channel."),
    OutcomeSpec(
        "window_closed",
        "R4: the customer has not written in the last 24 hours, so only a template may be "
        "sent; connect it to a `send_template` node to fall back to one.",
        failure=True,
    ),
    OutcomeSpec(
        "failed",
        "The message could not be sent (closed chatroom, unknown chatroom, unset variable…); "
        "the step's error says why.",
        failure=True,
    ),
)

CHAT_INSTANCE = ParamSpec(
    "chatInstanceId",
    ParamType.STRING,
    True,
    "The chatroom to act on. `{chatInstanceId}` is the chatroom the trigger is about.",
    example="{chatInstanceId}",
    maximum=64,
)

MAX_WAIT_BUTTONS = 10

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        key="send_message",
        title="Send a Message to a Chat Instance",
        category="Chat Management",
        kind=ActionKind.ACTION,
        description=(
            "Sends `message` into chatroom `chatInstanceId` as the bot, under R3 (it bumps the "
            "chatroom) and R4 (free-form text only while the 24-hour window is open)."
        ),
        params=(
            ParamSpec(
                "message",
                ParamType.STRING,
                True,
                "The content of the message; variables personalise it.",
                example="Your order has been confirmed. Let us know if you need further "
                "assistance.",
                maximum=4096,
            ),
            CHAT_INSTANCE,
        ),
        outcomes=SEND_OUTCOMES,
        outputs=(OutputSpec("message_id", "string", "The id of the message sent."),),
    ),
    ActionSpec(
        key="send_template",
        title="Send Template Message",
        category="Chat Management",
        kind=ActionKind.ACTION,
        description=(
            "Sends an APPROVED template into chatroom `chatInstanceId` as the bot. Templates "
            "may be sent outside the 24-hour window (R4); the flags are R5's."
        ),
        params=(
            CHAT_INSTANCE,
            ParamSpec(
                "template",
                ParamType.STRING,
                True,
                "The template's name.",
                "order_update",
                None,
                512,
            ),
            ParamSpec(
                "language", ParamType.STRING, True, "The template's language.", "en_US", None, 15
            ),
            ParamSpec(
                "variables",
                ParamType.TEMPLATE_VARIABLES,
                False,
                "Values for the template's `{{n}}` placeholders, in order.",
                example={"body": ["{contact.first_name}", "{order_id}"]},
                default={"header": [], "body": [], "buttons": {}},
            ),
            ParamSpec(
                "relay_response",
                ParamType.BOOLEAN,
                False,
                "R6: a button tap on it is sent to the organization's webhook.",
                default=False,
            ),
            ParamSpec("bump", ParamType.BOOLEAN, False, "R3: sending it bumps.", default=True),
            ParamSpec(
                "bump_response",
                ParamType.BOOLEAN,
                False,
                "R5: a button tap on it bumps.",
                default=True,
            ),
        ),
        outcomes=(
            OutcomeSpec("sent", "The template message was stored and handed to the channel."),
            SEND_OUTCOMES[1],
            OutcomeSpec(
                "failed",
                "Not sent: unknown or unapproved template, wrong variables, contact not opted "
                "in, closed chatroom…; the step's error says why.",
                failure=True,
            ),
        ),
        outputs=(OutputSpec("message_id", "string", "The id of the message sent."),),
    ),
    ActionSpec(
        key="create_contact",
        title="Create Contact",
        category="Contacts",
        kind=ActionKind.ACTION,
        description=(
            "Creates a contact, or finds the organization's contact with this phone number "
            "(one contact per phone)."
        ),
        params=(
            ParamSpec(
                "phone",
                ParamType.STRING,
                True,
                "Any format; stored as E.164.",
                "+14155550123",
                None,
                64,
            ),
            ParamSpec(
                "first_name",
                ParamType.STRING,
                False,
                "First name.",
                "{trigger.body.name}",
                None,
                128,
            ),
            ParamSpec("last_name", ParamType.STRING, False, "Last name.", None, None, 128),
            ParamSpec(
                "opted_in",
                ParamType.BOOLEAN,
                False,
                "Whether the contact agreed to receive templates.",
                default=False,
            ),
        ),
        outcomes=(
            OutcomeSpec("created", "A new contact was created."),
            OutcomeSpec("existing", "A contact with this phone already existed; it is used."),
            OutcomeSpec("failed", "The phone number is not valid.", failure=True),
        ),
        outputs=(OutputSpec("contact_id", "string", "The contact's id."),),
    ),
    ActionSpec(
        key="create_chatroom",
        title="Create Chatroom",
        category="Chat Management",
        kind=ActionKind.ACTION,
        description=(
            "Opens a chatroom between a contact and agents on a channel (R2: the contact's "
            "open chatroom on that channel is reused). With `assign_on_handover` the agents "
            "join when the customer first writes (R8)."
        ),
        params=(
            ParamSpec(
                "contact_id",
                ParamType.STRING,
                True,
                "The contact.",
                "{steps.contact.contact_id}",
                None,
                64,
            ),
            ParamSpec("channel_id", ParamType.STRING, True, "The channel.", "ch_…", None, 64),
            ParamSpec(
                "participants",
                ParamType.STRING_LIST,
                False,
                "Agent ids.",
                example=["ag_…"],
                default=[],
            ),
            ParamSpec(
                "assign_on_handover",
                ParamType.BOOLEAN,
                False,
                "R8: the agents are assigned when the customer answers, not now.",
                default=False,
            ),
        ),
        outcomes=(
            OutcomeSpec("created", "A new chatroom was opened."),
            OutcomeSpec("existing", "The contact's open chatroom on the channel is used."),
            OutcomeSpec("failed", "Unknown contact, channel or agent.", failure=True),
        ),
        outputs=(OutputSpec("chatroom_id", "string", "The chatroom's id."),),
    ),
    ActionSpec(
        key="reassign_chatroom",
        title="Reassign Chatroom",
        category="Chat Management",
        kind=ActionKind.ACTION,
        description="R9: sets the chatroom's agents; a pending assign-on-handover is dropped.",
        params=(
            CHAT_INSTANCE,
            ParamSpec("agents", ParamType.STRING_LIST, True, "Agent ids.", ["ag_…"]),
        ),
        outcomes=(
            OutcomeSpec("done", "The chatroom has these agents now."),
            OutcomeSpec("failed", "Unknown chatroom or agent.", failure=True),
        ),
    ),
    ActionSpec(
        key="http_request",
        title="HTTP Request",
        category="Integrations",
        kind=ActionKind.ACTION,
        description=(
            "Calls an HTTP endpoint. The webhook URL guard applies (no private addresses unless "
            "allowed). The request carries an `Idempotency-Key` made from the run and the step, "
            "the same on every retry. `save` copies parts of the response into variables."
        ),
        params=(
            ParamSpec(
                "method",
                ParamType.CHOICE,
                False,
                "The HTTP method.",
                default="POST",
                choices=("GET", "POST", "PUT", "PATCH", "DELETE"),
            ),
            ParamSpec(
                "url",
                ParamType.STRING,
                True,
                "http or https URL.",
                "https://shop.example/orders/{order_id}",
                None,
                2048,
            ),
            ParamSpec(
                "headers",
                ParamType.STRING_MAP,
                False,
                "Request headers.",
                example={"Authorization": "Bearer {api_token}"},
                default={},
            ),
            ParamSpec(
                "body",
                ParamType.JSON,
                False,
                "A JSON body: its strings take variables and values are inserted as JSON, so "
                "the body stays valid whatever the customer wrote.",
                example={"chatroom": "{chatInstanceId}", "text": "{message.text}"},
            ),
            ParamSpec(
                "timeout_seconds",
                ParamType.INTEGER,
                False,
                "How long to wait for the answer.",
                default=10,
                minimum=1,
                maximum=LIMITS.max_http_timeout_seconds,
            ),
            ParamSpec(
                "save",
                ParamType.RESPONSE_MAPPING,
                False,
                "Variables to set from the response: name → path (`status`, `body.x.y`, "
                "`headers.etag`).",
                example={"order_status": "body.status"},
                default={},
            ),
        ),
        outcomes=(
            OutcomeSpec("success", "The endpoint answered 2xx."),
            OutcomeSpec(
                "error",
                "Any other answer, a timeout, or a refused URL; `{steps.<id>.status}` is 0 "
                "when nothing was answered.",
                failure=True,
            ),
        ),
        outputs=(
            OutputSpec("status", "integer", "The HTTP status (0: no answer)."),
            OutputSpec("body", "json", "The answer, parsed as JSON when it is JSON.", open=True),
            OutputSpec("headers", "object", "The answer's headers, lower-cased.", open=True),
        ),
    ),
    ActionSpec(
        key="set_variable",
        title="Set Variable",
        category="Variables",
        kind=ActionKind.ACTION,
        description=(
            "Sets `{name}` for the rest of the run. A value that is exactly one variable keeps "
            "its type (a number stays a number)."
        ),
        params=(
            ParamSpec("name", ParamType.NAME, True, "The variable's name.", "order_id", None, 64),
            ParamSpec(
                "value", ParamType.STRING, True, "Its value.", "{trigger.body.order.id}", None, 8192
            ),
        ),
        outcomes=(OutcomeSpec("next", "Always."),),
        outputs=(OutputSpec("value", "json", "The value set.", open=True),),
    ),
    ActionSpec(
        key="condition",
        title="Condition",
        category="Logic",
        kind=ActionKind.LOGIC,
        description=(
            "Takes the first branch whose rules hold, else `else`. A branch is "
            '`{"outcome": "vip", "match": "all"|"any", "rules": [{"value": "{contact.email}", '
            '"operator": "ends_with", "compare_to": "@vip.example"}]}`. Operators: equals, '
            "not_equals, contains, not_contains, starts_with, ends_with, is_empty, "
            "is_not_empty, greater_than, less_than (numbers). Text comparisons ignore case."
        ),
        params=(
            ParamSpec(
                "branches",
                ParamType.BRANCHES,
                True,
                "Ordered branches.",
                example=[
                    {
                        "outcome": "yes",
                        "match": "any",
                        "rules": [
                            {"value": "{message.text}", "operator": "contains", "compare_to": "yes"}
                        ],
                    }
                ],
            ),
        ),
        outcomes=(
            OutcomeSpec("<branch outcome>", "One per branch, named by it.", dynamic=True),
            OutcomeSpec("else", "No branch held."),
        ),
    ),
    ActionSpec(
        key="wait_for_reply",
        title="Wait for Reply",
        category="Logic",
        kind=ActionKind.LOGIC,
        description=(
            "Waits for the customer's next message in the chatroom. A tap on button N of a "
            "template takes `button_N` (N from 0, as in the template) when it is connected, else "
            "`reply`. The wait survives "
            "restarts and its timeout fires once."
        ),
        params=(
            CHAT_INSTANCE,
            ParamSpec(
                "timeout_seconds",
                ParamType.INTEGER,
                True,
                "How long to wait before `timeout`.",
                example=3600,
                minimum=1,
                maximum=LIMITS.max_wait_seconds,
            ),
            ParamSpec(
                "cancel_on_agent_reply",
                ParamType.BOOLEAN,
                False,
                "End the run when an agent writes in the chatroom first.",
                default=False,
            ),
        ),
        outcomes=(
            OutcomeSpec("reply", "The customer wrote (or tapped an unconnected button)."),
            OutcomeSpec(
                "button_<n>",
                "The customer tapped quick-reply button n of a template "
                f"(0–{MAX_WAIT_BUTTONS - 1}, as `button.index`).",
                dynamic=True,
            ),
            OutcomeSpec("timeout", "No reply in time."),
        ),
        outputs=(
            OutputSpec(
                "reply",
                "object",
                "`text`, `message_id`, and `button.index` / `button.text` for a tap.",
                open=True,
            ),
        ),
    ),
    ActionSpec(
        key="delay",
        title="Delay",
        category="Logic",
        kind=ActionKind.LOGIC,
        description="Waits a while, durably: the run resumes after a restart.",
        params=(
            ParamSpec(
                "seconds",
                ParamType.INTEGER,
                True,
                "How long.",
                example=600,
                minimum=1,
                maximum=LIMITS.max_wait_seconds,
            ),
        ),
        outcomes=(OutcomeSpec("next", "When the time has passed."),),
    ),
    ActionSpec(
        key="end",
        title="End",
        category="Logic",
        kind=ActionKind.LOGIC,
        description="Completes the run. An outcome with no edge ends the run too.",
        params=(),
        outcomes=(),
    ),
)

ACTIONS_BY_KEY: dict[str, ActionSpec] = {a.key: a for a in ACTIONS}

_CHATROOM_VARIABLES = (
    VariableSpec("chatInstanceId", "The chatroom the trigger is about."),
    VariableSpec("chatroom.id", "Same as `chatInstanceId`."),
    VariableSpec("chatroom.channel_id", "The chatroom's channel."),
    VariableSpec("contact.id", "The customer."),
    VariableSpec("contact.first_name", "The customer's first name (empty when unknown)."),
    VariableSpec("contact.last_name", "The customer's last name."),
    VariableSpec("contact.name", "First and last name, or the phone number."),
    VariableSpec("contact.phone", "E.164 phone number."),
    VariableSpec("contact.email", "Email."),
    VariableSpec("contact.external_id", "Your own id for the contact."),
    VariableSpec("contact.custom_attributes", "The contact's custom attributes.", open=True),
)
_MESSAGE_VARIABLES = (
    VariableSpec("message.id", "The customer's message."),
    VariableSpec("message.text", "Its text."),
)
_CHANNEL_FILTER = ParamSpec(
    "channel_id", ParamType.STRING, False, "Only chatrooms of this channel.", "ch_…", None, 64
)

TRIGGERS: tuple[TriggerSpec, ...] = (
    TriggerSpec(
        key="message_received",
        title="Message Received",
        description="A customer writes free-flow text (not a button tap).",
        params=(
            _CHANNEL_FILTER,
            ParamSpec(
                "first_message_only",
                ParamType.BOOLEAN,
                False,
                "Only the first message of a chatroom.",
                default=False,
            ),
            ParamSpec(
                "text_operator",
                ParamType.CHOICE,
                False,
                "How `text` must match the message (ignoring case).",
                default="any",
                choices=("any", "equals", "contains", "starts_with"),
            ),
            ParamSpec("text", ParamType.STRING, False, "The text to match.", "order", None, 1024),
        ),
        variables=(*_CHATROOM_VARIABLES, *_MESSAGE_VARIABLES),
        about_chatroom=True,
    ),
    TriggerSpec(
        key="template_response",
        title="Template Response",
        description="A customer taps a quick-reply button of a template message.",
        params=(
            ParamSpec(
                "template",
                ParamType.STRING,
                False,
                "Only this template (its name).",
                "order_update",
                None,
                512,
            ),
            ParamSpec(
                "button_index",
                ParamType.INTEGER,
                False,
                "Only this button (0-based, as in the template).",
                example=0,
                minimum=0,
                maximum=9,
            ),
            ParamSpec(
                "button_text",
                ParamType.STRING,
                False,
                "Only a button with this label.",
                "Yes",
                None,
                25,
            ),
        ),
        variables=(
            *_CHATROOM_VARIABLES,
            *_MESSAGE_VARIABLES,
            VariableSpec("button.index", "The button tapped (0-based)."),
            VariableSpec("button.text", "Its label."),
            VariableSpec("button.payload", "Its payload."),
            VariableSpec("template.name", "The template tapped."),
            VariableSpec("template.language", "Its language."),
            VariableSpec("template.message_id", "The template message tapped."),
        ),
        about_chatroom=True,
    ),
    TriggerSpec(
        key="chatroom_created",
        title="Chatroom Created",
        description="A chatroom is created (by the API, an agent, or a customer writing first).",
        params=(_CHANNEL_FILTER,),
        variables=_CHATROOM_VARIABLES,
        about_chatroom=True,
    ),
    TriggerSpec(
        key="incoming_webhook",
        title="Incoming Webhook",
        description=(
            "A POST to the flow's own URL, `/hooks/flows/{flow_id}`, carrying the flow's secret "
            "in the `X-Chatflow-Secret` header."
        ),
        params=(),
        variables=(
            VariableSpec("trigger.body", "The request's JSON body.", open=True),
            VariableSpec("trigger.headers", "Its headers, lower-cased.", open=True),
            VariableSpec("trigger.query", "Its query parameters.", open=True),
        ),
        about_chatroom=False,
    ),
    TriggerSpec(
        key="schedule",
        title="Schedule",
        description="At the times of a cron expression, in a time zone.",
        params=(
            ParamSpec(
                "cron",
                ParamType.STRING,
                True,
                "Five fields: minute hour day month weekday.",
                "0 9 * * MON-FRI",
                None,
                200,
            ),
            ParamSpec(
                "timezone", ParamType.STRING, False, "IANA time zone.", "Europe/Madrid", "UTC", 64
            ),
        ),
        variables=(VariableSpec("trigger.scheduled_at", "The time it was due (ISO 8601, UTC)."),),
        about_chatroom=False,
    ),
    TriggerSpec(
        key="manual",
        title="Manual / API",
        description=(
            "`POST /v1/flows/{id}/runs` with `inputs`, and a `chatroom_id` when the flow is "
            "about a chatroom."
        ),
        params=(
            ParamSpec(
                "inputs",
                ParamType.STRING_LIST,
                False,
                "The names of the inputs a run takes, each `{inputs.<name>}`.",
                example=["order_id"],
                default=[],
            ),
            ParamSpec(
                "chatroom",
                ParamType.BOOLEAN,
                False,
                "Runs are about a chatroom: `chatroom_id` is required to start one.",
                default=False,
            ),
        ),
        variables=(VariableSpec("inputs", "The run's inputs.", open=True),),
        about_chatroom=False,
    ),
)

TRIGGERS_BY_KEY: dict[str, TriggerSpec] = {t.key: t for t in TRIGGERS}

RUN_VARIABLES = (
    VariableSpec("run.id", "This run."),
    VariableSpec("flow.id", "This flow."),
)

RESERVED_NAMES = frozenset(
    {"chatInstanceId", "chatroom", "contact", "message", "button", "template", "trigger"}
    | {"inputs", "steps", "run", "flow"}
)
"""Roots set by the engine: `set_variable` may not take them."""


def _param_view(param: ParamSpec) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": param.name,
        "type": param.type.value,
        "required": param.required,
        "description": param.description,
        "example": param.example,
    }
    if param.default is not None:
        view["default"] = param.default
    if param.minimum is not None:
        view["minimum"] = param.minimum
    if param.maximum is not None:
        view["maximum"] = param.maximum
    if param.choices:
        view["choices"] = list(param.choices)
    return view


def catalog_view() -> dict[str, Any]:
    """The catalog as `GET /v1/flow-actions` serves it."""
    return {
        "actions": [
            {
                "key": a.key,
                "title": a.title,
                "category": a.category,
                "kind": a.kind.value,
                "description": a.description,
                "parameters": [_param_view(p) for p in a.params],
                "outcomes": [
                    {
                        "name": o.name,
                        "description": o.description,
                        "failure": o.failure,
                        "dynamic": o.dynamic,
                    }
                    for o in a.outcomes
                ],
                "outputs": [
                    {"name": o.name, "type": o.type, "description": o.description, "open": o.open}
                    for o in a.outputs
                ],
            }
            for a in ACTIONS
        ],
        "triggers": [
            {
                "key": t.key,
                "title": t.title,
                "description": t.description,
                "parameters": [_param_view(p) for p in t.params],
                "variables": [
                    {"path": v.path, "description": v.description, "open": v.open}
                    for v in (*t.variables, *RUN_VARIABLES)
                ],
                "about_chatroom": t.about_chatroom,
            }
            for t in TRIGGERS
        ],
        "limits": {name: getattr(LIMITS, name) for name in LIMITS.__dataclass_fields__},
    }
