"""WhatsApp-shaped message templates: validating a definition, rendering it, button payloads.

A definition arrives in WhatsApp's creation shape (a list of HEADER / BODY / FOOTER / BUTTONS
component dicts). `parse_template` checks it against WhatsApp's published rules and reports every
problem at once, each with a JSON pointer into the request body, so an integrator can fix a
template in one round trip. `render_template` fills a valid definition with the values sent at
send time and produces what the customer sees. `button_payload` / `parse_button_payload` encode the
template message and the button index into a quick-reply payload so that a tap identifies both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from chatflow.domain.errors import TemplateInvalidError, TemplateVariablesError

__all__ = [
    "BODY_MAX_LENGTH",
    "BUTTON_TEXT_MAX_LENGTH",
    "COPY_CODE_LABEL",
    "COPY_CODE_MAX_LENGTH",
    "FOOTER_MAX_LENGTH",
    "HEADER_TEXT_MAX_LENGTH",
    "MAX_BUTTONS",
    "NAME_MAX_LENGTH",
    "TEMPLATE_CATEGORIES",
    "URL_MAX_LENGTH",
    "ButtonType",
    "HeaderFormat",
    "RenderedButton",
    "RenderedTemplate",
    "TemplateButton",
    "TemplateDefinition",
    "TemplateHeader",
    "TemplateVariables",
    "button_payload",
    "parse_button_payload",
    "parse_template",
    "render_template",
    "to_components",
]

ButtonType = Literal["QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE"]
HeaderFormat = Literal["TEXT", "IMAGE", "VIDEO", "DOCUMENT"]

NAME_MAX_LENGTH = 512
HEADER_TEXT_MAX_LENGTH = 60
BODY_MAX_LENGTH = 1024
FOOTER_MAX_LENGTH = 60
BUTTON_TEXT_MAX_LENGTH = 25
COPY_CODE_MAX_LENGTH = 15
URL_MAX_LENGTH = 2000
MAX_BUTTONS = 10
TEMPLATE_CATEGORIES = ("AUTHENTICATION", "MARKETING", "UTILITY")
# WhatsApp shows a fixed label on copy-code buttons; the definition carries no text for them.
COPY_CODE_LABEL = "Copy code"

_BUTTON_TYPES: dict[str, ButtonType] = {
    "QUICK_REPLY": "QUICK_REPLY",
    "URL": "URL",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "COPY_CODE": "COPY_CODE",
}
_HEADER_FORMATS: dict[str, HeaderFormat] = {
    "TEXT": "TEXT",
    "IMAGE": "IMAGE",
    "VIDEO": "VIDEO",
    "DOCUMENT": "DOCUMENT",
}
_MAX_BUTTONS_BY_TYPE: dict[ButtonType, int] = {
    "QUICK_REPLY": 10,
    "URL": 2,
    "PHONE_NUMBER": 1,
    "COPY_CODE": 1,
}
_COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2,4}){0,2}")
_PHONE_NUMBER = re.compile(r"\+[0-9]{6,20}")
# Anything in double braces is meant as a variable; only `{{n}}` (n ≥ 1, no leading zero) is one.
_VARIABLE_LIKE = re.compile(r"\{\{([^{}]*)\}\}")
_VARIABLE = re.compile(r"\{\{([1-9][0-9]*)\}\}")
_VARIABLE_NUMBER = re.compile(r"[1-9][0-9]*")
_VARIABLE_AT_START = re.compile(r"\A\{\{[1-9][0-9]*\}\}")
_VARIABLE_AT_END = re.compile(r"\{\{[1-9][0-9]*\}\}\Z")
# WhatsApp rejects parameters with newlines, tabs or more than four consecutive spaces.
_FORBIDDEN_IN_VALUE = re.compile(r"[\n\r\t]| {5,}")

_PAYLOAD_PREFIX = "cf1"
_PAYLOAD_INDEX = re.compile(r"0|[1-9][0-9]*")


# --------------------------------------------------------------------------------------------
# The definition


@dataclass(frozen=True, slots=True)
class TemplateHeader:
    """The optional header.

    `text` is set only for the TEXT format. `example` holds the example values WhatsApp's review
    needs: the header variable's example for TEXT (empty when the text has no variable), the media
    handles for IMAGE, VIDEO and DOCUMENT.
    """

    format: HeaderFormat
    text: str | None
    example: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TemplateButton:
    """One button, in definition order (its position is its index when sending and on a tap).

    `text` is the label (the fixed "Copy code" for COPY_CODE). `url` is set for URL buttons,
    `phone_number` for PHONE_NUMBER buttons. `example` is the URL variable's example for a URL
    button that has a variable, the example code for COPY_CODE, and None otherwise.
    """

    type: ButtonType
    text: str
    url: str | None
    phone_number: str | None
    example: str | None


@dataclass(frozen=True, slots=True)
class TemplateDefinition:
    """A template definition that satisfies every rule `parse_template` checks.

    `body_examples` are the body variables' examples, one per variable (empty without variables).
    """

    header: TemplateHeader | None
    body: str
    body_examples: tuple[str, ...]
    footer: str | None
    buttons: tuple[TemplateButton, ...]

    @property
    def header_variable_count(self) -> int:
        """How many values the header takes at send time (0 or 1)."""
        if self.header is None or self.header.text is None:
            return 0
        return _variable_count(self.header.text)

    @property
    def body_variable_count(self) -> int:
        """How many values the body takes at send time."""
        return _variable_count(self.body)

    @property
    def button_variable_counts(self) -> dict[int, int]:
        """Button index → how many values it takes at send time, for buttons that take any.

        A URL button with a variable takes its URL suffix; a COPY_CODE button takes its code.
        """
        counts: dict[int, int] = {}
        for index, button in enumerate(self.buttons):
            if button.type == "COPY_CODE":
                counts[index] = 1
            elif button.type == "URL" and button.url is not None:
                count = _variable_count(button.url)
                if count:
                    counts[index] = count
        return counts


def _variable_count(text: str) -> int:
    # Valid texts number their variables 1..n without gaps, so the highest number is the count.
    return max((int(match.group(1)) for match in _VARIABLE.finditer(text)), default=0)


class _Problems:
    """Collects every problem so that one error can report them all."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, pointer: str, message: str) -> None:
        self.items.append({"pointer": pointer, "message": message})

    def __bool__(self) -> bool:
        return bool(self.items)

    def summary(self, subject: str) -> str:
        count = len(self.items)
        plural = "s" if count != 1 else ""
        return f"{subject} has {count} problem{plural}: {self.items[0]['message']}"


