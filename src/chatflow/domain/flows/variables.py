"""Variable references in flow parameters (R10): `{path}` and `{{ path }}`.

A flow step's parameters are text with references to what the run knows: `{contact.first_name}`,
`{{ steps.ask.reply.text }}`, `{steps.http.body.items.0.id}`, `{trigger.headers.content-type}`.
Any brace that does not form a reference is literal, so a JSON body such as `{"a": {"b": 1}}`
needs no escaping; `\\{` writes a literal `{` where a reference would otherwise be read.

A path is only ever a lookup in dicts and lists: nothing is evaluated as code and no attribute
of a Python object is ever read, so `{__class__}` is just a missing key.

`parse` splits a template into literal text and references (never failing: a parameter that is
plain text is a valid template). `render` fills one in; `render_value` keeps a lone reference's
raw value; `render_tree` fills every string in JSON-like data. `Scope` tells validation which
paths a flow may refer to before any run exists.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Path",
    "Reference",
    "Scope",
    "Segment",
    "Text",
    "UnsetVariableError",
    "is_single_reference",
    "parse",
    "references",
    "render",
    "render_tree",
    "render_value",
    "resolve",
    "to_text",
]

Path = tuple[str, ...]

# The first segment names a variable, so it reads like an identifier; later segments are keys or
# list indexes, so digits may lead (`items.0`) and `-` is allowed (`headers.content-type`).
_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*"
_DOUBLE_REFERENCE = re.compile(r"\{\{[ \t]*(" + _PATH + r")[ \t]*\}\}")
_SINGLE_REFERENCE = re.compile(r"\{(" + _PATH + r")\}")
# Only these characters can start something other than literal text.
_SPECIAL = re.compile(r"[{\\]")
_ESCAPED_BRACE = "\\{"


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text. `text` is what it renders to; `source` is how it was written."""

    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference to a variable. `source` is how it was written, e.g. `{{ contact.name }}`."""

    path: Path
    source: str

    @property
    def dotted(self) -> str:
        """The path as written without braces, e.g. `contact.name`."""
        return ".".join(self.path)


Segment = Text | Reference


class _TextBuffer:
    """Accumulates literal text so that adjacent pieces become one `Text` segment."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.source: list[str] = []

    def add(self, text: str, source: str) -> None:
        if source:
            self.text.append(text)
            self.source.append(source)

    def flush_into(self, segments: list[Segment]) -> None:
        if self.source:
            segments.append(Text("".join(self.text), "".join(self.source)))
            self.text.clear()
            self.source.clear()


def parse(template: str) -> tuple[Segment, ...]:
    """Split `template` into literal text and references, left to right.

    At a `{` the double form is tried first, then the single form; otherwise the brace is literal
    (so `{{{x}}}` is a literal `{`, the reference `x` and a literal `}`). `\\{` is a literal `{`;
    any other backslash is literal. Never raises, and the segments' sources joined give back
    `template` exactly.
    """
    segments: list[Segment] = []
    pending = _TextBuffer()
    position = 0
    while (special := _SPECIAL.search(template, position)) is not None:
        start = special.start()
        before = template[position:start]
        pending.add(before, before)
        if template.startswith(_ESCAPED_BRACE, start):
            pending.add("{", _ESCAPED_BRACE)
            position = start + len(_ESCAPED_BRACE)
            continue
        if template[start] == "\\":
            pending.add("\\", "\\")
            position = start + 1
            continue
        match = _DOUBLE_REFERENCE.match(template, start) or _SINGLE_REFERENCE.match(template, start)
        if match is None:
            pending.add("{", "{")
            position = start + 1
            continue
        pending.flush_into(segments)
        segments.append(Reference(tuple(match.group(1).split(".")), match.group(0)))
        position = match.end()
    rest = template[position:]
    pending.add(rest, rest)
    pending.flush_into(segments)
    return tuple(segments)


def references(template: str) -> list[Reference]:
    """The references in `template`, in order (repeats included)."""
    return [segment for segment in parse(template) if isinstance(segment, Reference)]


def is_single_reference(template: str) -> bool:
    """Whether `template` is exactly one reference, with nothing around it (not even spaces)."""
    segments = parse(template)
    return len(segments) == 1 and isinstance(segments[0], Reference)


