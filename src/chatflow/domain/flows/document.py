"""The flow document: one trigger, nodes, edges (node + outcome → node), settings, and the
canvas layout kept apart from the logic, so a review of a change to the logic is not buried in
moved boxes.

`parse` reads the shape (and fails on a document it cannot read at all); `validate` checks what
the shape means against the catalog and reports every problem at once, each with a JSON pointer,
the node and the parameter, so a builder can mark them all in one round trip. `dump` writes the
JSON back: `parse(dump(document)) == document`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

from chatflow.domain.errors import ValidationError
from chatflow.domain.flows import variables
from chatflow.domain.flows.catalog import (
    ACTIONS_BY_KEY,
    LIMITS,
    MAX_WAIT_BUTTONS,
    RESERVED_NAMES,
    RUN_VARIABLES,
    TRIGGERS_BY_KEY,
    ActionSpec,
    ParamSpec,
    ParamType,
    TriggerSpec,
)

NODE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
CONDITION_OPERATORS = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "is_empty",
    "is_not_empty",
    "greater_than",
    "less_than",
)
UNARY_OPERATORS = ("is_empty", "is_not_empty")
ON_CONFLICT = ("skip", "replace")
MAX_JSON_DEPTH = 32
"""How deeply JSON given to a flow (a document, inputs, a webhook body) may nest."""
RESPONSE_ROOTS = ("status", "body", "headers")


@dataclass(frozen=True, slots=True)
class Trigger:
    type: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> TriggerSpec:
        return TRIGGERS_BY_KEY[self.type]

    def value(self, name: str) -> Any:
        """The parameter as given, or its default."""
        if name in self.params:
            return self.params[name]
        spec = self.spec.param(name)
        return None if spec is None else spec.default


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    action: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ActionSpec:
        return ACTIONS_BY_KEY[self.action]

    def value(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        spec = self.spec.param(name)
        return None if spec is None else spec.default

    def outcomes(self) -> list[str]:
        """The outcomes an edge may leave this node by."""
        if self.action == "condition":
            branches = self.params.get("branches")
            names = [
                b["outcome"]
                for b in (branches if isinstance(branches, list) else [])
                if isinstance(b, dict) and isinstance(b.get("outcome"), str)
            ]
            return [*names, "else"]
        if self.action == "wait_for_reply":
            buttons = [f"button_{n}" for n in range(MAX_WAIT_BUTTONS)]
            return ["reply", *buttons, "timeout"]
        return [o.name for o in self.spec.outcomes]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    outcome: str
    target: str


@dataclass(frozen=True, slots=True)
class FlowSettings:
    on_conflict: str = "skip"
    """A trigger for a chatroom that already has a run of this flow: `skip` records it and does
    nothing; `replace` cancels the running one and starts anew."""
    end_on_handover: bool = False
    """End the run when the chatroom is handed over to an agent (R8)."""


@dataclass(frozen=True, slots=True)
class FlowDocument:
    trigger: Trigger
    start: str | None
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    settings: FlowSettings = FlowSettings()
    layout: dict[str, Any] = field(default_factory=dict)
    """The canvas (positions, zoom): the builder's, never read by the engine."""

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def next_node(self, node_id: str, outcome: str) -> str | None:
        return next(
            (e.target for e in self.edges if e.source == node_id and e.outcome == outcome), None
        )

    def has_edge(self, node_id: str, outcome: str) -> bool:
        return any(e.source == node_id and e.outcome == outcome for e in self.edges)


@dataclass(frozen=True, slots=True)
class Problem:
    pointer: str
    code: str
    message: str
    node: str | None = None
    parameter: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "pointer": self.pointer,
            "code": self.code,
            "message": self.message,
            "node": self.node,
            "parameter": self.parameter,
        }


@dataclass(frozen=True, slots=True)
class Validation:
    valid: bool
    errors: list[Problem]
    warnings: list[Problem]