def parse_template(
    name: str, language: str, category: str, components: object
) -> TemplateDefinition:
    """Validate a template in WhatsApp's creation shape and return its normalised definition.

    Component types (and header formats and button types) are accepted in any case. Unknown keys
    are ignored. Raises `TemplateInvalidError` listing every problem found, each as
    `{"pointer": <JSON pointer into the request body>, "message": ...}`.
    """
    problems = _Problems()
    _check_identity(name, language, category, problems)
    definition = _parse_components(components, problems)
    if problems or definition is None:
        raise TemplateInvalidError(problems.summary("The template"), problems.items)
    return definition


def _check_identity(name: object, language: object, category: object, problems: _Problems) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.add(
            "/name",
            "name must start with a lower-case letter and contain only a-z, 0-9 and _",
        )
    elif len(name) > NAME_MAX_LENGTH:
        problems.add("/name", f"name must be at most {NAME_MAX_LENGTH} characters")
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        problems.add("/language", "language must be a code such as en, en_US or pt_BR")
    if category not in TEMPLATE_CATEGORIES:
        problems.add("/category", f"category must be one of {', '.join(TEMPLATE_CATEGORIES)}")


def _parse_components(components: object, problems: _Problems) -> TemplateDefinition | None:
    # A str is a Sequence too, but never a list of components.
    if not isinstance(components, Sequence) or isinstance(components, str | bytes):
        problems.add("/components", "components must be a list of component objects")
        return None

    header: TemplateHeader | None = None
    body: tuple[str, tuple[str, ...]] | None = None
    footer: str | None = None
    buttons: tuple[TemplateButton, ...] = ()
    seen: set[str] = set()
    body_seen = False

    for index, component in enumerate(components):
        pointer = f"/components/{index}"
        if not isinstance(component, Mapping):
            problems.add(pointer, "each component must be an object")
            continue
        raw_type = component.get("type")
        component_type = raw_type.upper() if isinstance(raw_type, str) else None
        if component_type not in _COMPONENT_TYPES:
            problems.add(f"{pointer}/type", f"type must be one of {', '.join(_COMPONENT_TYPES)}")
            continue
        if component_type in seen:
            problems.add(f"{pointer}/type", f"a template may have only one {component_type}")
            continue
        seen.add(component_type)
        if component_type == "HEADER":
            header = _parse_header(component, pointer, problems)
        elif component_type == "BODY":
            body_seen = True
            body = _parse_body(component, pointer, problems)
        elif component_type == "FOOTER":
            footer = _parse_footer(component, pointer, problems)
        else:
            buttons = _parse_buttons(component, pointer, problems)

    if not body_seen:
        problems.add("/components", "a BODY component is required")
    if body is None:
        return None
    return TemplateDefinition(
        header=header, body=body[0], body_examples=body[1], footer=footer, buttons=buttons
    )


