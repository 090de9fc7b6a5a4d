"""Find a request's route by its path's segments instead of trying every route in turn.

FastAPI's router asks each route whether it matches, in order: with about 90 routes that costs
60–200 µs per request before any work starts (`bench/README.md`), more than the SQL of a send.
`RouteIndex` sits first in the router's list. It keeps the routes in a tree of path segments
(a literal segment, or any one segment for a parameter) and asks only the routes whose every
segment fits the request's path and whose methods include its method, in their original order:
usually one. It answers only when one of them matches fully; anything else (a wrong method, a
missing trailing slash, a 404) falls through to the router's own scan, so errors, redirects and
the OpenAPI document behave exactly as without it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

_CHOSEN = "chatflow.route"
_ONE_SEGMENT_PARAM = re.compile(r"\{[^}:]+(:(str|int|float|uuid))?\}")
"""A parameter whose convertor never matches a `/`: `{id}`, `{n:int}`; not `{rest:path}`."""


@dataclass(frozen=True, slots=True)
class _Entry:
    order: int
    route: BaseRoute
    methods: Collection[str] | None
    """None: any method (a WebSocket route, or a route that checks none)."""


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    parameter: _Node | None = None
    ending_here: list[_Entry] = field(default_factory=list)


def segment_pattern(path: str) -> list[str | None] | None:
    """The route's segments, None for one holding a parameter; None for a route whose parameter
    can span several segments (or whose path is not a plain one), which the tree cannot hold."""
    if not path.startswith("/"):
        return None
    pattern: list[str | None] = []
    for segment in path[1:].split("/"):
        if "{" not in segment:
            pattern.append(segment)
        elif all(_ONE_SEGMENT_PARAM.fullmatch(p) for p in re.findall(r"\{[^}]*\}", segment)):
            pattern.append(None)
        else:
            return None
    return pattern


class RouteIndex(BaseRoute):
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._root = _Node()
        self._unindexed: list[_Entry] = []
        """Routes the tree cannot hold: asked for every path, in their order among the rest."""
        for order, route in enumerate(routes):
            path = getattr(route, "path", None)
            methods = getattr(route, "methods", None) or None
            entry = _Entry(order, route, methods)
            # A mount or an unknown kind of route could match below its path: it is asked for
            # every path, so it still wins over the routes after it.
            if isinstance(path, str) and hasattr(route, "endpoint"):
                pattern = segment_pattern(path)
            else:
                pattern = None
            if pattern is None:
                self._unindexed.append(entry)
                continue
            node = self._root
            for segment in pattern:
                if segment is None:
                    node.parameter = node.parameter or _Node()
                    node = node.parameter
                else:
                    node = node.literal.setdefault(segment, _Node())
            node.ending_here.append(entry)

    def candidates(self, path: str, method: str | None) -> list[BaseRoute]:
        """The routes that could match `path` and `method`, in the routes' original order."""
        found: list[_Entry] = []
        nodes = [self._root]
        segments = path[1:].split("/") if path.startswith("/") else None
        for segment in segments or ():
            following = []
            for node in nodes:
                literal = node.literal.get(segment)
                if literal is not None:
                    following.append(literal)
                if node.parameter is not None and segment:
                    following.append(node.parameter)
            nodes = following
            if not nodes:
                break
        if segments is not None:
            for node in nodes:
                found += node.ending_here
        found += self._unindexed
        if len(found) > 1:
            found.sort(key=_order)
        return [e.route for e in found if e.methods is None or method in e.methods]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        method = scope.get("method") if scope["type"] == "http" else None
        for route in self.candidates(get_route_path(scope), method):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child_scope, _CHOSEN: route}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_CHOSEN)
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        # The indexed routes stay in the router's list, which resolves names itself.
        raise NoMatchFound(name, path_params)


def _order(entry: _Entry) -> int:
    return entry.order