class FlowDocumentError(ValidationError):
    code = "flow_invalid"
    title = "The flow document is not valid"


def raise_if_any(problems: list[Problem], subject: str = "The flow") -> None:
    if problems:
        raise FlowDocumentError(
            f"{subject} has {len(problems)} problem(s); the first: {problems[0].message}",
            errors=[p.view() for p in problems],
        )


# -- reading the shape ---------------------------------------------------------------------------

_TOP_KEYS = frozenset({"trigger", "start", "nodes", "edges", "settings", "layout"})


def parse(raw: object) -> FlowDocument:
    """The document, or a `FlowDocumentError` listing every problem of shape."""
    problems: list[Problem] = []
    document = _parse(raw, problems)
    raise_if_any(problems)
    assert document is not None
    return document


def _parse(raw: object, problems: list[Problem]) -> FlowDocument | None:
    def bad(pointer: str, code: str, message: str) -> None:
        problems.append(Problem(pointer, code, message))

    if not isinstance(raw, dict):
        bad("", "not_an_object", "A flow document is a JSON object")
        return None
    for key in sorted(set(raw) - _TOP_KEYS):
        bad(f"/{_escape(key)}", "unknown_field", f"Unknown field {key!r}")

    trigger = _parse_trigger(raw.get("trigger"), bad)

    start = raw.get("start")
    if start is not None and not isinstance(start, str):
        bad("/start", "wrong_type", "`start` is a node id")
        start = None

    nodes: list[Node] = []
    raw_nodes = raw.get("nodes", [])
    if not isinstance(raw_nodes, list):
        bad("/nodes", "wrong_type", "`nodes` is a list")
        raw_nodes = []
    for index, item in enumerate(raw_nodes):
        node = _parse_node(item, f"/nodes/{index}", bad)
        if node is not None:
            nodes.append(node)

    edges: list[Edge] = []
    raw_edges = raw.get("edges", [])
    if not isinstance(raw_edges, list):
        bad("/edges", "wrong_type", "`edges` is a list")
        raw_edges = []
    for index, item in enumerate(raw_edges):
        pointer = f"/edges/{index}"
        if not isinstance(item, dict) or set(item) != {"from", "outcome", "to"}:
            bad(pointer, "wrong_type", 'An edge is {"from": node, "outcome": name, "to": node}')
            continue
        if not all(isinstance(item[k], str) for k in ("from", "outcome", "to")):
            bad(pointer, "wrong_type", "An edge's from, outcome and to are strings")
            continue
        edges.append(Edge(item["from"], item["outcome"], item["to"]))

    settings = _parse_settings(raw.get("settings", {}), bad)

    layout = raw.get("layout", {})
    if not isinstance(layout, dict):
        bad("/layout", "wrong_type", "`layout` is an object")
        layout = {}

    if trigger is None or problems:
        return None
    return FlowDocument(trigger, start, tuple(nodes), tuple(edges), settings, layout)


def _parse_trigger(raw: object, bad: Any) -> Trigger | None:
    if raw is None:
        bad("/trigger", "missing_trigger", "A flow has one trigger")
        return None
    if not isinstance(raw, dict) or not set(raw) <= {"type", "params"}:
        bad("/trigger", "wrong_type", 'The trigger is {"type": ..., "params": {...}}')
        return None
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in TRIGGERS_BY_KEY:
        bad(
            "/trigger/type",
            "unknown_trigger",
            f"Unknown trigger {kind!r}; one of {', '.join(TRIGGERS_BY_KEY)}",
        )
        return None
    params = raw.get("params", {})
    if not isinstance(params, dict):
        bad("/trigger/params", "wrong_type", "`params` is an object")
        return None
    return Trigger(kind, dict(params))


