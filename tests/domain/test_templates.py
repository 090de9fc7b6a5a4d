"""The rules of WhatsApp-shaped templates (R4): definition, rendering, quick-reply payloads."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatflow.domain.errors import TemplateInvalidError, TemplateVariablesError
from chatflow.domain.templates import (
    RenderedButton,
    TemplateButton,
    TemplateDefinition,
    TemplateHeader,
    TemplateVariables,
    button_payload,
    parse_button_payload,
    parse_template,
    render_template,
    to_components,
)

Components = list[dict[str, Any]]


def full_components() -> Components:
    """A template using every component and every button type (a fresh copy each call)."""
    return [
        {
            "type": "HEADER",
            "format": "TEXT",
            "text": "Order {{1}}",
            "example": {"header_text": ["#123"]},
        },
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order {{2}} ships today.",
            "example": {"body_text": [["Ada", "#123"]]},
        },
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Track"},
                {
                    "type": "URL",
                    "text": "Open",
                    "url": "https://shop.example/o/{{1}}",
                    "example": ["abc"],
                },
                {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15551234567"},
                {"type": "COPY_CODE", "example": "SAVE10"},
            ],
        },
    ]


def parse(
    components: object, name: str = "order_update", language: str = "en_US"
) -> TemplateDefinition:
    return parse_template(name, language, "UTILITY", components)


def body_only(text: str, examples: list[str] | None = None) -> Components:
    body: dict[str, Any] = {"type": "BODY", "text": text}
    if examples is not None:
        body["example"] = {"body_text": [examples]}
    return [body]


def with_buttons(buttons: list[dict[str, Any]]) -> Components:
    return [*body_only("Hello there"), {"type": "BUTTONS", "buttons": buttons}]


def quick_reply(text: str = "Yes") -> dict[str, Any]:
    return {"type": "QUICK_REPLY", "text": text}


def url_button(text: str = "Open", url: str = "https://shop.example/o") -> dict[str, Any]:
    return {"type": "URL", "text": text, "url": url}


def phone_button() -> dict[str, Any]:
    return {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15551234567"}


def invalid_pointers(components: object, **identity: str) -> list[str]:
    with pytest.raises(TemplateInvalidError) as raised:
        parse_template(
            identity.get("name", "order_update"),
            identity.get("language", "en_US"),
            identity.get("category", "UTILITY"),
            components,
        )
    return [error["pointer"] for error in raised.value.errors]


def variables_problems(
    definition: TemplateDefinition, variables: TemplateVariables
) -> list[dict[str, Any]]:
    with pytest.raises(TemplateVariablesError) as raised:
        render_template(definition, variables)
    return raised.value.errors


def full_variables(**overrides: Any) -> TemplateVariables:
    values: dict[str, Any] = {
        "header": ("#42",),
        "body": ("Ada", "#42"),
        "buttons": {1: ("o42",), 3: ("SAVE10",)},
    }
    values.update(overrides)
    return TemplateVariables(**values)


# --------------------------------------------------------------------------------------------
# Parsing a definition


def test_valid_full_template_parses_into_its_definition() -> None:
    definition = parse(full_components())

    assert definition == TemplateDefinition(
        header=TemplateHeader(format="TEXT", text="Order {{1}}", example=("#123",)),
        body="Hi {{1}}, your order {{2}} ships today.",
        body_examples=("Ada", "#123"),
        footer="Reply STOP to opt out",
        buttons=(
            TemplateButton("QUICK_REPLY", "Track", None, None, None),
            TemplateButton("URL", "Open", "https://shop.example/o/{{1}}", None, "abc"),
            TemplateButton("PHONE_NUMBER", "Call", None, "+15551234567", None),
            TemplateButton("COPY_CODE", "Copy code", None, None, "SAVE10"),
        ),
    )


def test_component_types_are_case_insensitive() -> None:
    components = full_components()
    for component, spelled in zip(components, ["header", "Body", "footer", "buttons"], strict=True):
        component["type"] = spelled

    assert parse(components) == parse(full_components())


def test_variable_counts_of_header_body_and_buttons() -> None:
    definition = parse(full_components())

    assert definition.header_variable_count == 1
    assert definition.body_variable_count == 2
    assert definition.button_variable_counts == {1: 1, 3: 1}


def test_url_button_without_variable_takes_no_value() -> None:
    definition = parse(with_buttons([url_button()]))

    assert definition.button_variable_counts == {}


def test_repeated_variable_counts_once() -> None:
    definition = parse(body_only("Hi {{1}}, yes {{1}}, order {{2}}.", ["Ada", "#1"]))

    assert definition.body_variable_count == 2


def test_body_without_variables_needs_no_example() -> None:
    definition = parse(body_only("Hello there"))

    assert definition.body_variable_count == 0
    assert definition.body_examples == ()


@pytest.mark.parametrize("name", ["Order", "1order", "order-update", "", "order update"])
def test_name_must_be_lower_case_snake(name: str) -> None:
    assert invalid_pointers(body_only("Hello"), name=name) == ["/name"]


def test_name_of_512_characters_is_accepted() -> None:
    parse(body_only("Hello"), name="a" * 512)


def test_name_of_513_characters_is_rejected() -> None:
    assert invalid_pointers(body_only("Hello"), name="a" * 513) == ["/name"]


@pytest.mark.parametrize("language", ["en", "en_US", "pt_BR", "zh_Hant_HK", "fil"])
def test_language_codes_accepted(language: str) -> None:
    parse(body_only("Hello"), language=language)


@pytest.mark.parametrize("language", ["EN", "en-US", "english", "e", "en_US_X_Y"])
def test_language_codes_rejected(language: str) -> None:
    assert invalid_pointers(body_only("Hello"), language=language) == ["/language"]


@pytest.mark.parametrize("category", ["AUTHENTICATION", "MARKETING", "UTILITY"])
def test_categories_accepted(category: str) -> None:
    parse_template("hello", "en", category, body_only("Hello"))


def test_unknown_category_is_rejected() -> None:
    assert invalid_pointers(body_only("Hello"), category="PROMO") == ["/category"]


def test_components_must_be_a_list() -> None:
    assert invalid_pointers({"type": "BODY", "text": "Hi"}) == ["/components"]


def test_body_is_required() -> None:
    assert invalid_pointers([{"type": "FOOTER", "text": "Bye"}]) == ["/components"]


def test_second_body_is_rejected() -> None:
    components = [*body_only("Hello"), *body_only("Hello again")]

    assert invalid_pointers(components) == ["/components/1/type"]


def test_second_header_is_rejected() -> None:
    header = {"type": "HEADER", "format": "TEXT", "text": "Hi"}

    assert invalid_pointers([header, *body_only("Hello"), header]) == ["/components/2/type"]


def test_unknown_component_type_is_rejected() -> None:
    assert invalid_pointers([*body_only("Hello"), {"type": "CAROUSEL"}]) == ["/components/1/type"]


def test_component_that_is_not_an_object_is_rejected() -> None:
    assert invalid_pointers([*body_only("Hello"), "FOOTER"]) == ["/components/1"]


def test_unknown_component_keys_are_ignored() -> None:
    components = body_only("Hello")
    components[0]["add_security_recommendation"] = True

    assert parse(components).body == "Hello"


# Variables


@pytest.mark.parametrize("bad", ["{{0}}", "{{name}}", "{{ 1 }}", "{{01}}", "{{-1}}", "{{}}"])
def test_malformed_variable_is_rejected(bad: str) -> None:
    assert invalid_pointers(body_only(f"Hi {bad} there")) == ["/components/0/text"]


def test_variable_numbering_gap_is_rejected() -> None:
    components = body_only("Hi {{1}} and {{3}} today", ["a", "b", "c"])

    assert "/components/0/text" in invalid_pointers(components)


def test_variables_not_starting_at_one_are_rejected() -> None:
    assert "/components/0/text" in invalid_pointers(body_only("Hi {{2}} today", ["a", "b"]))


def test_variables_may_appear_out_of_order() -> None:
    definition = parse(body_only("Hi {{2}} and {{1}} today", ["a", "b"]))

    assert definition.body_variable_count == 2


def test_body_starting_with_a_variable_is_rejected() -> None:
    assert invalid_pointers(body_only("  {{1}}, hello", ["Ada"])) == ["/components/0/text"]


def test_body_ending_with_a_variable_is_rejected() -> None:
    assert invalid_pointers(body_only("Hello {{1}}\n", ["Ada"])) == ["/components/0/text"]


def test_body_example_count_mismatch_is_rejected() -> None:
    components = body_only("Hi {{1}}, order {{2}} ships.", ["Ada"])

    assert invalid_pointers(components) == ["/components/0/example/body_text"]


def test_body_example_missing_is_rejected() -> None:
    assert invalid_pointers(body_only("Hi {{1}}, hello.")) == ["/components/0/example/body_text"]


def test_body_example_must_be_nested_once() -> None:
    components: Components = [
        {"type": "BODY", "text": "Hi {{1}}, hello.", "example": {"body_text": ["Ada"]}}
    ]

    assert invalid_pointers(components) == ["/components/0/example/body_text"]


def test_empty_body_example_value_is_rejected() -> None:
    components = body_only("Hi {{1}}, order {{2}} ships.", ["Ada", " "])

    assert invalid_pointers(components) == ["/components/0/example/body_text/0/1"]


# Body limits


def test_body_of_1024_characters_is_accepted() -> None:
    assert len(parse(body_only("a" * 1024)).body) == 1024


def test_body_of_1025_characters_is_rejected() -> None:
    assert invalid_pointers(body_only("a" * 1025)) == ["/components/0/text"]


def test_blank_body_is_rejected() -> None:
    assert invalid_pointers(body_only("  \n ")) == ["/components/0/text"]


# Header


def text_header(text: str, examples: list[str] | None = None) -> dict[str, Any]:
    header: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": text}
    if examples is not None:
        header["example"] = {"header_text": examples}
    return header


def test_text_header_of_60_characters_is_accepted() -> None:
    definition = parse([text_header("h" * 60), *body_only("Hello")])

    assert definition.header == TemplateHeader("TEXT", "h" * 60, ())


def test_text_header_of_61_characters_is_rejected() -> None:
    assert invalid_pointers([text_header("h" * 61), *body_only("Hello")]) == ["/components/0/text"]


def test_text_header_with_two_variables_is_rejected() -> None:
    header = text_header("{{1}} and {{2}}", ["a", "b"])

    assert invalid_pointers([header, *body_only("Hello")]) == ["/components/0/text"]


def test_text_header_variable_must_be_one() -> None:
    assert invalid_pointers([text_header("Order {{2}}", ["a"]), *body_only("Hello")]) == [
        "/components/0/text"
    ]


def test_text_header_example_count_mismatch_is_rejected() -> None:
    header = text_header("Order {{1}}", ["a", "b"])

    assert invalid_pointers([header, *body_only("Hello")]) == ["/components/0/example/header_text"]


def test_text_header_empty_example_is_rejected() -> None:
    header = text_header("Order {{1}}", [""])

    assert invalid_pointers([header, *body_only("Hello")]) == [
        "/components/0/example/header_text/0"
    ]


def test_text_header_requires_text() -> None:
    header = {"type": "HEADER", "format": "TEXT"}

    assert invalid_pointers([header, *body_only("Hello")]) == ["/components/0/text"]


@pytest.mark.parametrize("media", ["IMAGE", "VIDEO", "DOCUMENT"])
def test_media_header_with_handle_is_accepted(media: str) -> None:
    header = {"type": "HEADER", "format": media, "example": {"header_handle": ["4::aW1n"]}}

    definition = parse([header, *body_only("Hello")])

    assert definition.header is not None
    assert (definition.header.format, definition.header.text) == (media, None)
    assert definition.header.example == ("4::aW1n",)
    assert definition.header_variable_count == 0


def test_media_header_without_handle_is_rejected() -> None:
    header = {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": []}}

    assert invalid_pointers([header, *body_only("Hello")]) == [
        "/components/0/example/header_handle"
    ]


def test_media_header_with_text_is_rejected() -> None:
    header = {
        "type": "HEADER",
        "format": "IMAGE",
        "text": "Hi",
        "example": {"header_handle": ["h"]},
    }

    assert invalid_pointers([header, *body_only("Hello")]) == ["/components/0/text"]


def test_unknown_header_format_is_rejected() -> None:
    header = {"type": "HEADER", "format": "AUDIO"}

    assert invalid_pointers([header, *body_only("Hello")]) == ["/components/0/format"]


# Footer


def test_footer_of_60_characters_is_accepted() -> None:
    assert parse([*body_only("Hello"), {"type": "FOOTER", "text": "f" * 60}]).footer == "f" * 60


def test_footer_of_61_characters_is_rejected() -> None:
    components = [*body_only("Hello"), {"type": "FOOTER", "text": "f" * 61}]

    assert invalid_pointers(components) == ["/components/1/text"]


def test_footer_with_variable_is_rejected() -> None:
    components = [*body_only("Hello"), {"type": "FOOTER", "text": "Bye {{1}}"}]

    assert invalid_pointers(components) == ["/components/1/text"]


def test_footer_without_text_is_rejected() -> None:
    assert invalid_pointers([*body_only("Hello"), {"type": "FOOTER"}]) == ["/components/1/text"]


# Buttons


def test_ten_buttons_are_accepted() -> None:
    definition = parse(with_buttons([quick_reply(f"Option {i}") for i in range(10)]))

    assert len(definition.buttons) == 10


def test_eleven_buttons_are_rejected() -> None:
    components = with_buttons([quick_reply(f"Option {i}") for i in range(11)])

    assert invalid_pointers(components) == ["/components/1/buttons"]


def test_no_buttons_is_rejected() -> None:
    assert invalid_pointers(with_buttons([])) == ["/components/1/buttons"]


def test_two_url_buttons_are_accepted() -> None:
    assert len(parse(with_buttons([url_button("A"), url_button("B")])).buttons) == 2


def test_three_url_buttons_are_rejected() -> None:
    components = with_buttons([url_button("A"), url_button("B"), url_button("C")])

    assert invalid_pointers(components) == ["/components/1/buttons"]


def test_two_phone_buttons_are_rejected() -> None:
    assert invalid_pointers(with_buttons([phone_button(), phone_button()])) == [
        "/components/1/buttons"
    ]


def test_two_copy_code_buttons_are_rejected() -> None:
    copy_code = {"type": "COPY_CODE", "example": "SAVE10"}

    assert invalid_pointers(with_buttons([copy_code, copy_code])) == ["/components/1/buttons"]


def test_interleaved_quick_replies_are_rejected() -> None:
    components = with_buttons([quick_reply("Yes"), url_button(), quick_reply("No")])

    assert invalid_pointers(components) == ["/components/1/buttons"]


def test_quick_replies_grouped_after_other_buttons_are_accepted() -> None:
    definition = parse(
        with_buttons([url_button(), phone_button(), quick_reply("Y"), quick_reply("N")])
    )

    assert [button.type for button in definition.buttons] == [
        "URL",
        "PHONE_NUMBER",
        "QUICK_REPLY",
        "QUICK_REPLY",
    ]


def test_button_text_of_25_characters_is_accepted() -> None:
    assert parse(with_buttons([quick_reply("b" * 25)])).buttons[0].text == "b" * 25


def test_button_text_of_26_characters_is_rejected() -> None:
    assert invalid_pointers(with_buttons([quick_reply("b" * 26)])) == [
        "/components/1/buttons/0/text"
    ]


def test_button_text_is_required() -> None:
    assert invalid_pointers(with_buttons([{"type": "QUICK_REPLY"}])) == [
        "/components/1/buttons/0/text"
    ]


def test_button_text_with_variable_is_rejected() -> None:
    assert invalid_pointers(with_buttons([quick_reply("Yes {{1}}")])) == [
        "/components/1/buttons/0/text"
    ]


def test_unknown_button_type_is_rejected() -> None:
    assert invalid_pointers(with_buttons([{"type": "OTP", "text": "Go"}])) == [
        "/components/1/buttons/0/type"
    ]


@pytest.mark.parametrize("url", ["ftp://shop.example", "shop.example/o", "javascript:alert(1)"])
def test_url_must_be_http_or_https(url: str) -> None:
    assert invalid_pointers(with_buttons([url_button(url=url)])) == ["/components/1/buttons/0/url"]


def test_url_of_2000_characters_is_accepted() -> None:
    url = "https://shop.example/" + "p" * (2000 - len("https://shop.example/"))

    assert parse(with_buttons([url_button(url=url)])).buttons[0].url == url


def test_url_of_2001_characters_is_rejected() -> None:
    url = "https://shop.example/" + "p" * (2001 - len("https://shop.example/"))

    assert invalid_pointers(with_buttons([url_button(url=url)])) == ["/components/1/buttons/0/url"]


def test_url_variable_not_at_the_end_is_rejected() -> None:
    button = url_button(url="https://shop.example/{{1}}/track") | {"example": ["abc"]}

    assert invalid_pointers(with_buttons([button])) == ["/components/1/buttons/0/url"]


def test_url_with_two_variables_is_rejected() -> None:
    button = url_button(url="https://shop.example/{{1}}{{2}}") | {"example": ["abc"]}

    assert invalid_pointers(with_buttons([button])) == ["/components/1/buttons/0/url"]


def test_url_variable_needs_exactly_one_example() -> None:
    button = url_button(url="https://shop.example/{{1}}") | {"example": ["a", "b"]}

    assert invalid_pointers(with_buttons([button])) == ["/components/1/buttons/0/example"]


def test_url_variable_example_may_not_be_empty() -> None:
    button = url_button(url="https://shop.example/{{1}}") | {"example": [""]}

    assert invalid_pointers(with_buttons([button])) == ["/components/1/buttons/0/example"]


@pytest.mark.parametrize("number", ["+123456", "+" + "1" * 20])
def test_phone_number_of_6_to_20_digits_is_accepted(number: str) -> None:
    button = phone_button() | {"phone_number": number}

    assert parse(with_buttons([button])).buttons[0].phone_number == number


@pytest.mark.parametrize("number", ["+12345", "+" + "1" * 21, "15551234567", "+1 555 123", ""])
def test_phone_number_malformed_is_rejected(number: str) -> None:
    button = phone_button() | {"phone_number": number}

    assert invalid_pointers(with_buttons([button])) == ["/components/1/buttons/0/phone_number"]


def test_copy_code_label_is_fixed() -> None:
    button = parse(with_buttons([{"type": "COPY_CODE", "example": "SAVE10"}])).buttons[0]

    assert (button.text, button.example) == ("Copy code", "SAVE10")


def test_copy_code_needs_example() -> None:
    assert invalid_pointers(with_buttons([{"type": "COPY_CODE"}])) == [
        "/components/1/buttons/0/example"
    ]


def test_copy_code_example_of_15_characters_is_accepted() -> None:
    assert parse(with_buttons([{"type": "COPY_CODE", "example": "c" * 15}])).buttons[0].example


def test_copy_code_example_of_16_characters_is_rejected() -> None:
    assert invalid_pointers(with_buttons([{"type": "COPY_CODE", "example": "c" * 16}])) == [
        "/components/1/buttons/0/example"
    ]


def test_every_problem_is_reported_together_with_its_pointer() -> None:
    components = full_components()
    components[0]["text"] = "h" * 61
    components[1]["text"] = "{{1}} and {{3}}"
    components[2]["text"] = "Bye {{1}}"
    components[3]["buttons"][0]["text"] = "b" * 26
    components[3]["buttons"][2]["phone_number"] = "555"
    components.append({"type": "SIDEBAR"})

    with pytest.raises(TemplateInvalidError) as raised:
        parse_template("Bad Name", "english", "PROMO", components)

    pointers = [error["pointer"] for error in raised.value.errors]
    assert sorted(set(pointers)) == sorted(
        [
            "/name",
            "/language",
            "/category",
            "/components/0/text",
            "/components/1/text",
            "/components/1/example/body_text",
            "/components/2/text",
            "/components/3/buttons/0/text",
            "/components/3/buttons/2/phone_number",
            "/components/4/type",
        ]
    )
    assert all(
        isinstance(error["message"], str) and error["message"] for error in raised.value.errors
    )
    assert raised.value.code == "template_invalid"


def test_to_components_round_trips() -> None:
    definition = parse(full_components())

    assert parse(to_components(definition)) == definition


def test_to_components_normalises_types_to_upper_case() -> None:
    components = full_components()
    components[0]["type"] = "header"
    components[3]["buttons"][0]["type"] = "quick_reply"

    normalised = to_components(parse(components))

    assert [component["type"] for component in normalised] == [
        "HEADER",
        "BODY",
        "FOOTER",
        "BUTTONS",
    ]
    assert normalised == full_components()


def test_to_components_round_trips_a_media_header() -> None:
    header = {"type": "HEADER", "format": "VIDEO", "example": {"header_handle": ["h1"]}}
    definition = parse([header, *body_only("Hello")])

    assert parse(to_components(definition)) == definition


def test_parse_does_not_modify_its_input() -> None:
    components = full_components()
    snapshot = copy.deepcopy(components)

    parse(components)

    assert components == snapshot


# --------------------------------------------------------------------------------------------
# Rendering


def test_render_fills_every_part() -> None:
    rendered = render_template(parse(full_components()), full_variables())

    assert rendered.header_text == "Order #42"
    assert rendered.header_format == "TEXT"
    assert rendered.body == "Hi Ada, your order #42 ships today."
    assert rendered.footer == "Reply STOP to opt out"
    assert rendered.buttons == (
        RenderedButton(0, "QUICK_REPLY", "Track", None, None, None),
        RenderedButton(1, "URL", "Open", "https://shop.example/o/o42", None, None),
        RenderedButton(2, "PHONE_NUMBER", "Call", None, "+15551234567", None),
        RenderedButton(3, "COPY_CODE", "Copy code", None, None, "SAVE10"),
    )


def test_rendered_text_preview_joins_header_body_and_footer() -> None:
    rendered = render_template(parse(full_components()), full_variables())

    assert (
        rendered.text == "Order #42\n\nHi Ada, your order #42 ships today.\n\nReply STOP to opt out"
    )


def test_rendered_text_preview_of_body_alone() -> None:
    assert render_template(parse(body_only("Hello")), TemplateVariables()).text == "Hello"


def test_rendered_text_preview_leaves_out_media_header() -> None:
    header = {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["h"]}}
    rendered = render_template(parse([header, *body_only("Hello")]), TemplateVariables())

    assert (rendered.header_format, rendered.header_text, rendered.text) == ("IMAGE", None, "Hello")


def test_quick_replies_lists_index_and_text() -> None:
    components = with_buttons([url_button(), quick_reply("Yes"), quick_reply("No")])

    rendered = render_template(parse(components), TemplateVariables())

    assert rendered.quick_replies == ((1, "Yes"), (2, "No"))


def test_substitution_does_not_re_substitute_values() -> None:
    definition = parse(body_only("A {{1}} B {{2}} C", ["x", "y"]))

    rendered = render_template(definition, TemplateVariables(body=("{{2}}", "{{1}}")))

    assert rendered.body == "A {{2}} B {{1}} C"


def test_repeated_variable_gets_the_same_value() -> None:
    definition = parse(body_only("Hi {{1}}, yes {{1}}!", ["x"]))

    assert render_template(definition, TemplateVariables(body=("Ada",))).body == "Hi Ada, yes Ada!"


def test_header_too_few_values_is_rejected() -> None:
    problems = variables_problems(parse(full_components()), full_variables(header=()))

    assert [p["pointer"] for p in problems] == ["/variables/header"]
    assert "expected 1" in problems[0]["message"]
    assert "got 0" in problems[0]["message"]


def test_header_too_many_values_is_rejected() -> None:
    problems = variables_problems(parse(full_components()), full_variables(header=("a", "b")))

    assert [p["pointer"] for p in problems] == ["/variables/header"]


def test_body_too_few_values_is_rejected() -> None:
    problems = variables_problems(parse(full_components()), full_variables(body=("Ada",)))

    assert [p["pointer"] for p in problems] == ["/variables/body"]
    assert "expected 2" in problems[0]["message"]
    assert "got 1" in problems[0]["message"]


def test_body_too_many_values_is_rejected() -> None:
    problems = variables_problems(parse(full_components()), full_variables(body=("a", "b", "c")))

    assert [p["pointer"] for p in problems] == ["/variables/body"]


def test_button_value_missing_is_rejected() -> None:
    problems = variables_problems(parse(full_components()), full_variables(buttons={3: ("X",)}))

    assert [p["pointer"] for p in problems] == ["/variables/buttons/1"]


def test_button_too_many_values_is_rejected() -> None:
    variables = full_variables(buttons={1: ("a", "b"), 3: ("X",)})

    assert [p["pointer"] for p in variables_problems(parse(full_components()), variables)] == [
        "/variables/buttons/1"
    ]


def test_value_for_button_without_variable_is_rejected() -> None:
    variables = full_variables(buttons={0: ("x",), 1: ("a",), 3: ("X",)})

    assert [p["pointer"] for p in variables_problems(parse(full_components()), variables)] == [
        "/variables/buttons/0"
    ]


def test_value_for_missing_button_is_rejected() -> None:
    variables = full_variables(buttons={1: ("a",), 3: ("X",), 7: ("x",)})

    assert [p["pointer"] for p in variables_problems(parse(full_components()), variables)] == [
        "/variables/buttons/7"
    ]


@pytest.mark.parametrize("value", ["", " ", "\u00a0\u2003"])
def test_empty_or_whitespace_value_is_rejected(value: str) -> None:
    problems = variables_problems(parse(full_components()), full_variables(body=("Ada", value)))

    assert [p["pointer"] for p in problems] == ["/variables/body/1"]


@pytest.mark.parametrize("value", ["two\nlines", "car\rriage", "tab\there", "five     spaces"])
def test_newline_tab_or_long_space_run_in_value_is_rejected(value: str) -> None:
    problems = variables_problems(parse(full_components()), full_variables(body=(value, "#1")))

    assert [p["pointer"] for p in problems] == ["/variables/body/0"]


def test_four_consecutive_spaces_in_value_are_accepted() -> None:
    rendered = render_template(parse(full_components()), full_variables(body=("A    da", "#1")))

    assert "A    da" in rendered.body


def test_newline_in_header_value_is_rejected() -> None:
    problems = variables_problems(parse(full_components()), full_variables(header=("#4\n2",)))

    assert [p["pointer"] for p in problems] == ["/variables/header/0"]


def test_empty_button_value_is_rejected() -> None:
    variables = full_variables(buttons={1: ("",), 3: ("X",)})

    assert [p["pointer"] for p in variables_problems(parse(full_components()), variables)] == [
        "/variables/buttons/1/0"
    ]


def test_rendered_body_of_1024_characters_is_accepted() -> None:
    definition = parse(body_only("<{{1}}>", ["x"]))

    rendered = render_template(definition, TemplateVariables(body=("v" * 1022,)))

    assert len(rendered.body) == 1024


def test_body_value_over_1024_characters_is_rejected() -> None:
    definition = parse(body_only("<{{1}}>", ["x"]))

    problems = variables_problems(definition, TemplateVariables(body=("v" * 1025,)))

    assert "/variables/body/0" in [p["pointer"] for p in problems]


def test_rendered_body_over_1024_characters_is_rejected() -> None:
    definition = parse(body_only("<{{1}}>", ["x"]))

    problems = variables_problems(definition, TemplateVariables(body=("v" * 1023,)))

    assert [p["pointer"] for p in problems] == ["/variables/body"]


def test_rendered_header_over_60_characters_is_rejected() -> None:
    variables = full_variables(header=("h" * 55,))  # "Order " + 55 = 61

    assert [p["pointer"] for p in variables_problems(parse(full_components()), variables)] == [
        "/variables/header"
    ]


def test_copy_code_value_over_15_characters_is_rejected() -> None:
    variables = full_variables(buttons={1: ("o42",), 3: ("c" * 16,)})

    assert [p["pointer"] for p in variables_problems(parse(full_components()), variables)] == [
        "/variables/buttons/3/0"
    ]


def test_every_variables_problem_is_reported_together() -> None:
    variables = TemplateVariables(header=(), body=("", "a\tb"), buttons={0: ("x",)})

    with pytest.raises(TemplateVariablesError) as raised:
        render_template(parse(full_components()), variables)

    assert [p["pointer"] for p in raised.value.errors] == [
        "/variables/header",
        "/variables/body/0",
        "/variables/body/1",
        "/variables/buttons/0",
        "/variables/buttons/1",
        "/variables/buttons/3",
    ]
    assert raised.value.code == "template_variables_invalid"


def test_template_variables_default_to_empty() -> None:
    variables = TemplateVariables()

    assert (variables.header, variables.body, dict(variables.buttons)) == ((), (), {})


def test_template_variables_copy_the_callers_buttons() -> None:
    buttons = {1: ("a",)}
    variables = TemplateVariables(buttons=buttons)

    buttons[2] = ("b",)

    assert dict(variables.buttons) == {1: ("a",)}


safe_value = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "S"]) | st.just(" "), min_size=1, max_size=40
).filter(lambda value: value.strip() != "" and "     " not in value)


@settings(database=None, max_examples=200)
@given(values=st.lists(safe_value, min_size=3, max_size=3))
def test_rendered_body_contains_every_value(values: list[str]) -> None:
    definition = parse(body_only("Dear {{1}}, order {{2}} is {{3}}.", ["a", "b", "c"]))

    rendered = render_template(definition, TemplateVariables(body=tuple(values)))

    assert all(value in rendered.body for value in values)
    assert rendered.body == f"Dear {values[0]}, order {values[1]} is {values[2]}."


# --------------------------------------------------------------------------------------------
# Quick-reply payloads


def test_button_payload_format() -> None:
    assert button_payload("msg_01abc", 2) == "cf1:msg_01abc:2"


def test_button_payload_round_trip() -> None:
    assert parse_button_payload(button_payload("msg_01abc", 0)) == ("msg_01abc", 0)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "Track",
        "cf1",
        "cf1:msg_1",
        "cf1:msg_1:",
        "cf1::1",
        "cf2:msg_1:1",
        "CF1:msg_1:1",
        "cf1:msg_1:one",
        "cf1:msg_1:-1",
        "cf1:msg_1:+1",
        "cf1:msg_1:01",
        "cf1:msg_1:1.0",
        "cf1:msg_1: 1",
        "cf1:msg_1:\u0661",
        "cf1:msg_1:1:extra",
        "x:cf1:msg_1:1",
    ],
)
def test_malformed_payload_is_not_ours(payload: str) -> None:
    assert parse_button_payload(payload) is None


@pytest.mark.parametrize(("message_id", "index"), [("", 0), ("msg:1", 0), ("msg_1", -1)])
def test_button_payload_refuses_what_cannot_be_read_back(message_id: str, index: int) -> None:
    with pytest.raises(ValueError):
        button_payload(message_id, index)


@settings(database=None)
@given(
    message_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=40),
    index=st.integers(min_value=0, max_value=10**6),
)
def test_payload_round_trip_property(message_id: str, index: int) -> None:
    assert parse_button_payload(button_payload(message_id, index)) == (message_id, index)