def _required_text(
    component: Mapping[str, Any], pointer: str, problems: _Problems, max_length: int
) -> str | None:
    """The component's `text`, or None (with a problem recorded) when missing, blank or long."""
    text = component.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.add(f"{pointer}/text", "text is required")
        return None
    if len(text) > max_length:
        problems.add(
            f"{pointer}/text", f"text must be at most {max_length} characters (got {len(text)})"
        )
        return None
    return text


def _variable_numbers(text: str, pointer: str, problems: _Problems) -> list[int]:
    """The numbers of the valid variables in `text`; records a problem for each malformed one."""
    numbers: list[int] = []
    for match in _VARIABLE_LIKE.finditer(text):
        inner = match.group(1)
        if _VARIABLE_NUMBER.fullmatch(inner):
            numbers.append(int(inner))
        else:
            problems.add(
                pointer,
                f"{match.group(0)} is not a valid variable: use {{{{1}}}}, {{{{2}}}}, ...",
            )
    return numbers


def _check_no_variables(text: str, pointer: str, problems: _Problems, what: str) -> None:
    if _VARIABLE_LIKE.search(text):
        problems.add(pointer, f"{what} may not contain variables")


def _check_numbering(numbers: list[int], pointer: str, problems: _Problems) -> None:
    present = set(numbers)
    first_missing = 1
    # Bounded by the number of distinct variables, however large the numbers written.
    while first_missing in present:
        first_missing += 1
    if len(present) != first_missing - 1:
        problems.add(
            pointer,
            f"variables must be numbered {{{{1}}}}, {{{{2}}}}, ... without gaps:"
            f" {{{{{first_missing}}}}} is missing",
        )


