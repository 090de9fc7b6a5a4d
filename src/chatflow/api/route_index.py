"""Find a request's route by its leading path segments instead of trying every route in turn.

FastAPI's router asks each route whether it matches, in order: with about 90 routes that costs
60–200 µs per request before any work starts (`bench/README.md`), more than the SQL of a send.
`RouteIndex` sits first in the router's list and asks only the routes whose literal prefix fits
the request's path, in their original order. It answers only when one of them matches fully;
anything else (a wrong method, a missing trailing slash, a 404) falls through to the router's own
scan, so errors, redirects and the OpenAPI document behave exactly as without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

PREFIX_DEPTH = 2
"""How many leading literal segments key the index (`/v1/chatrooms/...` → `v1`, `chatrooms`)."""
_CHOSEN = "chatflow.route"


def literal_prefix(path: str) -> tuple[str, ...]:
    """The route's leading segments before its first parameter, at most PREFIX_DEPTH of them."""
    prefix: list[str] = []
    for segment in path.split("/")[1 : PREFIX_DEPTH + 1]:
        if "{" in segment:
            break
        prefix.append(segment)
    return tuple(prefix)


class RouteIndex(BaseRoute):
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        keyed: list[tuple[tuple[str, ...], BaseRoute]] = []
        for route in routes:
            path = getattr(route, "path", None)
            # A mount or an unknown kind of route could match below its prefix: index only the
            # plain routes and leave the rest to the router's scan.
            if isinstance(path, str) and path.startswith("/") and hasattr(route, "endpoint"):
                keyed.append((literal_prefix(path), route))

        def fitting(segments: tuple[str, ...]) -> list[BaseRoute]:
            return [r for prefix, r in keyed if segments[: len(prefix)] == prefix]

        firsts = {prefix[0] for prefix, _ in keyed if prefix}
        pairs = {prefix[:2] for prefix, _ in keyed if len(prefix) >= 2}
        self._anywhere = fitting(())
        self._by_first = {first: fitting((first,)) for first in firsts}
        self._by_pair = {pair: fitting(pair) for pair in pairs}

    def candidates(self, path: str) -> list[BaseRoute]:
        segments = path.split("/", PREFIX_DEPTH + 1)[1 : PREFIX_DEPTH + 1]
        if len(segments) >= 2:
            found = self._by_pair.get((segments[0], segments[1]))
            if found is not None:
                return found
        if segments:
            return self._by_first.get(segments[0], self._anywhere)
        return self._anywhere

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        for route in self.candidates(get_route_path(scope)):
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
