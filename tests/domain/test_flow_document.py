"""The flow document: its shape, its validator, its JSON Schema, and properties over generated
flows (R10)."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatflow.domain.flows import document as flow_document
from chatflow.domain.flows.catalog import ACTIONS, MAX_WAIT_BUTTONS, TRIGGERS, ParamType

NODE_IDS = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,10}", fullmatch=True)
TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="{}\\"), max_size=40
)
VARIABLES = st.sampled_from(
    ["{run.id}", "{{ flow.id }}", "{chatInstanceId}", "{contact.first_name}"]
)
TEMPLATE_TEXT = (
    st.lists(st.one_of(TEXT, VARIABLES), min_size=1, max_size=4)
    .map("".join)
    .filter(lambda s: bool(s.strip()))
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def _param_value(spec: Any) -> st.SearchStrategy[Any]:
    kind = spec.type
    if kind is ParamType.STRING:
        return TEMPLATE_TEXT.filter(lambda s: len(s) <= (spec.maximum or 8192))
    if kind is ParamType.BOOLEAN:
        return st.booleans()
    if kind is ParamType.INTEGER:
        return st.integers(spec.minimum or 0, min(spec.maximum or 1000, 100_000))
    if kind is ParamType.CHOICE:
        return st.sampled_from(spec.choices)
    if kind is ParamType.NAME:
        return st.from_regex(r"v_[a-z0-9]{1,8}", fullmatch=True)
    if kind is ParamType.STRING_LIST:
        return st.lists(TEMPLATE_TEXT, max_size=3)
    if kind is ParamType.STRING_MAP:
        return st.dictionaries(
            st.from_regex(r"[A-Za-z-]{1,10}", fullmatch=True), TEMPLATE_TEXT, max_size=3
        )
    if kind is ParamType.JSON:
        return JSON_VALUES
    if kind is ParamType.RESPONSE_MAPPING:
        return st.dictionaries(
            st.from_regex(r"r_[a-z]{1,6}", fullmatch=True),
            st.sampled_from(["status", "body", "body.a.b", "headers.etag"]),
            max_size=2,
        )
    if kind is ParamType.TEMPLATE_VARIABLES:
        return st.fixed_dictionaries({"body": st.lists(TEMPLATE_TEXT, max_size=2)})
    if kind is ParamType.BRANCHES:
        rule = st.fixed_dictionaries(
            {"value": TEMPLATE_TEXT, "operator": st.just("contains"), "compare_to": TEXT}
        )
        return st.lists(
            st.builds(
                lambda i, rules: {"outcome": f"b{i}", "match": "any", "rules": rules},
                st.integers(0, 0),
                st.lists(rule, min_size=1, max_size=2),
            ),
            min_size=1,
            max_size=1,
        )
    raise AssertionError(kind)


@st.composite
def valid_flows(draw: st.DrawFn) -> dict[str, Any]:
    """Flows the validator must accept: a manual trigger about a chatroom, so every variable the
    strategies use is known."""
    ids: list[str] = draw(st.lists(NODE_IDS, min_size=1, max_size=6, unique=True))
    nodes: list[dict[str, Any]] = []
    for node_id in ids:
        action = draw(st.sampled_from([a for a in ACTIONS if a.key != "set_variable"]))
        params: dict[str, Any] = {}
        for spec in action.params:
            if spec.required or draw(st.booleans()):
                params[spec.name] = draw(_param_value(spec))
        nodes.append({"id": node_id, "action": action.key, "params": params})
    edges: list[dict[str, str]] = []
    for node in nodes:
        flow_node = flow_document.Node(node["id"], node["action"], node["params"])
        outcomes = flow_node.outcomes()
        wanted: bool = draw(st.booleans())
        if outcomes and wanted:
            edges.append(
                {
                    "from": node["id"],
                    "outcome": draw(st.sampled_from(outcomes)),
                    "to": draw(st.sampled_from(ids)),
                }
            )
    return {
        "trigger": {"type": "manual", "params": {"chatroom": True}},
        "start": ids[0],
        "nodes": nodes,
        "edges": edges,
        "settings": {
            "on_conflict": draw(st.sampled_from(["skip", "replace"])),
            "end_on_handover": draw(st.booleans()),
        },
        "layout": {node_id: {"x": 1, "y": 2} for node_id in ids},
    }


SCHEMA = jsonschema.Draft202012Validator(flow_document.document_schema())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_flows())
def test_generated_valid_flows_pass_the_validator_the_schema_and_round_trip(
    raw: dict[str, Any],
) -> None:
    document, problems = flow_document.check(raw)
    assert problems == []
    assert document is not None
    assert flow_document.parse(flow_document.dump(document)) == document
    SCHEMA.validate(flow_document.dump(document))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    JSON_VALUES
    | st.dictionaries(
        st.sampled_from(["trigger", "nodes", "edges", "start", "settings", "layout"]), JSON_VALUES
    )
)
def test_the_validator_never_crashes_on_any_json(raw: Any) -> None:
    document, problems = flow_document.check(raw)
    assert document is not None or problems
    for problem in problems:
        assert problem.pointer == "" or problem.pointer.startswith("/")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_flows(), st.data())
def test_the_validator_never_crashes_on_mutated_flows(
    raw: dict[str, Any], data: st.DataObject
) -> None:
    node = data.draw(st.sampled_from(raw["nodes"]))
    node["params"][data.draw(st.sampled_from(["message", "timeout_seconds", "branches", "x"]))] = (
        data.draw(JSON_VALUES)
    )
    flow_document.check(raw)


def test_every_trigger_and_action_has_a_schema_and_the_schema_is_valid() -> None:
    schema = flow_document.document_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert len(schema["properties"]["trigger"]["oneOf"]) == len(TRIGGERS)
    assert len(schema["properties"]["nodes"]["items"]["oneOf"]) == len(ACTIONS)


def test_wait_for_reply_outcomes_name_buttons_from_zero() -> None:
    node = flow_document.Node("w", "wait_for_reply", {})
    assert node.outcomes()[:2] == ["reply", "button_0"]
    assert f"button_{MAX_WAIT_BUTTONS - 1}" in node.outcomes()


def test_a_schedule_with_a_bad_cron_or_zone_is_refused() -> None:
    raw = {
        "trigger": {
            "type": "schedule",
            "params": {"cron": "61 * * * *", "timezone": "Mars/Olympus"},
        },
        "start": "e",
        "nodes": [{"id": "e", "action": "end"}],
        "edges": [],
    }
    _, problems = flow_document.check(raw)
    assert {p.parameter for p in problems} == {"cron", "timezone"}


def test_limits_are_enforced() -> None:
    nodes = [{"id": f"n{i}", "action": "end"} for i in range(101)]
    _, problems = flow_document.check(
        {"trigger": {"type": "manual"}, "start": "n0", "nodes": nodes, "edges": []}
    )
    assert [p.code for p in problems] == ["too_many_nodes"]