def _parse_node(raw: object, pointer: str, bad: Any) -> Node | None:
    if not isinstance(raw, dict) or not {"id", "action"} <= set(raw) <= {"id", "action", "params"}:
        bad(pointer, "wrong_type", 'A node is {"id": ..., "action": ..., "params": {...}}')
        return None
    node_id, action, params = raw["id"], raw["action"], raw.get("params", {})
    if not isinstance(node_id, str):
        bad(f"{pointer}/id", "wrong_type", "A node id is a string")
        return None
    if not isinstance(action, str) or action not in ACTIONS_BY_KEY:
        bad(
            f"{pointer}/action",
            "unknown_action",
            f"Unknown action {action!r}; see GET /v1/flow-actions",
        )
        return None
    if not isinstance(params, dict):
        bad(f"{pointer}/params", "wrong_type", "`params` is an object")
        return None
    return Node(node_id, action, dict(params))


def _parse_settings(raw: object, bad: Any) -> FlowSettings:
    if not isinstance(raw, dict):
        bad("/settings", "wrong_type", "`settings` is an object")
        return FlowSettings()
    for key in sorted(set(raw) - {"on_conflict", "end_on_handover"}):
        bad(f"/settings/{_escape(key)}", "unknown_field", f"Unknown setting {key!r}")
    on_conflict = raw.get("on_conflict", "skip")
    if on_conflict not in ON_CONFLICT:
        bad("/settings/on_conflict", "wrong_value", "`on_conflict` is skip or replace")
        on_conflict = "skip"
    end_on_handover = raw.get("end_on_handover", False)
    if not isinstance(end_on_handover, bool):
        bad("/settings/end_on_handover", "wrong_type", "`end_on_handover` is a boolean")
        end_on_handover = False
    return FlowSettings(on_conflict, end_on_handover)


def dump(document: FlowDocument) -> dict[str, Any]:
    return {
        "trigger": {"type": document.trigger.type, "params": dict(document.trigger.params)},
        "start": document.start,
        "nodes": [
            {"id": n.id, "action": n.action, "params": dict(n.params)} for n in document.nodes
        ],
        "edges": [{"from": e.source, "outcome": e.outcome, "to": e.target} for e in document.edges],
        "settings": {
            "on_conflict": document.settings.on_conflict,
            "end_on_handover": document.settings.end_on_handover,
        },
        "layout": dict(document.layout),
    }


# -- what it means ---------------------------------------------------------------------------------


def check(raw: object) -> tuple[FlowDocument | None, list[Problem]]:
    """Every problem of shape, or else of meaning, of a raw document."""
    problems: list[Problem] = []
    document = _parse(raw, problems)
    if document is None:
        return None, problems
    return document, validate(document)


