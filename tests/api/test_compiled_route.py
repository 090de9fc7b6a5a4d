"""Compiled routes answer common requests without FastAPI's per-request machinery, and answer
every other request exactly as FastAPI does (they hand it over, body included)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

import fastapi.routing
import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.problems import install
from chatflow.domain.errors import AuthenticationError


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10)
    pinned: bool = False


async def caller(request: Request) -> str:
    token = request.headers.get("authorization")
    if token != "Bearer good":
        raise AuthenticationError("Send the good token")
    return "ada"


Caller = Annotated[str, Depends(caller)]


def _routes(router: APIRouter) -> None:
    @router.post("/rooms/{room_id}/notes", status_code=201)
    async def add_note(
        room_id: str,
        body: Note,
        request: Request,
        who: Caller,
        limit: Annotated[int, Query(ge=1, le=5)] = 1,
    ) -> Response:
        return JSONResponse(
            {
                "room": room_id,
                "note": body.model_dump(),
                "who": who,
                "limit": limit,
                "method": request.method,
            },
            201,
        )

    @router.post("/rooms/{number}/read")
    async def mark_read(number: int, who: Caller, body: Note | None = None) -> Response:
        return JSONResponse({"number": number, "note": None if body is None else body.text})

    @router.get("/rooms")
    async def rooms(
        who: Caller, kinds: Annotated[list[str] | None, Query(alias="kind")] = None
    ) -> Response:
        return JSONResponse({"kinds": kinds})


def _app(
    route_class: type[fastapi.routing.APIRoute],
    routes: Callable[[APIRouter], None] = _routes,
) -> FastAPI:
    app = FastAPI()
    install(app)
    router = APIRouter(route_class=route_class, dependency_overrides_provider=app)
    routes(router)
    app.router.routes.extend(router.routes)
    return app


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of the requests FastAPI's own handler answered, in apps built after it."""
    calls: list[str] = []
    request_response = fastapi.routing.request_response

    def counting(handler: Any) -> ASGIApp:
        app = request_response(handler)

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            calls.append(scope["path"])
            await app(scope, receive, send)

        return counted

    monkeypatch.setattr(fastapi.routing, "request_response", counting)
    yield calls


GOOD = {"Authorization": "Bearer good"}
JSON = {**GOOD, "Content-Type": "application/json"}

# (method, path, headers, body): common requests, then the ones FastAPI must answer.
Req = tuple[str, str, dict[str, str], bytes | None]
COMMON: list[Req] = [
    ("POST", "/rooms/r1/notes", JSON, b'{"text": "hello"}'),
    ("POST", "/rooms/r1/notes?limit=3", JSON, b'{"text": "hi", "pinned": true}'),
    (
        "POST",
        "/rooms/r1/notes",
        {**GOOD, "Content-Type": "application/json; charset=utf-8"},
        b'{"text": "x"}',
    ),
    ("POST", "/rooms/7/read", JSON, b'{"text": "seen"}'),
    ("POST", "/rooms/7/read", GOOD, b""),
    ("POST", "/rooms/7/read", JSON, b"null"),
    ("GET", "/rooms?kind=a&kind=b", GOOD, None),
    ("GET", "/rooms", GOOD, None),
    ("POST", "/rooms/r1/notes", {"Content-Type": "application/json"}, b'{"text": "hello"}'),
]
UNCOMMON: list[Req] = [
    ("POST", "/rooms/r1/notes", JSON, b'{"text": '),
    ("POST", "/rooms/r1/notes", JSON, b'{"text": ""}'),
    ("POST", "/rooms/r1/notes", JSON, b'{"text": "hello", "extra": 1}'),
    ("POST", "/rooms/r1/notes", JSON, b"[1, 2]"),
    ("POST", "/rooms/r1/notes", JSON, b""),
    ("POST", "/rooms/r1/notes", GOOD, b'{"text": "hello"}'),
    ("POST", "/rooms/r1/notes", {**GOOD, "Content-Type": "text/plain"}, b'{"text": "hello"}'),
    (
        "POST",
        "/rooms/r1/notes",
        {**GOOD, "Content-Type": "application/vnd.x+json"},
        b'{"text": "a"}',
    ),
    ("POST", "/rooms/r1/notes?limit=9", JSON, b'{"text": "hello"}'),
    ("POST", "/rooms/r1/notes?limit=x", {"Content-Type": "application/json"}, b'{"text": "a"}'),
    ("POST", "/rooms/r1/notes", {"Content-Type": "application/json"}, b'{"text": ""}'),
    ("POST", "/rooms/r1/notes", {"Content-Type": "application/json"}, b"{"),
    ("POST", "/rooms/seven/read", JSON, b'{"text": "seen"}'),
    ("POST", "/rooms/7/read", JSON, b'{"text": 5}'),
]


