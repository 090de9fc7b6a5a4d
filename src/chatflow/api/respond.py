"""Writing responses, and POSTs made safe to retry with `Idempotency-Key`.

A POST with an `Idempotency-Key` runs its use case and stores the response in the same
transaction, so a retry after a crash or a lost response finds either nothing (and runs again) or
the stored response (and gets it byte for byte, with `Idempotent-Replayed: true`). The same key
with another request is a 422. Keys are scoped to the organization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from starlette.responses import Response

from chatflow.domain.access import Actor
from chatflow.domain.errors import IdempotencyKeyReusedError, ValidationError
from chatflow.domain.paging import Page
from chatflow.storage import idempotency
from chatflow.storage.database import Database, Tx
from chatflow.views import to_json

T = TypeVar("T")
JSON = "application/json"
MAX_KEY_LENGTH = 255


def json_response(view: Mapping[str, Any], status: int = 200) -> Response:
    return Response(to_json(view), status, media_type=JSON)


def page_response(page: Page[T], view: Callable[[T], Mapping[str, Any]]) -> Response:
    return json_response(
        {"data": [view(item) for item in page.items], "next_cursor": page.next_cursor}
    )


@dataclass(frozen=True, slots=True)
class _Rendered:
    status: int
    body: str
    replayed: bool


async def write(
    request: Request,
    database: Database,
    actor: Actor,
    work: Callable[[Tx], T],
    render: Callable[[T], tuple[int, Mapping[str, Any]]],
) -> Response:
    """Run `work` in one write transaction and answer with `render(result)`."""
    key = request.headers.get("idempotency-key")
    if key is None:
        status, view = render(await database.write(work))
        return json_response(view, status)
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationError(
            f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable ASCII characters",
            errors=[{"pointer": "header:Idempotency-Key", "message": "invalid"}],
        )
    body = await request.body()
    # The caller is part of the request: another agent (or key) of the organization reusing the
    # key gets a 422, never a replay of a response meant for someone else.
    fingerprint = hashlib.sha256(
        b"\n".join(
            [
                actor.kind.value.encode(),
                actor.id.encode(),
                request.method.encode(),
                request.url.path.encode(),
                request.url.query.encode(),
                body,
            ]
        )
    ).hexdigest()

    def job(tx: Tx) -> _Rendered:
        idempotency.lock_key(tx, actor.org_id, key)
        stored = idempotency.get_response(tx, actor.org_id, key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise IdempotencyKeyReusedError(
                    "This Idempotency-Key was already used with a different request; use a new "
                    "key for a new request"
                )
            return _Rendered(stored.status_code, stored.body, replayed=True)
        status, view = render(work(tx))
        text = to_json(view).decode()
        idempotency.store_response(tx, actor.org_id, key, fingerprint, status, text)
        return _Rendered(status, text, replayed=False)

    outcome = await database.write(job)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(outcome.body, outcome.status, headers=headers, media_type=JSON)