class UnsetVariableError(Exception):
    """A reference names a variable the run does not have; `path` is the reference's path."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.dotted = ".".join(path)
        super().__init__(f"The variable '{self.dotted}' is not set: {reason}")


def resolve(namespace: Mapping[str, Any], path: Path) -> Any:
    """The value at `path`: dicts are walked by key, lists and tuples by an all-digit index.

    Raises `UnsetVariableError` when any step is missing. Objects' attributes are never read.
    """
    if not path:
        raise UnsetVariableError(path, "the path is empty")
    value: Any = namespace
    for depth, segment in enumerate(path):
        if isinstance(value, Mapping):
            if segment not in value:
                raise UnsetVariableError(path, _missing(path, depth, f"no '{segment}'"))
            value = value[segment]
        elif isinstance(value, list | tuple):
            # str.isdigit alone accepts digits such as "²" that int() rejects.
            if not (segment.isascii() and segment.isdigit()):
                raise UnsetVariableError(
                    path, _missing(path, depth, f"a list, which has no '{segment}'")
                )
            index = int(segment)
            if index >= len(value):
                raise UnsetVariableError(
                    path, _missing(path, depth, f"{len(value)} items, so no item {index}")
                )
            value = value[index]
        else:
            kind = "null" if value is None else type(value).__name__
            raise UnsetVariableError(
                path, _missing(path, depth, f"a {kind}, which has no '{segment}'")
            )
    return value


def _missing(path: Path, depth: int, what_it_has: str) -> str:
    if depth == 0:
        return f"there is no variable named '{path[0]}'"
    return f"'{'.'.join(path[:depth])}' has {what_it_has}"


def to_text(value: Any) -> str:
    """How a value reads when inserted into text.

    JSON spellings for JSON scalars (`true`, `false`, and nothing for null), integral floats
    without `.0` (a number from a JSON body often arrives as 3.0), compact JSON for objects and
    lists. Anything else falls back to `str`.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text.removesuffix(".0")
    if isinstance(value, Mapping | list | tuple):
        # default=str keeps rendering total if a namespace holds a non-JSON value.
        return json.dumps(
            value if not isinstance(value, Mapping) else dict(value),
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
    return str(value)


def render(template: str, namespace: Mapping[str, Any]) -> str:
    """`template` with every reference replaced by its value as text (see `to_text`).

    Values are inserted as they are, never scanned again. Raises `UnsetVariableError` for the
    first reference the namespace does not have.
    """
    return "".join(
        segment.text if isinstance(segment, Text) else to_text(resolve(namespace, segment.path))
        for segment in parse(template)
    )


def render_value(template: str, namespace: Mapping[str, Any]) -> Any:
    """The raw value when `template` is exactly one reference, otherwise `render(template)`.

    Lets a parameter such as `"{steps.http.body.total}"` pass on a number or an object as it is.
    """
    segments = parse(template)
    if len(segments) == 1 and isinstance(segments[0], Reference):
        return resolve(namespace, segments[0].path)
    return render(template, namespace)


def render_tree(value: Any, namespace: Mapping[str, Any]) -> Any:
    """JSON-like `value` with every string in it passed through `render_value`.

    Dict keys are left as written and non-string leaves are unchanged. Because a lone reference
    keeps its value's type, an HTTP JSON body built this way is always valid JSON.
    """
    if isinstance(value, str):
        return render_value(value, namespace)
    if isinstance(value, Mapping):
        return {key: render_tree(item, namespace) for key, item in value.items()}
    if isinstance(value, list):
        return [render_tree(item, namespace) for item in value]
    if isinstance(value, tuple):
        return tuple(render_tree(item, namespace) for item in value)
    return value


@dataclass(frozen=True, slots=True)
class Scope:
    """What a flow may refer to at validation time.

    `exact` holds the known paths, e.g. ("contact", "first_name"); any proper prefix of one is
    known too, as a reference to the whole object. `open` holds prefixes under which any deeper
    path is known, for data whose shape only a run reveals, e.g. ("trigger", "body").
    """

    exact: frozenset[Path] = frozenset()
    open: frozenset[Path] = frozenset()

    def knows(self, path: Path) -> bool:
        """Whether a reference to `path` can be valid (the empty path never is)."""
        if not path:
            return False
        if path in self.exact:
            return True
        length = len(path)
        if any(len(known) > length and known[:length] == path for known in self.exact):
            return True
        return any(path[: len(prefix)] == prefix for prefix in self.open)

    def with_exact(self, *paths: Path) -> Scope:
        """This scope with `paths` known as well."""
        return dataclasses.replace(self, exact=self.exact | frozenset(paths))

    def with_open(self, *paths: Path) -> Scope:
        """This scope with anything under `paths` known as well."""
        return dataclasses.replace(self, open=self.open | frozenset(paths))
