"""Routes whose request handling is worked out once, at start, instead of on every request.

For every request FastAPI reads the body, parses its content type with the `email` package,
solves the dependencies in general (caches, scopes, exit stacks), validates every parameter and
wraps the response: on `POST /v1/chatrooms/{id}/messages` that was a quarter of the server's
time, more than the SQL of the send (`docs/benchmarks.md`). A `CompiledRoute` is an `APIRoute`
(the OpenAPI document, the matching and the errors are FastAPI's) that looks at its endpoint once
and, when every parameter is of a kind it knows, answers the common request itself:

- path parameters typed `str` are taken as they are; other path and query parameters are read
  by their alias and validated by their FastAPI field;
- dependencies are `async def` functions of the Request alone (the caller, the database), called
  directly;
- a JSON body is parsed as Starlette parses it and validated by its FastAPI field;
- the endpoint is `async` and returns a Response.

Anything else about a request (a body that is not `application/json`, invalid JSON, a value that
does not validate, a dependency override in force) goes to FastAPI's own handler for the route,
with the body replayed, so every error is the one FastAPI would give. Nothing is called before that
decision, so a request is never half handled by both. A route with a parameter of another kind
(headers, a query model, a default made afresh per request, a dependency with its own
parameters, a concurrency limit or a scope) is left to FastAPI whole (`compiled` is False). The
routes must sit in the app's router themselves, as chatflow puts them: FastAPI answers for routes
it included from another router through its own copy.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, get_args

from fastapi import params
from fastapi._compat import ModelField, field_annotation_is_sequence, lenient_issubclass
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute
from pydantic import BaseModel, Json
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")
Dependency = tuple[str, Callable[..., Awaitable[Any]], str]
"""A dependency's parameter name, its function, and the name its Request is passed as."""


class _UncommonRequestError(Exception):
    """The request goes to FastAPI's own handler."""


class CompiledRoute(APIRoute):
    compiled: bool
    """Whether common requests are answered without FastAPI's per-request machinery."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        plan = _plan(self)
        self.compiled = plan is not None
        if plan is not None:
            self.app = plan.asgi(self.app)


class _Plan:
    def __init__(
        self,
        endpoint: Callable[..., Awaitable[Response]],
        *,
        plain_path: Sequence[str],
        typed_path: Sequence[_Param],
        query: Sequence[_Param],
        dependencies: Sequence[Dependency],
        request_name: str | None,
        body: _Body | None,
        overrides: Any,
    ) -> None:
        self.endpoint = endpoint
        self.overrides = overrides
        """What FastAPI reads dependency overrides from (the app), if the route has it."""
        self.plain_path = tuple(plain_path)
        self.typed_path = tuple(typed_path)
        self.query = tuple(query)
        self.dependencies = tuple(dependencies)
        self.request_name = request_name
        self.body = body

    def asgi(self, fastapi_app: ASGIApp) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive, send)
            try:
                values = await self._values(request)
            except _UncommonRequestError:
                await fastapi_app(scope, _replaying(request, receive), send)
                return
            for name, call, request_param in self.dependencies:
                values[name] = await call(**{request_param: request})
            response = await self.endpoint(**values)
            await response(scope, receive, send)

        return app

    async def _values(self, request: Request) -> dict[str, Any]:
        """The endpoint's arguments but the dependencies', or `_UncommonRequestError`."""
        if self.overrides is not None and self.overrides.dependency_overrides:
            raise _UncommonRequestError
        values: dict[str, Any] = {}
        if self.body is not None:
            try:
                raw = await request.body()
            except Exception:  # a client gone mid-body: FastAPI's answer is a 400
                raise _UncommonRequestError from None
            values[self.body.name] = self.body.value(raw, request.headers.get("content-type"))
        path_params = request.scope["path_params"]
        for name in self.plain_path:
            values[name] = path_params[name]
        for param in self.typed_path:
            values[param.name] = param.value(path_params.get(param.alias))
        if self.query:
            query = request.query_params
            for param in self.query:
                given = query.getlist(param.alias) if param.sequence else query.get(param.alias)
                values[param.name] = param.value(given)
        if self.request_name is not None:
            values[self.request_name] = request
        return values


class _Body:
    """A JSON body: parsed, then validated by FastAPI's own field for it, as FastAPI does."""

    __slots__ = ("_default", "_field", "_required", "name")

    def __init__(self, field: ModelField) -> None:
        self._field = field
        self.name = field.name
        self._required = field.field_info.is_required()
        self._default = field.default

    @classmethod
    def of(cls, field: ModelField) -> _Body | None:
        return cls(field) if _fixed_default(field) else None

    def value(self, raw: bytes, content_type: str | None) -> Any:
        if not raw:
            if self._required:
                raise _UncommonRequestError
            return self._default
        if not _is_plain_json(content_type):
            raise _UncommonRequestError
        try:
            # The standard library's parser, as Starlette's `Request.json`: faster ones read
            # some documents otherwise (orjson reads an integer past 64 bits as a float).
            parsed = json.loads(raw)
        except Exception:  # not JSON, not UTF-8, nested too deep: FastAPI's 400s
            raise _UncommonRequestError from None
        return _validated(self._field, parsed, ("body",))