def _answer(client: TestClient, request: Req) -> Any:
    method, path, headers, body = request
    response = client.request(method, path, headers=headers, content=body)
    return response.status_code, response.headers.get("content-type"), response.content


@pytest.mark.parametrize("request_", COMMON + UNCOMMON, ids=lambda r: f"{r[0]} {r[1]} {r[3]!r}")
def test_a_compiled_route_answers_every_request_as_fastapi_does(
    request_: Req,
) -> None:
    with TestClient(_app(fastapi.routing.APIRoute)) as plain:
        expected = _answer(plain, request_)
    with TestClient(_app(CompiledRoute)) as compiled:
        assert _answer(compiled, request_) == expected


@pytest.mark.parametrize("request_", COMMON, ids=lambda r: f"{r[0]} {r[1]} {r[3]!r}")
def test_common_requests_skip_fastapis_dependency_solving(request_: Req, solved: list[str]) -> None:
    with TestClient(_app(CompiledRoute)) as client:
        _answer(client, request_)
    assert solved == []


@pytest.mark.parametrize("request_", UNCOMMON, ids=lambda r: f"{r[0]} {r[1]} {r[3]!r}")
def test_uncommon_requests_go_to_fastapi_with_their_body(request_: Req, solved: list[str]) -> None:
    with TestClient(_app(CompiledRoute)) as client:
        _answer(client, request_)
    assert solved == [request_[1].partition("?")[0]]


def test_a_dependency_override_sends_the_request_to_fastapi(solved: list[str]) -> None:
    app = _app(CompiledRoute)

    async def anyone() -> str:
        return "grace"

    app.dependency_overrides[caller] = anyone
    with TestClient(app) as client:
        answer = client.post("/rooms/r1/notes", json={"text": "hi"})
    assert answer.json()["who"] == "grace"
    assert solved == ["/rooms/r1/notes"]


async def _sync_dependency_owner(value: Annotated[int, Depends(lambda: 1)]) -> Response:
    return Response(str(value))


def _sync(request: Request) -> Response:
    return Response("sync")


async def _header(x_trace: Annotated[str, Header()]) -> Response:
    return Response(x_trace)


async def _plain_result() -> dict[str, str]:
    return {"ok": "yes"}


async def _twice(a: Caller, b: Caller) -> Response:
    return Response(a + b)


async def _checked_caller(who: Caller) -> str:
    return who


async def _nested(value: Annotated[str, Depends(_checked_caller)]) -> Response:
    return Response(value)


@pytest.mark.parametrize(
    "endpoint", [_sync_dependency_owner, _sync, _header, _plain_result, _twice, _nested]
)
def test_routes_with_other_kinds_of_parameters_are_left_to_fastapi(
    endpoint: Callable[..., Any],
) -> None:
    route = CompiledRoute("/x", endpoint, methods=["GET"])
    assert route.compiled is False


