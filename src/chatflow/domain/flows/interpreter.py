"""The flow interpreter: runs a deployed document's nodes, one step at a time, until the run
waits or ends. Pure: what it does to the world goes through `Effects`, and what the world answers
later (a reply, a timer, an HTTP response) comes back in as a `Resume`.

The same interpreter runs real runs (effects on the database, in the step's own transaction) and
test runs (effects on a simulated chatroom): a test run exercises exactly the code a deployed flow
runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from chatflow.domain.flows import variables
from chatflow.domain.flows.catalog import LIMITS, ParamType
from chatflow.domain.flows.document import FlowDocument, Node
from chatflow.domain.models import MessageFlags
from chatflow.domain.templates import TemplateVariables

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ActionResult:
    outcome: str
    output: JsonObject = field(default_factory=dict)
    error: JsonObject | None = None


class Effects(Protocol):
    """What the actions do to the world. Each call either does all of its effect or none, and
    answers with the action's outcome; a refusal is an outcome (`failed`), never an exception."""

    def send_message(self, chatroom_id: str, text: str) -> ActionResult: ...

    def send_template(
        self,
        chatroom_id: str,
        template: str,
        language: str,
        variables: TemplateVariables,
        flags: MessageFlags,
    ) -> ActionResult: ...

    def create_contact(
        self, phone: str, first_name: str | None, last_name: str | None, opted_in: bool
    ) -> ActionResult: ...

    def create_chatroom(
        self,
        contact_id: str,
        channel_id: str,
        participants: list[str],
        assign_on_handover: bool,
    ) -> ActionResult: ...

    def reassign_chatroom(self, chatroom_id: str, agents: list[str]) -> ActionResult: ...

    def has_chatroom(self, chatroom_id: str) -> bool:
        """Whether the organization has this chatroom: a run waits only in its own."""
        ...


@dataclass(frozen=True, slots=True)
class Step:
    """One node run, as the run history shows it."""

    number: int
    node: str
    action: str
    params: JsonObject
    """After interpolation: what the action really got."""
    outcome: str | None
    output: JsonObject
    error: JsonObject | None
    started_at: int
    ended_at: int