class _Param:
    """A path or query parameter: read by its alias, validated by FastAPI's own field, the
    default when absent. What `request_params_to_args` does, worked out once."""

    __slots__ = ("_default", "_field", "_loc", "_required", "alias", "name", "sequence")

    def __init__(self, field: ModelField) -> None:
        self._field = field
        self.name = field.name
        self.alias = field.alias
        self.sequence = field_annotation_is_sequence(field.field_info.annotation)
        self._required = field.field_info.is_required()
        self._default = field.default
        self._loc = (_where(field), field.alias)

    @classmethod
    def of(cls, field: ModelField) -> _Param | None:
        info = field.field_info
        plain = (
            info.validation_alias in (None, field.alias)
            and not any(type(m) is Json for m in info.metadata)
            and not _mentions_model(info.annotation)
            and _fixed_default(field)
        )
        return cls(field) if plain else None

    def value(self, raw: Any) -> Any:
        if raw is None or (self.sequence and not raw):
            if self._required:
                raise _UncommonRequestError
            return self._default
        return _validated(self._field, raw, self._loc)


def _validated(field: ModelField, value: Any, loc: tuple[str, ...]) -> Any:
    """`value` as FastAPI's field for it validates it; any error is FastAPI's to report."""
    valid, errors = field.validate(value, {}, loc=loc)
    if errors:
        raise _UncommonRequestError
    return valid


def _fixed_default(field: ModelField) -> bool:
    """Required, or a default that is the same value on every request: FastAPI copies the
    default (or calls its factory) each time, which only matters for the other kinds."""
    info = field.field_info
    if info.is_required():
        return True
    return (
        info.default_factory is None
        and not info.validate_default
        and isinstance(field.default, (type(None), bool, int, float, str))
    )


def _mentions_model(annotation: Any) -> bool:
    """A pydantic model anywhere in the type (`Filters | None` too): FastAPI reads such query
    parameters as a model of several parameters."""
    return lenient_issubclass(annotation, BaseModel) or any(
        _mentions_model(arg) for arg in get_args(annotation)
    )


def _where(field: ModelField) -> str:
    info = field.field_info
    assert isinstance(info, params.Param)
    return str(info.in_.value)


def _is_plain_json(content_type: str | None) -> bool:
    """`application/json`, with or without parameters: what FastAPI reads as JSON for sure."""
    if content_type is None:
        return False
    return content_type.partition(";")[0].strip().lower() == "application/json"


def _replaying(request: Request, receive: Receive) -> Receive:
    """`receive` for FastAPI's handler: the body again, if this handler has read it."""
    body: bytes | None = getattr(request, "_body", None)
    if body is None:
        return receive
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _has_nothing_else(dependant: Dependant) -> bool:
    """No parameter kinds this handler does not know (headers, cookies, responses, tasks…)."""
    return not (
        dependant.header_params
        or dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )


def _dependency(sub: Dependant) -> Dependency | None:
    call = sub.call
    if (
        sub.name is None
        or call is None
        or not inspect.iscoroutinefunction(call)
        or sub.request_param_name is None
        or sub.dependencies
        or sub.path_params
        or sub.query_params
        or sub.body_params
        or sub.concurrency is not None  # Depends(max_concurrency=...) holds a semaphore
        or sub.scope is not None
        or not _has_nothing_else(sub)
    ):
        return None
    return sub.name, call, sub.request_param_name


def _plan(route: APIRoute) -> _Plan | None:
    dependant = route.dependant
    endpoint = dependant.call
    returns = get_typed_return_annotation(endpoint) if endpoint is not None else None
    if (
        endpoint is None
        or not inspect.iscoroutinefunction(endpoint)
        or not (inspect.isclass(returns) and issubclass(returns, Response))
        or route.max_body_size is not None
        or not _has_nothing_else(dependant)
    ):
        return None
    dependencies = _every([_dependency(sub) for sub in dependant.dependencies])
    if dependencies is None or len({d[1] for d in dependencies}) != len(dependencies):
        return None  # FastAPI calls a repeated dependency once per request
    body = None
    if dependant.body_params:
        field = route.body_field
        if route._embed_body_fields or field is None or len(dependant.body_params) != 1:
            return None
        body = _Body.of(field)
        if body is None:
            return None
    plain_path = [
        f.name
        for f in dependant.path_params
        if _plain_string(f) and isinstance(route.param_convertors.get(f.name), StringConvertor)
    ]
    typed_path = _every([_Param.of(f) for f in dependant.path_params if f.name not in plain_path])
    query = _every([_Param.of(f) for f in dependant.query_params])
    if typed_path is None or query is None:
        return None
    return _Plan(
        endpoint,
        plain_path=plain_path,
        typed_path=typed_path,
        query=query,
        dependencies=dependencies,
        request_name=dependant.request_param_name,
        body=body,
        overrides=route.dependency_overrides_provider,
    )


def _every(items: list[T | None]) -> list[T] | None:
    """The items, if none is missing (a parameter or dependency of a kind left to FastAPI)."""
    found = [item for item in items if item is not None]
    return found if len(found) == len(items) else None


def _plain_string(field: ModelField) -> bool:
    """A `str` with no constraints and no alias: valid as it comes."""
    info = field.field_info
    return info.annotation is str and not info.metadata and field.alias == field.name