def test_every_route_of_the_api_but_two_is_compiled(client: TestClient) -> None:
    """Guards the hot paths: a route that stops compiling falls back silently, and slowly."""
    app = client.app
    assert isinstance(app, FastAPI)
    left_to_fastapi = {
        route.path
        for route in app.router.routes
        if isinstance(route, fastapi.routing.APIRoute) and not getattr(route, "compiled", False)
    }
    assert left_to_fastapi == {"/v1/me", "/healthz"}


class Stamp(BaseModel):
    model_config = ConfigDict(strict=True)
    at: datetime


class Filters(BaseModel):
    q: str


def _edge_routes(router: APIRouter) -> None:
    @router.post("/tags")
    async def tags(tags: Annotated[list[str], Body(max_length=2)]) -> Response:
        return JSONResponse(tags)

    @router.post("/stamps")
    async def stamps(body: Stamp) -> Response:
        return JSONResponse(body.at.isoformat())

    @router.post("/documents")
    async def documents(body: dict[str, Any]) -> Response:
        return JSONResponse({"types": {k: type(v).__name__ for k, v in body.items()}})

    @router.get("/numbers/{n:int}")
    async def numbers(n: str) -> Response:
        return JSONResponse(n)


EDGE: list[Req] = [
    ("POST", "/tags", JSON, b'["a", "b"]'),
    ("POST", "/tags", JSON, b'["a", "b", "c"]'),
    # Strict models take a datetime from a string in JSON mode only: FastAPI validates the
    # parsed body in python mode, and 422s.
    ("POST", "/stamps", JSON, b'{"at": "2020-01-01T00:00:00Z"}'),
    # Parsers differ: orjson, for one, reads an integer past 64 bits as a float.
    ("POST", "/documents", JSON, b'{"n": 1000000000000000000000000000000, "x": 1.5}'),
    ("POST", "/documents", JSON, b'{"n": NaN, "s": "\\ud800"}'),
    ("POST", "/documents", JSON, b"[" * 100_000 + b"]" * 100_000),
    # The path's int convertor hands the endpoint's str parameter an int: FastAPI 422s.
    ("GET", "/numbers/5", GOOD, None),
]


@pytest.mark.parametrize("request_", EDGE, ids=lambda r: f"{r[0]} {r[1]} {r[3]!r}")
def test_constraints_strict_models_and_path_convertors_answer_as_in_fastapi(
    request_: Req,
) -> None:
    with TestClient(_app(fastapi.routing.APIRoute, _edge_routes)) as plain:
        expected = _answer(plain, request_)
    with TestClient(_app(CompiledRoute, _edge_routes)) as compiled:
        assert _answer(compiled, request_) == expected


def test_a_client_gone_mid_body_gets_fastapis_answer() -> None:
    async def answer(app: FastAPI) -> list[int]:
        messages: list[Message] = [
            {"type": "http.request", "body": b'{"text": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
        started: list[int] = []

        async def receive() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.append(message["status"])

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/rooms/r1/notes",
            "raw_path": b"/rooms/r1/notes",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"authorization", b"Bearer good")],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("test", 80),
            "client": ("test", 1),
            "root_path": "",
        }
        await app(scope, receive, send)
        return started

    plain = asyncio.run(answer(_app(fastapi.routing.APIRoute)))
    assert plain == [400]
    assert asyncio.run(answer(_app(CompiledRoute))) == plain


async def _limited_dependency(request: Request) -> int:
    return 1


async def _limited(
    value: Annotated[int, Depends(_limited_dependency, max_concurrency=1)],
) -> Response:
    return Response(str(value))


async def _query_model(f: Annotated[Filters | None, Query()] = None) -> Response:
    return Response("")


async def _mutable_default(body: dict[str, int] = {}) -> Response:  # noqa: B006
    return Response("")


@pytest.mark.parametrize("endpoint", [_limited, _query_model, _mutable_default])
def test_concurrency_limits_query_models_and_fresh_defaults_are_left_to_fastapi(
    endpoint: Callable[..., Any],
) -> None:
    assert CompiledRoute("/x", endpoint, methods=["POST"]).compiled is False
