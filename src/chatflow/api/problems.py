"""Errors at the edge: every failure leaves as RFC 9457 `application/problem+json` with a `code`.

Domain errors map to statuses here, once, by walking the exception's class hierarchy.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from chatflow.domain import errors

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://chatflow.dev/problems/"

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.ValidationError: 422,
    errors.InvalidCursorError: 400,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.IdempotencyKeyReusedError: 422,
    errors.ProviderError: 502,
    errors.DomainError: 400,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
}


def status_for(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """`extra` members extend the problem (RFC 9457 §3.2); they never replace a standard one."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    for key, value in (extra or {}).items():
        if value is not None:
            body.setdefault(key, value)
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.DomainError)
    status = status_for(exc)
    extra: dict[str, Any] = dict(exc.extra)
    if isinstance(exc, errors.ValidationError) and exc.errors:
        extra["errors"] = exc.errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, exc.code, exc.title, exc.detail, request.url.path, headers, extra)


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        if where == "body":
            return "/" + "/".join(rest)
        return f"{where}:" + ".".join(rest)
    return "/" + "/".join(parts)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    malformed = False
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            malformed = True
        problems.append(
            {
                "pointer": _pointer(tuple(error.get("loc", ()))),
                "message": error.get("msg", "invalid"),
            }
        )
    if malformed:
        return problem(
            400,
            "malformed_json",
            "The body is not valid JSON",
            "The request body could not be parsed as JSON",
            request.url.path,
            extra={"errors": problems},
        )
    return problem(
        422,
        "validation_error",
        "The request is not valid",
        "; ".join(f"{p['pointer']}: {p['message']}" for p in problems[:5]),
        request.url.path,
        extra={"errors": problems},
    )


def _allowed_methods(request: Request) -> str:
    """Every method of the resource: Starlette names only the first route whose path matched."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if (
            isinstance(route, Route)
            and route.methods
            and route.matches(request.scope)[0] != Match.NONE
        ):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "The request failed"
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allowed}
    return problem(exc.status_code, code, detail, detail, request.url.path, headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "internal_error",
        "Something went wrong on our side",
        "The error was logged; nothing of this request was stored",
        request.url.path,
    )


class RefuseNulMiddleware:
    """Refuses a NUL in the path or query before it reaches storage: PostgreSQL text holds none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            response = problem(
                422,
                "validation_error",
                "The request is not valid",
                "The path and the query may not contain a NUL character",
                scope["path"],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNulMiddleware)
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "code": {"type": "string"},
                        "instance": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
    for status, description in {
        400: "Malformed request (bad JSON, bad cursor)",
        401: "Missing or invalid credentials",
        403: "Not allowed for this caller",
        404: "Not found in your organization",
        409: "Conflicts with the current state",
        422: "Invalid input",
    }.items()
}