def _string_list(value: object) -> list[str] | None:
    """`value` as a list of strings, or None when it is not one."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return list(value)


def _example(component: Mapping[str, Any], key: str) -> object:
    example = component.get("example")
    return example.get(key) if isinstance(example, Mapping) else None


def _parse_header(
    component: Mapping[str, Any], pointer: str, problems: _Problems
) -> TemplateHeader | None:
    raw_format = component.get("format")
    header_format = _HEADER_FORMATS.get(raw_format.upper()) if isinstance(raw_format, str) else None
    if header_format is None:
        problems.add(f"{pointer}/format", f"format must be one of {', '.join(_HEADER_FORMATS)}")
        return None

    if header_format != "TEXT":
        if component.get("text") is not None:
            problems.add(f"{pointer}/text", f"a {header_format} header has no text")
        handles = _string_list(_example(component, "header_handle"))
        if not handles or not all(handle.strip() for handle in handles):
            problems.add(
                f"{pointer}/example/header_handle",
                f"a {header_format} header needs example.header_handle:"
                " a non-empty list of media handles",
            )
            return None
        return TemplateHeader(format=header_format, text=None, example=tuple(handles))

    text = _required_text(component, pointer, problems, HEADER_TEXT_MAX_LENGTH)
    if text is None:
        return None
    numbers = _variable_numbers(text, f"{pointer}/text", problems)
    if any(number != 1 for number in numbers):
        problems.add(f"{pointer}/text", "a header may have at most one variable, {{1}}")
        return None
    if not numbers:
        # Without a variable there is nothing to exemplify; a stray example is ignored.
        return TemplateHeader(format="TEXT", text=text, example=())
    examples = _string_list(_example(component, "header_text"))
    if examples is None or len(examples) != 1:
        got = "none" if examples is None else str(len(examples))
        problems.add(
            f"{pointer}/example/header_text",
            f"example.header_text must list exactly 1 value for the header variable (got {got})",
        )
        return None
    if not examples[0].strip():
        problems.add(f"{pointer}/example/header_text/0", "example values may not be empty")
        return None
    return TemplateHeader(format="TEXT", text=text, example=tuple(examples))


def _parse_body(
    component: Mapping[str, Any], pointer: str, problems: _Problems
) -> tuple[str, tuple[str, ...]] | None:
    text = _required_text(component, pointer, problems, BODY_MAX_LENGTH)
    if text is None:
        return None
    numbers = _variable_numbers(text, f"{pointer}/text", problems)
    _check_numbering(numbers, f"{pointer}/text", problems)
    stripped = text.strip()
    if _VARIABLE_AT_START.search(stripped):
        problems.add(f"{pointer}/text", "the body may not start with a variable")
    if _VARIABLE_AT_END.search(stripped):
        problems.add(f"{pointer}/text", "the body may not end with a variable")
    count = max(numbers, default=0)
    if count == 0:
        return text, ()

    example_pointer = f"{pointer}/example/body_text"
    body_text = _example(component, "body_text")
    rows = body_text if isinstance(body_text, list) else None
    examples = _string_list(rows[0]) if rows is not None and len(rows) == 1 else None
    if examples is None or len(examples) != count:
        got = "none" if examples is None else str(len(examples))
        problems.add(
            example_pointer,
            f"example.body_text must be [[...]] with exactly {count} value"
            f"{'s' if count != 1 else ''}, one per variable (got {got})",
        )
        return None
    empty = [position for position, value in enumerate(examples) if not value.strip()]
    for position in empty:
        problems.add(f"{example_pointer}/0/{position}", "example values may not be empty")
    if empty:
        return None
    return text, tuple(examples)


def _parse_footer(component: Mapping[str, Any], pointer: str, problems: _Problems) -> str | None:
    text = _required_text(component, pointer, problems, FOOTER_MAX_LENGTH)
    if text is None:
        return None
    _check_no_variables(text, f"{pointer}/text", problems, "the footer")
    return text


def _parse_buttons(
    component: Mapping[str, Any], pointer: str, problems: _Problems
) -> tuple[TemplateButton, ...]:
    raw_buttons = component.get("buttons")
    if not isinstance(raw_buttons, list) or not raw_buttons:
        problems.add(f"{pointer}/buttons", "buttons must be a non-empty list")
        return ()
    if len(raw_buttons) > MAX_BUTTONS:
        problems.add(
            f"{pointer}/buttons",
            f"a template may have at most {MAX_BUTTONS} buttons (got {len(raw_buttons)})",
        )

    buttons: list[TemplateButton] = []
    types: list[ButtonType] = []
    for index, raw_button in enumerate(raw_buttons):
        button_pointer = f"{pointer}/buttons/{index}"
        if not isinstance(raw_button, Mapping):
            problems.add(button_pointer, "each button must be an object")
            continue
        raw_type = raw_button.get("type")
        button_type = _BUTTON_TYPES.get(raw_type.upper()) if isinstance(raw_type, str) else None
        if button_type is None:
            problems.add(
                f"{button_pointer}/type", f"type must be one of {', '.join(_BUTTON_TYPES)}"
            )
            continue
        types.append(button_type)
        button = _parse_button(raw_button, button_type, button_pointer, problems)
        if button is not None:
            buttons.append(button)

    for button_type, limit in _MAX_BUTTONS_BY_TYPE.items():
        count = types.count(button_type)
        # A per-type limit as high as the total one adds nothing to the total's problem.
        if count > limit and limit < MAX_BUTTONS:
            problems.add(
                f"{pointer}/buttons",
                f"a template may have at most {limit} {button_type} button"
                f"{'s' if limit != 1 else ''} (got {count})",
            )
    quick_replies = [i for i, button_type in enumerate(types) if button_type == "QUICK_REPLY"]
    if quick_replies and quick_replies[-1] - quick_replies[0] + 1 != len(quick_replies):
        problems.add(
            f"{pointer}/buttons",
            "QUICK_REPLY buttons must be grouped together, not interleaved with other buttons",
        )
    return tuple(buttons)


def _parse_button(
    raw_button: Mapping[str, Any], button_type: ButtonType, pointer: str, problems: _Problems
) -> TemplateButton | None:
    if button_type == "COPY_CODE":
        code = raw_button.get("example")
        if not isinstance(code, str) or not code.strip():
            problems.add(f"{pointer}/example", "a COPY_CODE button needs an example code")
            return None
        if len(code) > COPY_CODE_MAX_LENGTH:
            problems.add(
                f"{pointer}/example",
                f"the example code must be at most {COPY_CODE_MAX_LENGTH} characters"
                f" (got {len(code)})",
            )
            return None
        return TemplateButton(
            type="COPY_CODE", text=COPY_CODE_LABEL, url=None, phone_number=None, example=code
        )

    text = _required_text(raw_button, pointer, problems, BUTTON_TEXT_MAX_LENGTH)
    if text is not None:
        _check_no_variables(text, f"{pointer}/text", problems, "button text")

    if button_type == "QUICK_REPLY":
        url: str | None = None
        phone_number: str | None = None
        example: str | None = None
    elif button_type == "PHONE_NUMBER":
        url, example = None, None
        phone_number = _parse_phone_number(raw_button, pointer, problems)
        if phone_number is None:
            return None
    else:
        phone_number = None
        parsed_url = _parse_url(raw_button, pointer, problems)
        if parsed_url is None:
            return None
        url, example = parsed_url

    if text is None:
        return None
    return TemplateButton(
        type=button_type, text=text, url=url, phone_number=phone_number, example=example
    )


def _parse_phone_number(
    raw_button: Mapping[str, Any], pointer: str, problems: _Problems
) -> str | None:
    phone_number = raw_button.get("phone_number")
    if not isinstance(phone_number, str) or not _PHONE_NUMBER.fullmatch(phone_number):
        problems.add(
            f"{pointer}/phone_number",
            "phone_number must be + followed by 6 to 20 digits, e.g. +15551234567",
        )
        return None
    return phone_number


def _parse_url(
    raw_button: Mapping[str, Any], pointer: str, problems: _Problems
) -> tuple[str, str | None] | None:
    """The URL and, when it has a variable, its example; None when invalid."""
    url = raw_button.get("url")
    url_pointer = f"{pointer}/url"
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        problems.add(url_pointer, "url must start with https:// or http://")
        return None
    if len(url) > URL_MAX_LENGTH:
        problems.add(url_pointer, f"url must be at most {URL_MAX_LENGTH} characters")
        return None
    problem_count = len(problems.items)
    numbers = _variable_numbers(url, url_pointer, problems)
    if numbers and (numbers != [1] or not url.endswith("{{1}}")):
        problems.add(url_pointer, "a URL may have one variable, {{1}}, only at its very end")
    if len(problems.items) != problem_count:
        return None
    if not numbers:
        return url, None
    examples = _string_list(raw_button.get("example"))
    if examples is None or len(examples) != 1 or not examples[0].strip():
        problems.add(
            f"{pointer}/example",
            "a URL with a variable needs example: a list of exactly 1 non-empty value",
        )
        return None
    return url, examples[0]


def to_components(definition: TemplateDefinition) -> list[dict[str, object]]:
    """The definition in WhatsApp's creation shape, with upper-case types.

    `parse_template` accepts it back and returns an equal definition.
    """
    components: list[dict[str, object]] = []
    header = definition.header
    if header is not None:
        header_component: dict[str, object] = {"type": "HEADER", "format": header.format}
        if header.text is not None:
            header_component["text"] = header.text
        if header.example:
            key = "header_text" if header.format == "TEXT" else "header_handle"
            header_component["example"] = {key: list(header.example)}
        components.append(header_component)

    body_component: dict[str, object] = {"type": "BODY", "text": definition.body}
    if definition.body_examples:
        body_component["example"] = {"body_text": [list(definition.body_examples)]}
    components.append(body_component)

    if definition.footer is not None:
        components.append({"type": "FOOTER", "text": definition.footer})

    if definition.buttons:
        components.append(
            {"type": "BUTTONS", "buttons": [_button_component(b) for b in definition.buttons]}
        )
    return components


def _button_component(button: TemplateButton) -> dict[str, object]:
    if button.type == "COPY_CODE":
        return {"type": "COPY_CODE", "example": button.example}
    component: dict[str, object] = {"type": button.type, "text": button.text}
    if button.url is not None:
        component["url"] = button.url
        if button.example is not None:
            component["example"] = [button.example]
    if button.phone_number is not None:
        component["phone_number"] = button.phone_number
    return component


# --------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True, slots=True)
class TemplateVariables:
    """The values sent with a template: header, body, and per button index (URL suffix or code)."""

    header: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    buttons: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Copy what the caller passed, so later changes to their lists or dict cannot leak in.
        object.__setattr__(self, "header", tuple(self.header))
        object.__setattr__(self, "body", tuple(self.body))
        object.__setattr__(
            self,
            "buttons",
            MappingProxyType({index: tuple(values) for index, values in self.buttons.items()}),
        )


@dataclass(frozen=True, slots=True)
class RenderedButton:
    """A button as sent: `url` for URL buttons (variable filled in), `code` for COPY_CODE."""

    index: int
    type: ButtonType
    text: str
    url: str | None
    phone_number: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class RenderedTemplate:
    """A template filled with its values: what the customer sees."""

    header_text: str | None
    header_format: HeaderFormat | None
    body: str
    footer: str | None
    buttons: tuple[RenderedButton, ...]

    @property
    def text(self) -> str:
        """Plain-text preview: the text header, body and footer, separated by blank lines."""
        parts = [self.header_text if self.header_format == "TEXT" else None, self.body, self.footer]
        return "\n\n".join(part for part in parts if part)

    @property
    def quick_replies(self) -> tuple[tuple[int, str], ...]:
        """The quick-reply buttons as (index, text), in order."""
        return tuple(
            (button.index, button.text) for button in self.buttons if button.type == "QUICK_REPLY"
        )


def render_template(
    definition: TemplateDefinition, variables: TemplateVariables
) -> RenderedTemplate:
    """Fill `definition` with `variables`.

    Each list must have exactly as many values as its part takes; values must be non-blank and
    free of newlines, tabs and runs of more than 4 spaces; body values and the rendered body are
    at most 1024 characters. Values are inserted literally (a value containing `{{1}}` stays as
    written). Raises `TemplateVariablesError` listing every problem, with pointers
    `/variables/header`, `/variables/body`, `/variables/buttons/<index>` (count problems) and the
    same followed by `/<position>` (problems with one value).
    """
    problems = _Problems()
    _check_values(
        "/variables/header", variables.header, definition.header_variable_count, None, problems
    )
    _check_values(
        "/variables/body", variables.body, definition.body_variable_count, BODY_MAX_LENGTH, problems
    )
    expected_buttons = definition.button_variable_counts
    for index in sorted(set(expected_buttons) | set(variables.buttons)):
        pointer = f"/variables/buttons/{index}"
        if index not in expected_buttons:
            problems.add(pointer, f"button {index} takes no variable")
            continue
        values = variables.buttons.get(index, ())
        _check_values(pointer, values, expected_buttons[index], None, problems)
    if problems:
        raise TemplateVariablesError(problems.summary("The template variables"), problems.items)

    header = definition.header
    header_text = None
    if header is not None and header.text is not None:
        header_text = _substitute(header.text, variables.header)
        if len(header_text) > HEADER_TEXT_MAX_LENGTH:
            problems.add(
                "/variables/header",
                f"the rendered header must be at most {HEADER_TEXT_MAX_LENGTH} characters"
                f" (got {len(header_text)})",
            )
    body = _substitute(definition.body, variables.body)
    if len(body) > BODY_MAX_LENGTH:
        problems.add(
            "/variables/body",
            f"the rendered body must be at most {BODY_MAX_LENGTH} characters (got {len(body)})",
        )
    buttons = tuple(
        _render_button(index, button, variables.buttons.get(index, ()), problems)
        for index, button in enumerate(definition.buttons)
    )
    if problems:
        raise TemplateVariablesError(problems.summary("The template variables"), problems.items)
    return RenderedTemplate(
        header_text=header_text,
        header_format=header.format if header is not None else None,
        body=body,
        footer=definition.footer,
        buttons=buttons,
    )


def _check_values(
    pointer: str,
    values: tuple[str, ...],
    expected: int,
    max_length: int | None,
    problems: _Problems,
) -> None:
    if len(values) != expected:
        problems.add(
            pointer,
            f"expected {expected} value{'s' if expected != 1 else ''}, got {len(values)}",
        )
    for position, value in enumerate(values):
        value_pointer = f"{pointer}/{position}"
        if not value.strip():
            problems.add(value_pointer, "the value may not be empty")
        elif _FORBIDDEN_IN_VALUE.search(value):
            problems.add(
                value_pointer,
                "the value may not contain newlines, tabs or more than 4 consecutive spaces",
            )
        if max_length is not None and len(value) > max_length:
            problems.add(
                value_pointer,
                f"the value must be at most {max_length} characters (got {len(value)})",
            )


def _substitute(text: str, values: tuple[str, ...]) -> str:
    # One pass over the definition's text: inserted values are never scanned for variables.
    return _VARIABLE.sub(lambda match: values[int(match.group(1)) - 1], text)


def _render_button(
    index: int, button: TemplateButton, values: tuple[str, ...], problems: _Problems
) -> RenderedButton:
    url = None
    code = None
    if button.url is not None:
        url = _substitute(button.url, values)
        if len(url) > URL_MAX_LENGTH:
            problems.add(
                f"/variables/buttons/{index}",
                f"the rendered URL must be at most {URL_MAX_LENGTH} characters (got {len(url)})",
            )
    if button.type == "COPY_CODE":
        code = values[0]
        if len(code) > COPY_CODE_MAX_LENGTH:
            problems.add(
                f"/variables/buttons/{index}/0",
                f"the code must be at most {COPY_CODE_MAX_LENGTH} characters (got {len(code)})",
            )
    return RenderedButton(
        index=index,
        type=button.type,
        text=button.text,
        url=url,
        phone_number=button.phone_number,
        code=code,
    )


# --------------------------------------------------------------------------------------------
# Quick-reply payloads


def button_payload(message_id: str, index: int) -> str:
    """The payload sent with quick-reply button `index` of template message `message_id`.

    WhatsApp returns it on a tap; `parse_button_payload` reads it back. Raises ValueError for an
    empty id, an id containing ':' or a negative index, which could not be read back.
    """
    if not message_id or ":" in message_id:
        raise ValueError("message_id must be non-empty and may not contain ':'")
    if index < 0:
        raise ValueError("index must not be negative")
    return f"{_PAYLOAD_PREFIX}:{message_id}:{index}"


def parse_button_payload(payload: str) -> tuple[str, int] | None:
    """The (message id, button index) encoded by `button_payload`, or None for any other string."""
    parts = payload.split(":")
    if len(parts) != 3:
        return None
    prefix, message_id, index = parts
    if prefix != _PAYLOAD_PREFIX or not message_id or not _PAYLOAD_INDEX.fullmatch(index):
        return None
    return message_id, int(index)