@dataclass(frozen=True, slots=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout_seconds: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Waiting:
    kind: Literal["reply", "delay", "http"]
    until: int | None
    """When the timer fires (reply: its timeout; delay: its end); None for HTTP."""
    chatroom_id: str | None = None
    cancel_on_agent_reply: bool = False
    call: HttpCall | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    status: Literal["completed", "failed"]
    error: JsonObject | None = None


Stop = Waiting | Finished


@dataclass(frozen=True, slots=True)
class Resume:
    """What ended a wait: the outcome of the waiting node, and its output."""

    outcome: str
    output: JsonObject = field(default_factory=dict)
    error: JsonObject | None = None


@dataclass(slots=True)
class RunState:
    """Everything a run needs to go on, stored as JSON with the run."""

    run_id: str
    node: str | None
    """The node to run next, or the one the run waits at."""
    namespace: JsonObject
    visits: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    pending: JsonObject | None = None
    """The waiting node's step so far: its number, parameters and start."""
    started_at: int = 0

    def to_json(self) -> JsonObject:
        return {
            "run_id": self.run_id,
            "node": self.node,
            "namespace": self.namespace,
            "visits": self.visits,
            "steps": self.steps,
            "pending": self.pending,
            "started_at": self.started_at,
        }

    @classmethod
    def from_json(cls, data: JsonObject) -> RunState:
        return cls(
            data["run_id"],
            data["node"],
            data["namespace"],
            dict(data["visits"]),
            int(data["steps"]),
            data["pending"],
            int(data.get("started_at", 0)),
        )


@dataclass(frozen=True, slots=True)
class Advance:
    steps: list[Step]
    stop: Stop


def start(document: FlowDocument, run_id: str, context: JsonObject, now: int) -> RunState:
    """A run's first state: `context` holds the trigger's variables."""
    namespace = copy.deepcopy(context)
    namespace["steps"] = {}
    return RunState(run_id, document.start, namespace, started_at=now)


class _StepError(Exception):
    """The node cannot run; the run fails unless the node has a failure outcome to take."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message}


def advance(
    document: FlowDocument,
    state: RunState,
    effects: Effects,
    now: int,
    resume: Resume | None = None,
) -> Advance:
    """Run from where `state` is until the run waits or ends. `state` is updated in place."""
    steps: list[Step] = []
    if now - state.started_at > LIMITS.max_run_age_seconds * 1000:
        state.pending = None
        return Advance(
            steps,
            _limit("run_age_limit", f"older than {LIMITS.max_run_age_seconds // 86400} days"),
        )
    if resume is not None:
        stop = _finish_pending(document, state, resume, now, steps)
        if stop is not None:
            return Advance(steps, stop)
    while True:
        if state.node is None:
            return Advance(steps, Finished("completed"))
        node = document.node(state.node)
        if node is None:
            return Advance(
                steps, Finished("failed", {"code": "unknown_node", "message": state.node})
            )
        state.steps += 1
        if state.steps > LIMITS.max_steps_per_run:
            return Advance(
                steps, _limit("step_limit", f"more than {LIMITS.max_steps_per_run} steps")
            )
        visits = state.visits.get(node.id, 0) + 1
        state.visits[node.id] = visits
        if visits > LIMITS.max_node_repeats:
            return Advance(
                steps,
                _limit(
                    "repeat_limit",
                    f"node {node.id!r} ran more than {LIMITS.max_node_repeats} times",
                ),
            )
        outcome: str | None
        output: JsonObject
        error: JsonObject | None
        params: JsonObject = {}
        try:
            params = _interpolate(node, state.namespace)
            if node.action in _WAITS:
                wait = _WAITS[node.action](params, state, now, effects)
                state.pending = {"number": state.steps, "params": params, "started_at": now}
                return Advance(steps, wait)
            result = _run(node, params, state, effects)
        except _StepError as failure:
            outcome, output, error = None, {}, failure.error
        else:
            outcome, output, error = result.outcome, result.output, result.error
        if outcome is None:
            outcome = _failure_outcome(node)
        steps.append(
            Step(state.steps, node.id, node.action, params, outcome, output, error, now, now)
        )
        if node.spec.outputs:
            state.namespace["steps"][node.id] = output
        stop = _follow(document, node, outcome, error, state)
        if stop is not None:
            return Advance(steps, stop)


def _limit(code: str, message: str) -> Finished:
    return Finished("failed", {"code": code, "message": message})


def _failure_outcome(node: Node) -> str | None:
    return next(
        (o.name for o in node.spec.outcomes if o.failure and o.name != "window_closed"), None
    )


def _follow(
    document: FlowDocument,
    node: Node,
    outcome: str | None,
    error: JsonObject | None,
    state: RunState,
) -> Stop | None:
    """Move to the node the outcome's edge leads to; a stop when there is none."""
    target = None if outcome is None else document.next_node(node.id, outcome)
    if target is not None:
        state.node = target
        return None
    state.node = None
    spec = None if outcome is None else node.spec.outcome(outcome)
    if outcome is None or (spec is not None and spec.failure):
        return Finished(
            "failed",
            {
                "code": "step_failed",
                "message": f"Node {node.id!r} ended with {outcome or 'an error'} and no edge "
                "handles it",
                "node": node.id,
                "outcome": outcome,
                "cause": error,
            },
        )
    return Finished("completed")


def _finish_pending(
    document: FlowDocument, state: RunState, resume: Resume, now: int, steps: list[Step]
) -> Stop | None:
    pending = state.pending
    node = None if state.node is None else document.node(state.node)
    if pending is None or node is None:
        raise ValueError("The run is not waiting")
    outcome, output = resume.outcome, resume.output
    if (
        node.action == "wait_for_reply"
        and outcome.startswith("button_")
        and not document.has_edge(node.id, outcome)
    ):
        outcome = "reply"
    if node.action == "http_request":
        for name, path in (node.value("save") or {}).items():
            try:
                state.namespace[name] = variables.resolve(output, tuple(path.split(".")))
            except variables.UnsetVariableError:
                state.namespace[name] = None
    if node.spec.outputs:
        state.namespace["steps"][node.id] = output
    state.pending = None
    steps.append(
        Step(
            pending["number"],
            node.id,
            node.action,
            pending["params"],
            outcome,
            output,
            resume.error,
            pending["started_at"],
            now,
        )
    )
    return _follow(document, node, outcome, resume.error, state)


# -- parameters ----------------------------------------------------------------------------------


def _interpolate(node: Node, namespace: JsonObject) -> JsonObject:
    """The node's parameters with every variable replaced (R10); defaults filled in."""
    params: JsonObject = {}
    try:
        for spec in node.spec.params:
            value = node.value(spec.name)
            if value is None:
                continue
            kind = spec.type
            if kind is ParamType.STRING:
                value = (
                    variables.render_value(value, namespace)
                    if node.action == "set_variable"
                    else variables.render(value, namespace)
                )
            elif kind is ParamType.STRING_LIST:
                value = [variables.render(v, namespace) for v in value]
            elif kind is ParamType.STRING_MAP:
                value = {k: variables.render(v, namespace) for k, v in value.items()}
            elif kind is ParamType.JSON:
                value = variables.render_tree(value, namespace)
            elif kind is ParamType.TEMPLATE_VARIABLES:
                value = {
                    "header": [variables.render(v, namespace) for v in value.get("header", [])],
                    "body": [variables.render(v, namespace) for v in value.get("body", [])],
                    "buttons": {
                        k: [variables.render(v, namespace) for v in vs]
                        for k, vs in value.get("buttons", {}).items()
                    },
                }
            elif kind is ParamType.BRANCHES:
                value = [
                    {
                        "outcome": branch["outcome"],
                        "match": branch.get("match", "all"),
                        "rules": [
                            {
                                "value": variables.render_value(rule["value"], namespace),
                                "operator": rule["operator"],
                                **(
                                    {"compare_to": variables.render(rule["compare_to"], namespace)}
                                    if "compare_to" in rule
                                    else {}
                                ),
                            }
                            for rule in branch["rules"]
                        ],
                    }
                    for branch in value
                ]
            params[spec.name] = copy.deepcopy(value)
    except variables.UnsetVariableError as exc:
        raise _StepError("variable_unset", str(exc)) from exc
    return params


# -- actions ---------------------------------------------------------------------------------


def _run(node: Node, params: JsonObject, state: RunState, effects: Effects) -> ActionResult:
    action = node.action
    if action == "send_message":
        return effects.send_message(params["chatInstanceId"], params["message"])
    if action == "send_template":
        values = params["variables"]
        return effects.send_template(
            params["chatInstanceId"],
            params["template"],
            params["language"],
            TemplateVariables(
                header=tuple(values["header"]),
                body=tuple(values["body"]),
                buttons={int(k): tuple(v) for k, v in values["buttons"].items()},
            ),
            MessageFlags(
                relay_response=params["relay_response"],
                bump=params["bump"],
                bump_response=params["bump_response"],
            ),
        )
    if action == "create_contact":
        return effects.create_contact(
            params["phone"],
            params.get("first_name") or None,
            params.get("last_name") or None,
            params["opted_in"],
        )
    if action == "create_chatroom":
        return effects.create_chatroom(
            params["contact_id"],
            params["channel_id"],
            params["participants"],
            params["assign_on_handover"],
        )
    if action == "reassign_chatroom":
        return effects.reassign_chatroom(params["chatInstanceId"], params["agents"])
    if action == "set_variable":
        state.namespace[params["name"]] = params["value"]
        return ActionResult("next", {"value": params["value"]})
    if action == "condition":
        return ActionResult(_choose_branch(params["branches"]))
    if action == "end":
        return ActionResult("end")
    raise AssertionError(f"unhandled action {action}")


def _wait_for_reply(params: JsonObject, state: RunState, now: int, effects: Effects) -> Waiting:
    chatroom_id = params["chatInstanceId"]
    if not chatroom_id or not effects.has_chatroom(chatroom_id):
        raise _StepError("not_found", f"No chatroom {chatroom_id!r} to wait in")
    return Waiting(
        "reply",
        now + params["timeout_seconds"] * 1000,
        chatroom_id=chatroom_id,
        cancel_on_agent_reply=params["cancel_on_agent_reply"],
    )


def _delay(params: JsonObject, state: RunState, now: int, effects: Effects) -> Waiting:
    return Waiting("delay", now + params["seconds"] * 1000)


def http_call(params: JsonObject, run_id: str, step: int) -> HttpCall:
    """The request an `http_request` step makes, from its interpolated parameters."""
    return HttpCall(
        method=params["method"],
        url=params["url"],
        headers=params["headers"],
        body=params.get("body"),
        timeout_seconds=params["timeout_seconds"],
        # The same on every attempt of this step, so the peer can tell a retry from a new call.
        idempotency_key=f"{run_id}.{step}",
    )


def _http(params: JsonObject, state: RunState, now: int, effects: Effects) -> Waiting:
    return Waiting("http", None, call=http_call(params, state.run_id, state.steps))


_WAITS = {"wait_for_reply": _wait_for_reply, "delay": _delay, "http_request": _http}


def _choose_branch(branches: list[JsonObject]) -> str:
    for branch in branches:
        results = (_holds(rule) for rule in branch["rules"])
        held = all(results) if branch["match"] == "all" else any(results)
        if held:
            return str(branch["outcome"])
    return "else"


def _holds(rule: JsonObject) -> bool:
    operator = rule["operator"]
    value = rule["value"]
    text = variables.to_text(value).casefold()
    empty = value is None or value in ("", [], {})
    if operator == "is_empty":
        return empty
    if operator == "is_not_empty":
        return not empty
    other = str(rule["compare_to"]).casefold()
    if operator == "equals":
        return text == other
    if operator == "not_equals":
        return text != other
    if operator == "contains":
        return other in text
    if operator == "not_contains":
        return other not in text
    if operator == "starts_with":
        return text.startswith(other)
    if operator == "ends_with":
        return text.endswith(other)
    left, right = _number(text), _number(other)
    if left is None or right is None:
        return False
    return left > right if operator == "greater_than" else left < right


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
