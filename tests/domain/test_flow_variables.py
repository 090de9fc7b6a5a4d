"""Variable references in flow parameters (R10): parsing, resolving, rendering and scopes."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatflow.domain.flows.variables import (
    Path,
    Reference,
    Scope,
    Text,
    UnsetVariableError,
    is_single_reference,
    parse,
    references,
    render,
    render_tree,
    render_value,
    resolve,
    to_text,
)

NAMESPACE: dict[str, Any] = {
    "chatInstanceId": "ci_42",
    "contact": {"first_name": "Ada", "age": 36, "tags": ["vip", "beta"]},
    "steps": {
        "ask": {"reply": {"text": "yes please"}},
        "http": {"body": {"items": [{"id": "it_1"}, {"id": "it_2"}], "total": 3.0}},
    },
    "trigger": {"headers": {"content-type": "application/json"}},
}


# --------------------------------------------------------------------------------------------
# Parsing


def test_both_forms_refer_to_a_variable() -> None:
    assert render("id={chatInstanceId}", NAMESPACE) == "id=ci_42"
    assert render("id={{ chatInstanceId }}", NAMESPACE) == "id=ci_42"
    assert render("id={{chatInstanceId}}", NAMESPACE) == "id=ci_42"
    assert render("id={{\tchatInstanceId  }}", NAMESPACE) == "id=ci_42"


def test_dotted_paths_walk_into_objects() -> None:
    assert render("Hi {contact.first_name}!", NAMESPACE) == "Hi Ada!"
    assert render("said {{ steps.ask.reply.text }}", NAMESPACE) == "said yes please"


def test_a_digit_segment_indexes_a_list() -> None:
    assert render("{steps.http.body.items.1.id}", NAMESPACE) == "it_2"
    assert render("{{ contact.tags.0 }}", NAMESPACE) == "vip"


def test_a_dash_in_a_later_segment_reads_a_header() -> None:
    assert render("{trigger.headers.content-type}", NAMESPACE) == "application/json"


def test_parse_keeps_the_source_of_each_segment() -> None:
    assert parse("Hi {{ contact.first_name }}, {x}") == (
        Text("Hi ", "Hi "),
        Reference(("contact", "first_name"), "{{ contact.first_name }}"),
        Text(", ", ", "),
        Reference(("x",), "{x}"),
    )
    assert Reference(("contact", "first_name"), "{contact.first_name}").dotted == (
        "contact.first_name"
    )


def test_json_bodies_are_literal_apart_from_references() -> None:
    body = '{"message": "{contact.first_name}", "meta": {"n": 1}}'
    assert render(body, NAMESPACE) == '{"message": "Ada", "meta": {"n": 1}}'


def test_spaces_inside_single_braces_make_it_literal() -> None:
    assert render("{ contact.first_name }", {}) == "{ contact.first_name }"
    assert references("{ name }") == []


def test_malformed_paths_are_literal() -> None:
    for template in ["{}", "{{}}", "{1abc}", "{a.}", "{a..b}", "{-a}", "{{ a b }}", "{a b}"]:
        assert render(template, {}) == template
        assert references(template) == []


def test_an_escaped_brace_is_a_literal_brace() -> None:
    assert render("\\{name}", {}) == "{name}"
    assert parse("\\{name}") == (Text("{name}", "\\{name}"),)
    assert render("\\{\\{ name }}", {}) == "{{ name }}"


def test_a_backslash_not_before_a_brace_is_literal() -> None:
    assert render("C:\\path\\ {x}", {"x": "1"}) == "C:\\path\\ 1"
    assert render("end\\", {}) == "end\\"


def test_the_double_form_is_tried_first_at_each_brace() -> None:
    assert parse("{{{x}}}") == (Text("{", "{"), Reference(("x",), "{{x}}"), Text("}", "}"))
    assert render("{{{x}}}", {"x": "v"}) == "{v}"
    assert render("{{x}", {"x": "v"}) == "{v"


def test_adjacent_literal_pieces_become_one_text_segment() -> None:
    assert parse("a{ b\\{c\\d") == (Text("a{ b{c\\d", "a{ b\\{c\\d"),)
    assert parse("") == ()


def test_is_single_reference_needs_the_whole_string() -> None:
    assert is_single_reference("{x}")
    assert is_single_reference("{{ x.y }}")
    assert not is_single_reference(" {x}")
    assert not is_single_reference("{x}{y}")
    assert not is_single_reference("x")
    assert not is_single_reference("\\{x}")


# --------------------------------------------------------------------------------------------
# Resolving


def test_an_unknown_variable_raises_naming_the_path() -> None:
    with pytest.raises(UnsetVariableError, match=r"contact\.last_name") as raised:
        render("Hi {contact.last_name}", NAMESPACE)
    assert raised.value.path == ("contact", "last_name")


@pytest.mark.parametrize(
    "path",
    [
        ("missing",),
        ("contact", "tags", "2"),
        ("contact", "tags", "first"),
        ("contact", "first_name", "length"),
        ("contact", "age", "real"),
        ("contact", "tags", "-1"),
    ],
)
def test_every_kind_of_missing_step_is_an_unset_variable(path: Path) -> None:
    with pytest.raises(UnsetVariableError, match=".".join(path)) as raised:
        resolve(NAMESPACE, path)
    assert raised.value.path == path


def test_a_null_on_the_way_is_an_unset_variable() -> None:
    with pytest.raises(UnsetVariableError, match="null"):
        resolve({"a": None}, ("a", "b"))


def test_a_present_null_resolves_to_none_and_renders_as_nothing() -> None:
    assert resolve({"a": None}, ("a",)) is None
    assert render("[{a}]", {"a": None}) == "[]"


def test_code_looking_paths_are_never_evaluated() -> None:
    # A dunder is just a key that the dict does not have: no attribute is read.
    with pytest.raises(UnsetVariableError, match="__class__"):
        render("{__class__}", {})
    with pytest.raises(UnsetVariableError):
        render("{contact.__class__}", NAMESPACE)
    # Not a path at all, so it is text.
    assert render("{{ 1+1 }}", {}) == "{{ 1+1 }}"
    assert render("{__import__('os')}", {}) == "{__import__('os')}"


# --------------------------------------------------------------------------------------------
# Values and text


def test_render_value_keeps_a_lone_references_raw_type() -> None:
    assert render_value("{contact.age}", NAMESPACE) == 36
    assert render_value("{{ contact }}", NAMESPACE) == NAMESPACE["contact"]
    assert render_value("{steps.http.body.total}", NAMESPACE) == 3.0
    assert render_value("{missing_ok}", {"missing_ok": None}) is None


def test_render_value_renders_anything_else_as_text() -> None:
    assert render_value("age {contact.age}", NAMESPACE) == "age 36"
    assert render_value(" {contact.age}", NAMESPACE) == " 36"
    assert render_value("{contact.tags}", NAMESPACE) == ["vip", "beta"]
    assert render_value("tags={contact.tags}", NAMESPACE) == 'tags=["vip","beta"]'


def test_render_tree_renders_every_string_leaf_but_not_keys() -> None:
    body = {
        "{contact.first_name}": "{contact.first_name}",
        "age": "{contact.age}",
        "greeting": "Hi {contact.first_name}",
        "tags": ["{contact.tags.0}", 7, None, True],
        "nested": {"item": "{{ steps.http.body.items.0 }}"},
        "pair": ("{contact.age}", 1.5),
    }
    assert render_tree(body, NAMESPACE) == {
        "{contact.first_name}": "Ada",
        "age": 36,
        "greeting": "Hi Ada",
        "tags": ["vip", 7, None, True],
        "nested": {"item": {"id": "it_1"}},
        "pair": (36, 1.5),
    }


def test_render_tree_leaves_non_string_scalars_alone() -> None:
    assert render_tree(5, {}) == 5
    assert render_tree(None, {}) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("as is {x}", "as is {x}"),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (3.0, "3"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1e20, "1e+20"),
        ({"a": [1, "é"], "b": None}, '{"a":[1,"é"],"b":null}'),
        ([1, True, None], "[1,true,null]"),
        ((1, 2), "[1,2]"),
    ],
)
def test_to_text(value: Any, text: str) -> None:
    assert to_text(value) == text


def test_inserted_values_are_not_scanned_again() -> None:
    assert render("{a}", {"a": "{b}", "b": "no"}) == "{b}"


# --------------------------------------------------------------------------------------------
# Scope


def test_scope_knows_exact_paths_and_their_prefixes() -> None:
    scope = Scope(exact=frozenset({("contact", "first_name"), ("chatInstanceId",)}))
    assert scope.knows(("contact", "first_name"))
    assert scope.knows(("contact",))
    assert scope.knows(("chatInstanceId",))
    assert not scope.knows(("contact", "first_name", "x"))
    assert not scope.knows(("contact", "last_name"))
    assert not scope.knows(("chatInstanceId", "x"))
    assert not scope.knows(())


def test_scope_knows_anything_under_an_open_prefix() -> None:
    scope = Scope(open=frozenset({("trigger", "body")}))
    assert scope.knows(("trigger", "body"))
    assert scope.knows(("trigger", "body", "items", "0", "id"))
    assert not scope.knows(("trigger",))
    assert not scope.knows(("trigger", "headers"))


def test_scope_grows_without_changing_the_original() -> None:
    base = Scope()
    grown = base.with_exact(("contact", "first_name")).with_open(("steps", "http", "body"))
    assert not base.knows(("contact",))
    assert grown.knows(("contact",))
    assert grown.knows(("steps", "http", "body", "anything"))
    # Only exact paths lend their prefixes; an open prefix does not.
    assert not grown.knows(("steps", "http"))
    assert grown.with_exact() == grown


# --------------------------------------------------------------------------------------------
# Properties

_FEW = settings(max_examples=200)
# Characters that exercise the grammar far more often than arbitrary text would.
_GRAMMAR_TEXT = st.text(alphabet="{}\\ \t._-aZ09", max_size=40)
_PLAIN_TEXT = st.text().filter(lambda text: "{" not in text and "\\" not in text)
_NO_BRACES = st.text().filter(lambda text: not set(text) & set("{}\\"))

_FIRST_SEGMENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*", fullmatch=True)
_LATER_SEGMENT = st.from_regex(r"[A-Za-z0-9_-]+", fullmatch=True)
_PATHS = st.builds(
    lambda first, rest: (first, *rest), _FIRST_SEGMENT, st.lists(_LATER_SEGMENT, max_size=4)
)


def _nested(path: Path, value: str) -> dict[str, Any]:
    namespace: Any = value
    for segment in reversed(path):
        namespace = {segment: namespace}
    result: dict[str, Any] = namespace
    return result


def _written(path: Path, double: bool) -> str:
    dotted = ".".join(path)
    return "{{ " + dotted + " }}" if double else "{" + dotted + "}"


@_FEW
@given(st.one_of(st.text(), _GRAMMAR_TEXT))
def test_parse_never_raises_and_sources_rebuild_the_template(template: str) -> None:
    segments = parse(template)
    assert "".join(segment.source for segment in segments) == template
    # Adjacent text is always merged.
    assert not any(
        isinstance(left, Text) and isinstance(right, Text) for left, right in pairwise(segments)
    )


@_FEW
@given(_PLAIN_TEXT)
def test_text_without_braces_or_backslashes_renders_to_itself(template: str) -> None:
    assert render(template, {}) == template


@_FEW
@given(_PATHS, _NO_BRACES, st.booleans())
def test_a_generated_reference_renders_its_value(path: Path, value: str, double: bool) -> None:
    assert render(_written(path, double), _nested(path, value)) == value
    assert render_value(_written(path, double), _nested(path, value)) == value


@_FEW
@given(st.lists(st.tuples(_NO_BRACES, _PATHS, st.booleans()), max_size=5), _NO_BRACES)
def test_references_finds_exactly_the_references_written(
    pieces: list[tuple[str, Path, bool]], tail: str
) -> None:
    template = "".join(chunk + _written(path, double) for chunk, path, double in pieces) + tail
    assert [reference.path for reference in references(template)] == [path for _, path, _ in pieces]