def validate(document: FlowDocument) -> list[Problem]:
    problems: list[Problem] = []
    _check_trigger(document.trigger, problems)
    if len(document.nodes) > LIMITS.max_nodes:
        problems.append(Problem("/nodes", "too_many_nodes", f"At most {LIMITS.max_nodes} nodes"))
    if len(document.edges) > LIMITS.max_edges:
        problems.append(Problem("/edges", "too_many_edges", f"At most {LIMITS.max_edges} edges"))
    ids: dict[str, int] = {}
    for index, node in enumerate(document.nodes):
        pointer = f"/nodes/{index}"
        if not NODE_ID.match(node.id):
            problems.append(
                Problem(
                    f"{pointer}/id",
                    "invalid_node_id",
                    "A node id is a letter then up to 63 letters, digits, _ or -",
                    node=node.id,
                )
            )
        if node.id in ids:
            problems.append(
                Problem(
                    f"{pointer}/id",
                    "duplicate_node_id",
                    f"Node id {node.id!r} is used twice",
                    node=node.id,
                )
            )
        ids.setdefault(node.id, index)

    if not document.nodes:
        problems.append(Problem("/nodes", "no_nodes", "A flow needs at least one node"))
    elif document.start is None:
        problems.append(Problem("/start", "missing_start", "`start` names the first node"))
    elif document.start not in ids:
        problems.append(
            Problem("/start", "unknown_node", f"`start` names no node ({document.start!r})")
        )

    scope = _scope(document)
    for index, node in enumerate(document.nodes):
        _check_params(node, f"/nodes/{index}", scope, problems)

    by_id = {n.id: n for n in document.nodes}
    seen: set[tuple[str, str]] = set()
    for index, edge in enumerate(document.edges):
        pointer = f"/edges/{index}"
        source = by_id.get(edge.source)
        if source is None:
            problems.append(Problem(f"{pointer}/from", "unknown_node", f"No node {edge.source!r}"))
        elif edge.outcome not in source.outcomes():
            allowed = ", ".join(source.outcomes()) or "none: it ends the run"
            problems.append(
                Problem(
                    f"{pointer}/outcome",
                    "unknown_outcome",
                    f"Node {edge.source!r} ({source.action}) has no outcome {edge.outcome!r}; "
                    f"its outcomes: {allowed}",
                    node=edge.source,
                )
            )
        if edge.target not in by_id:
            problems.append(Problem(f"{pointer}/to", "unknown_node", f"No node {edge.target!r}"))
        if (edge.source, edge.outcome) in seen:
            problems.append(
                Problem(
                    pointer,
                    "duplicate_edge",
                    f"Outcome {edge.outcome!r} of {edge.source!r} already has an edge",
                    node=edge.source,
                )
            )
        seen.add((edge.source, edge.outcome))
    return problems


def unreachable(document: FlowDocument) -> list[str]:
    """Nodes no path from `start` reaches: not an error, but worth a warning."""
    if document.start is None:
        return [n.id for n in document.nodes]
    reached = {document.start}
    frontier = [document.start]
    while frontier:
        current = frontier.pop()
        for edge in document.edges:
            if edge.source == current and edge.target not in reached:
                reached.add(edge.target)
                frontier.append(edge.target)
    return [n.id for n in document.nodes if n.id not in reached]


def _check_trigger(trigger: Trigger, problems: list[Problem]) -> None:
    spec = trigger.spec
    for name in sorted(set(trigger.params) - {p.name for p in spec.params}):
        problems.append(
            Problem(
                f"/trigger/params/{_escape(name)}",
                "unknown_parameter",
                f"Trigger {spec.key} has no parameter {name!r}",
                parameter=name,
            )
        )
    for param in spec.params:
        pointer = f"/trigger/params/{param.name}"
        if param.name not in trigger.params:
            if param.required:
                problems.append(
                    Problem(
                        pointer,
                        "missing_parameter",
                        f"Trigger {spec.key} needs {param.name!r}",
                        parameter=param.name,
                    )
                )
            continue
        for message in _type_problems(param, trigger.params[param.name], None):
            problems.append(Problem(pointer, "invalid_parameter", message, parameter=param.name))
    if trigger.type == "schedule":
        _check_schedule(trigger, problems)
    if trigger.type == "manual":
        for index, name in enumerate(trigger.value("inputs") or []):
            if isinstance(name, str) and not NAME.match(name):
                problems.append(
                    Problem(
                        f"/trigger/params/inputs/{index}",
                        "invalid_parameter",
                        f"Input name {name!r} is not a name (letters, digits, _)",
                        parameter="inputs",
                    )
                )


def _check_schedule(trigger: Trigger, problems: list[Problem]) -> None:
    cron, timezone = trigger.params.get("cron"), trigger.value("timezone")
    zone = None
    if isinstance(timezone, str):
        try:
            zone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(
                Problem(
                    "/trigger/params/timezone",
                    "invalid_parameter",
                    f"Unknown time zone {timezone!r} (an IANA name such as Europe/Madrid)",
                    parameter="timezone",
                )
            )
    if isinstance(cron, str):
        if len(cron.split()) != 5:
            problems.append(
                Problem(
                    "/trigger/params/cron",
                    "invalid_parameter",
                    "A cron expression has five fields: minute hour day month weekday",
                    parameter="cron",
                )
            )
            return
        try:
            next(CronSim(cron, datetime(2026, 1, 1, tzinfo=zone or UTC)))
        except (CronSimError, StopIteration) as exc:
            problems.append(
                Problem(
                    "/trigger/params/cron",
                    "invalid_parameter",
                    f"Not a valid cron expression: {exc or 'it never fires'}",
                    parameter="cron",
                )
            )


