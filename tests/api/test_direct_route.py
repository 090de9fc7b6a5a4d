"""Direct routes: documented like any route, called without FastAPI's dependency solving, and
only for endpoints that have nothing to solve."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Query, Request
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse, Response

from chatflow.api.direct_route import DirectRoute
from chatflow.api.problems import install
from chatflow.domain.errors import NotFoundError


async def _echo(request: Request, name: str) -> Response:
    if name == "missing":
        raise NotFoundError("No such name")
    return PlainTextResponse(f"{request.method} {name} {(await request.body()).decode()}")


def test_a_direct_route_calls_its_endpoint_and_errors_become_problems() -> None:
    app = FastAPI()
    install(app)
    app.router.add_api_route(
        "/echo/{name}", _echo, methods=["POST"], route_class_override=DirectRoute
    )
    with TestClient(app) as client:
        answer = client.post("/echo/ada", content=b"hello")
        assert (answer.status_code, answer.text) == (200, "POST ada hello")
        missing = client.post("/echo/missing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "not_found"
        assert client.get("/echo/ada").status_code == 405
    parameters = app.openapi()["paths"]["/echo/{name}"]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["name"]


async def _with_query(request: Request, name: str, limit: Annotated[int, Query()] = 1) -> Response:
    return PlainTextResponse(name)


async def _dependency() -> int:
    return 1


async def _with_dependency(
    request: Request, name: str, value: Annotated[int, Depends(_dependency)]
) -> Response:
    return PlainTextResponse(name)


async def _typed_path(request: Request, number: int) -> Response:
    return PlainTextResponse(str(number))


async def _without_request(name: str) -> Response:
    return PlainTextResponse(name)


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/q/{name}", _with_query),
        ("/d/{name}", _with_dependency),
        ("/t/{number}", _typed_path),
        ("/r/{name}", _without_request),
    ],
)
def test_an_endpoint_with_anything_to_solve_is_refused(path: str, endpoint: object) -> None:
    with pytest.raises(TypeError, match="direct route"):
        DirectRoute(path, endpoint, methods=["POST"])  # type: ignore[arg-type]
