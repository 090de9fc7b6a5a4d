"""The route index picks the route the router's own scan would pick, and leaves the rest to it."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Match

from chatflow.api.route_index import RouteIndex, literal_prefix


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


def test_literal_prefix_stops_at_the_first_parameter() -> None:
    assert literal_prefix("/v1/chatrooms/{id}/messages") == ("v1", "chatrooms")
    assert literal_prefix("/chat/{key}/stream") == ("chat",)
    assert literal_prefix("/{anything}") == ()
    assert literal_prefix("/healthz") == ("healthz",)


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