def _scope(document: FlowDocument) -> variables.Scope:
    """What the document's parameters may refer to: the trigger's variables, the run's, every
    node's outputs and every variable a node sets. It is not path-sensitive: a variable set on
    another branch is known, and reading it where it was not set fails that step at run time."""
    exact: set[variables.Path] = set()
    open_: set[variables.Path] = set()
    trigger = document.trigger
    specs = list(trigger.spec.variables) + list(RUN_VARIABLES)
    if trigger.type == "manual":
        exact.update(
            ("inputs", name) for name in trigger.value("inputs") or [] if isinstance(name, str)
        )
        specs = [v for v in specs if v.path != "inputs"]
        if trigger.value("chatroom") is True:
            specs += list(TRIGGERS_BY_KEY["chatroom_created"].variables)
    for spec in specs:
        path = tuple(spec.path.split("."))
        (open_ if spec.open else exact).add(path)
    for node in document.nodes:
        for output in node.spec.outputs:
            path = ("steps", node.id, output.name)
            (open_ if output.open else exact).add(path)
        if node.action == "set_variable" and isinstance(node.params.get("name"), str):
            open_.add((node.params["name"],))
        if node.action == "http_request" and isinstance(node.params.get("save"), dict):
            open_.update((name,) for name in node.params["save"] if isinstance(name, str))
    return variables.Scope(frozenset(exact), frozenset(open_))


def _check_params(
    node: Node, pointer: str, scope: variables.Scope, problems: list[Problem]
) -> None:
    spec = node.spec
    for name in sorted(set(node.params) - {p.name for p in spec.params}):
        problems.append(
            Problem(
                f"{pointer}/params/{_escape(name)}",
                "unknown_parameter",
                f"{spec.title} has no parameter {name!r}",
                node=node.id,
                parameter=name,
            )
        )
    for param in spec.params:
        at = f"{pointer}/params/{param.name}"
        if param.name not in node.params:
            if param.required:
                problems.append(
                    Problem(
                        at,
                        "missing_parameter",
                        f"{spec.title} needs {param.name!r}",
                        node=node.id,
                        parameter=param.name,
                    )
                )
            continue
        value = node.params[param.name]
        type_problems = _type_problems(param, value, node)
        for message in type_problems:
            problems.append(
                Problem(at, "invalid_parameter", message, node=node.id, parameter=param.name)
            )
        if type_problems:
            continue
        for text in _template_strings(param, value):
            for reference in variables.references(text):
                if not scope.knows(reference.path):
                    problems.append(
                        Problem(
                            at,
                            "unknown_variable",
                            f"Node {node.id!r}, parameter {param.name!r}: unknown variable "
                            f"{{{reference.dotted}}}",
                            node=node.id,
                            parameter=param.name,
                        )
                    )


def _template_strings(param: ParamSpec, value: Any) -> Iterator[str]:
    """The strings of a parameter that take variables."""
    if param.type is ParamType.STRING:
        yield value
    elif param.type is ParamType.STRING_LIST:
        yield from value
    elif param.type is ParamType.STRING_MAP:
        yield from value.values()
    elif param.type in (ParamType.JSON, ParamType.TEMPLATE_VARIABLES):
        yield from _json_strings(value)
    elif param.type is ParamType.BRANCHES:
        for branch in value:
            for rule in branch["rules"]:
                yield rule["value"]
                if "compare_to" in rule:
                    yield rule["compare_to"]


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)


