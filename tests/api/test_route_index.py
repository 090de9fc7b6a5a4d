"""The route index picks the route the router's own scan would pick, and leaves the rest to it."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Match

from chatflow.api.route_index import RouteIndex, segment_pattern


@pytest.fixture
def app(client: TestClient) -> FastAPI:
    assert isinstance(client.app, FastAPI)
    return client.app


def scanned(routes: list[BaseRoute], scope: dict[str, object]) -> BaseRoute | None:
    """What FastAPI's router picks: the first route that matches fully."""
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match is Match.FULL:
            return route
    return None


def sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x_1", path)


def test_a_route_is_held_by_its_segments_with_a_parameter_standing_for_any_one() -> None:
    assert segment_pattern("/v1/chatrooms/{id}/messages") == ["v1", "chatrooms", None, "messages"]
    assert segment_pattern("/chat/{key:int}/stream") == ["chat", None, "stream"]
    assert segment_pattern("/files/{name}.json") == ["files", None]
    assert segment_pattern("/") == [""]
    # A parameter that can span segments cannot be held: such a route is asked for every path.
    assert segment_pattern("/static/{rest:path}") is None


def test_the_index_picks_the_same_route_as_the_scan_for_every_route(app: FastAPI) -> None:
    index, *routes = app.router.routes
    assert isinstance(index, RouteIndex)
    checked = 0
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        methods = getattr(route, "methods", None) or {None}
        for method in methods:
            scope = {
                "type": "http" if method else "websocket",
                "method": method,
                "path": sample_path(path),
                "root_path": "",
                "headers": [],
            }
            match, child = index.matches(dict(scope))
            expected = scanned(routes, scope)
            assert expected is not None, path
            assert match is Match.FULL, (method, path)
            assert child["chatflow.route"] is expected, (method, path)
            checked += 1
    assert checked > 80


def test_where_a_literal_and_a_parameter_both_fit_the_index_picks_as_the_scan(
    app: FastAPI,
) -> None:
    """Every route's path with its parameters replaced by other routes' literal segments (say
    `/v1/chatrooms/search` against `/v1/chatrooms/{chatroom_id}`), with every method."""
    index, *routes = app.router.routes
    assert isinstance(index, RouteIndex)
    words = sorted(
        {w for r in routes for w in str(getattr(r, "path", "")).split("/") if w and "{" not in w}
    )
    methods = sorted({m for r in routes for m in getattr(r, "methods", None) or ()})
    checked = 0
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str) or "{" not in path:
            continue
        for word in words:
            for method in methods:
                scope = {
                    "type": "http",
                    "method": method,
                    "path": re.sub(r"\{[^}]+\}", word, path),
                    "root_path": "",
                    "headers": [],
                }
                match, child = index.matches(dict(scope))
                expected = scanned(routes, scope)
                if expected is None:
                    assert match is Match.NONE, (method, scope["path"])
                else:
                    assert child["chatflow.route"] is expected, (method, scope["path"])
                checked += 1
    assert checked > 1000


def test_a_route_the_tree_cannot_hold_keeps_its_place_in_the_order() -> None:
    from starlette.routing import Route

    async def endpoint(_: object) -> None: ...

    anything = Route("/files/{rest:path}", endpoint, methods=["GET"])
    later = Route("/files/{name}", endpoint, methods=["GET"])
    index = RouteIndex([anything, later])
    scope = {"type": "http", "method": "GET", "path": "/files/a", "root_path": "", "headers": []}
    assert index.matches(scope)[1]["chatflow.route"] is anything
    assert index.candidates("/files/a", "POST") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/chatrooms"),  # a wrong method: the scan answers 405
        ("GET", "/v1/chatrooms/"),  # a trailing slash: the scan redirects
        ("GET", "/nowhere/at/all"),
        ("GET", "/"),
    ],
)
def test_what_the_index_cannot_match_falls_through_to_the_scan(
    app: FastAPI, method: str, path: str
) -> None:
    index = app.router.routes[0]
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    assert index.matches(scope) == (Match.NONE, {})


def test_errors_and_the_openapi_document_are_as_without_the_index(client: TestClient) -> None:
    assert client.delete("/v1/chatrooms").status_code == 405
    assert client.get("/nowhere").status_code == 404
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/chatrooms/{chatroom_id}/messages" in paths
    assert "/v1/flows/{flow_id}/runs" in paths
