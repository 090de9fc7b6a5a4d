"""Routes served without FastAPI's per-request machinery, for providers' hottest webhooks.

For every request FastAPI builds a Request, solves the endpoint's dependencies, validates its
parameters and wraps its response: about a fifth of what the server spends on a WhatsApp
notification, the insert that stores it included (`docs/benchmarks.md`). A `DirectRoute` is
documented from its endpoint like any other route, but calls it directly with the Request and
the path's parameters, which must be all it takes: strings and the Request, nothing to solve.
Errors it raises reach the app's exception handlers as any route's do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class DirectRoute(APIRoute):
    def __init__(
        self, path: str, endpoint: Callable[..., Awaitable[Response]], **kwargs: Any
    ) -> None:
        super().__init__(path, endpoint, **kwargs)
        dependant = self.dependant
        needs_solving = (
            dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.dependencies
            or any(p.field_info.annotation is not str for p in dependant.path_params)
        )
        request_name = dependant.request_param_name
        if needs_solving or request_name is None:
            raise TypeError(
                f"{endpoint.__qualname__}: a direct route's endpoint takes the Request and "
                "string path parameters, nothing else"
            )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            response = await endpoint(**scope["path_params"], **{request_name: request})
            await response(scope, receive, send)

        self.app = app