def _type_problems(param: ParamSpec, value: Any, node: Node | None) -> list[str]:
    """Why `value` does not fit `param` (empty: it fits)."""
    longest = param.maximum or LIMITS.max_string_length
    kind = param.type
    if kind is ParamType.STRING:
        if not isinstance(value, str):
            return ["a string"]
        if len(value) > longest:
            return [f"at most {longest} characters"]
        if param.required and not value.strip():
            return ["must not be empty"]
        return []
    if kind is ParamType.BOOLEAN:
        return [] if isinstance(value, bool) else ["true or false"]
    if kind is ParamType.INTEGER:
        if not isinstance(value, int) or isinstance(value, bool):
            return ["a whole number"]
        if param.minimum is not None and value < param.minimum:
            return [f"at least {param.minimum}"]
        if param.maximum is not None and value > param.maximum:
            return [f"at most {param.maximum}"]
        return []
    if kind is ParamType.CHOICE:
        return [] if value in param.choices else [f"one of {', '.join(param.choices)}"]
    if kind is ParamType.NAME:
        if not isinstance(value, str) or not NAME.match(value):
            return ["a name: a letter or _, then letters, digits or _ (at most 64)"]
        if value in RESERVED_NAMES:
            return [f"{value!r} is set by chatflow; choose another name"]
        return []
    if kind is ParamType.STRING_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return ["a list of strings"]
        if len(value) > 100:
            return ["at most 100 items"]
        return [
            f"item {i}: at most {longest} characters"
            for i, v in enumerate(value)
            if len(v) > longest
        ]
    if kind is ParamType.STRING_MAP:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return ["an object of strings"]
        return [
            f"{k!r}: at most {longest} characters" for k, v in value.items() if len(v) > longest
        ]
    if kind is ParamType.JSON:
        return (
            [] if _json_size_ok(value) else [f"at most {LIMITS.max_string_length * 4} characters"]
        )
    if kind is ParamType.RESPONSE_MAPPING:
        return _mapping_problems(value)
    if kind is ParamType.TEMPLATE_VARIABLES:
        return _template_variables_problems(value)
    if kind is ParamType.BRANCHES:
        return _branches_problems(value)
    raise AssertionError(f"unhandled parameter type {kind}")


def _json_size_ok(value: Any) -> bool:
    return sum(len(s) for s in _json_strings(value)) <= LIMITS.max_string_length * 4


def _mapping_problems(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ["an object: variable name → response path"]
    problems = []
    for name, path in value.items():
        if not NAME.match(name) or name in RESERVED_NAMES:
            problems.append(f"{name!r} is not a free variable name")
        if not isinstance(path, str) or path.split(".")[0] not in RESPONSE_ROOTS:
            problems.append(f"{name!r}: the path starts with status, body or headers")
    return problems


def _string_list_ok(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _template_variables_problems(value: Any) -> list[str]:
    if not isinstance(value, dict) or not set(value) <= {"header", "body", "buttons"}:
        return ['{"header": [..], "body": [..], "buttons": {"0": [..]}}']
    problems = []
    for part in ("header", "body"):
        if part in value and not _string_list_ok(value[part]):
            problems.append(f"`{part}` is a list of strings")
    buttons = value.get("buttons", {})
    if not isinstance(buttons, dict) or not all(
        isinstance(k, str) and k.isascii() and k.isdigit() and _string_list_ok(v)
        for k, v in buttons.items()
    ):
        problems.append('`buttons` maps a button index ("0") to a list of strings')
    return problems


def _branches_problems(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        return ["a non-empty list of branches"]
    if len(value) > LIMITS.max_branches:
        return [f"at most {LIMITS.max_branches} branches"]
    problems: list[str] = []
    outcomes: set[str] = set()
    for index, branch in enumerate(value):
        where = f"branch {index}"
        if not isinstance(branch, dict) or not {"outcome", "rules"} <= set(branch) <= {
            "outcome",
            "match",
            "rules",
        }:
            problems.append(f'{where}: {{"outcome": ..., "match": "all"|"any", "rules": [...]}}')
            continue
        outcome = branch["outcome"]
        if not isinstance(outcome, str) or not OUTCOME.match(outcome) or outcome == "else":
            problems.append(f"{where}: outcome is a lower-case name other than else")
        elif outcome in outcomes:
            problems.append(f"{where}: outcome {outcome!r} is used twice")
        else:
            outcomes.add(outcome)
        if branch.get("match", "all") not in ("all", "any"):
            problems.append(f"{where}: match is all or any")
        rules = branch["rules"]
        if not isinstance(rules, list) or not rules or len(rules) > LIMITS.max_rules_per_branch:
            problems.append(f"{where}: 1–{LIMITS.max_rules_per_branch} rules")
            continue
        for number, rule in enumerate(rules):
            problems.extend(_rule_problems(rule, f"{where}, rule {number}"))
    return problems


def _rule_problems(rule: Any, where: str) -> list[str]:
    if not isinstance(rule, dict) or not {"value", "operator"} <= set(rule) <= {
        "value",
        "operator",
        "compare_to",
    }:
        return [f'{where}: {{"value": ..., "operator": ..., "compare_to": ...}}']
    problems = []
    if not isinstance(rule["value"], str) or len(rule["value"]) > LIMITS.max_string_length:
        problems.append(f"{where}: value is a string")
    operator = rule["operator"]
    if operator not in CONDITION_OPERATORS:
        problems.append(f"{where}: operator is one of {', '.join(CONDITION_OPERATORS)}")
    elif operator not in UNARY_OPERATORS and not isinstance(rule.get("compare_to"), str):
        problems.append(f"{where}: {operator} needs compare_to (a string)")
    elif operator in UNARY_OPERATORS and "compare_to" in rule:
        problems.append(f"{where}: {operator} takes no compare_to")
    return problems


def _escape(key: str) -> str:
    """RFC 6901: a key inside a JSON pointer."""
    return key.replace("~", "~0").replace("/", "~1")


def document_schema() -> dict[str, Any]:
    """The published JSON Schema of a flow document, made from the catalog."""
    nodes = [
        {
            "type": "object",
            "required": ["id", "action"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": NODE_ID.pattern.removesuffix("\\Z") + "$"},
                "action": {"const": action.key},
                "params": _params_schema(action.params),
            },
        }
        for action in ACTIONS_BY_KEY.values()
    ]
    triggers = [
        {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {"type": {"const": t.key}, "params": _params_schema(t.params)},
        }
        for t in TRIGGERS_BY_KEY.values()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://chatflow.dev/schemas/flow-document.json",
        "title": "chatflow flow document",
        "type": "object",
        "required": ["trigger"],
        "additionalProperties": False,
        "properties": {
            "trigger": {"oneOf": triggers},
            "start": {"type": ["string", "null"]},
            "nodes": {"type": "array", "maxItems": LIMITS.max_nodes, "items": {"oneOf": nodes}},
            "edges": {
                "type": "array",
                "maxItems": LIMITS.max_edges,
                "items": {
                    "type": "object",
                    "required": ["from", "outcome", "to"],
                    "additionalProperties": False,
                    "properties": {
                        "from": {"type": "string"},
                        "outcome": {"type": "string"},
                        "to": {"type": "string"},
                    },
                },
            },
            "settings": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "on_conflict": {"enum": list(ON_CONFLICT)},
                    "end_on_handover": {"type": "boolean"},
                },
            },
            "layout": {"type": "object"},
        },
    }


def _params_schema(params: tuple[ParamSpec, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [p.name for p in params if p.required],
        "properties": {p.name: _param_schema(p) for p in params},
    }


_STRING_LIST = {"type": "array", "items": {"type": "string"}}


def _param_schema(param: ParamSpec) -> dict[str, Any]:
    kind = param.type
    schema: dict[str, Any]
    if kind is ParamType.STRING:
        schema = {"type": "string", "maxLength": param.maximum or LIMITS.max_string_length}
    elif kind is ParamType.BOOLEAN:
        schema = {"type": "boolean"}
    elif kind is ParamType.INTEGER:
        schema = {"type": "integer"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    elif kind is ParamType.CHOICE:
        schema = {"enum": list(param.choices)}
    elif kind is ParamType.NAME:
        schema = {"type": "string", "pattern": NAME.pattern.removesuffix("\\Z") + "$"}
    elif kind is ParamType.STRING_LIST:
        schema = {**_STRING_LIST, "maxItems": 100}
    elif kind in (ParamType.STRING_MAP, ParamType.RESPONSE_MAPPING):
        schema = {"type": "object", "additionalProperties": {"type": "string"}}
    elif kind is ParamType.TEMPLATE_VARIABLES:
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "header": _STRING_LIST,
                "body": _STRING_LIST,
                "buttons": {"type": "object", "additionalProperties": _STRING_LIST},
            },
        }
    elif kind is ParamType.BRANCHES:
        schema = {
            "type": "array",
            "minItems": 1,
            "maxItems": LIMITS.max_branches,
            "items": {
                "type": "object",
                "required": ["outcome", "rules"],
                "additionalProperties": False,
                "properties": {
                    "outcome": {
                        "type": "string",
                        "pattern": OUTCOME.pattern.removesuffix("\\Z") + "$",
                    },
                    "match": {"enum": ["all", "any"]},
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": LIMITS.max_rules_per_branch,
                        "items": {
                            "type": "object",
                            "required": ["value", "operator"],
                            "additionalProperties": False,
                            "properties": {
                                "value": {"type": "string"},
                                "operator": {"enum": list(CONDITION_OPERATORS)},
                                "compare_to": {"type": "string"},
                            },
                        },
                    },
                },
            },
        }
    else:
        schema = {}
    schema["description"] = param.description
    return schema


def size_problems(encoded_size: int) -> list[Problem]:
    if encoded_size > LIMITS.max_document_bytes:
        return [
            Problem(
                "",
                "document_too_large",
                f"A flow document is at most {LIMITS.max_document_bytes} bytes",
            )
        ]
    return []


def next_fire_at(trigger: Trigger, after: int) -> int:
    """A schedule trigger's next time strictly after `after` (milliseconds), in its time zone:
    "9:00 in Madrid" stays 9:00 across daylight-saving changes."""
    zone = zoneinfo.ZoneInfo(trigger.value("timezone") or "UTC")
    moment = datetime.fromtimestamp(after / 1000, zone)
    return int(next(CronSim(trigger.params["cron"], moment)).timestamp() * 1000)


def json_depth(value: Any) -> int:
    """How deeply `value` nests (a scalar: 0); stops counting past `MAX_JSON_DEPTH` + 1."""
    depth, level = 0, [value]
    while level and depth <= MAX_JSON_DEPTH:
        nested: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nested.extend(item.values())
            elif isinstance(item, list):
                nested.extend(item)
        if not nested and not any(isinstance(i, (dict, list)) for i in level):
            break
        depth += 1
        level = nested
    return depth


def check_depth(value: Any, pointer: str) -> None:
    """Refuse JSON nested deeper than a flow may store (`MAX_JSON_DEPTH`)."""
    if json_depth(value) > MAX_JSON_DEPTH:
        raise FlowDocumentError(
            f"JSON nested more than {MAX_JSON_DEPTH} levels deep",
            errors=[Problem(pointer, "too_deep", f"at most {MAX_JSON_DEPTH} levels").view()],
        )
