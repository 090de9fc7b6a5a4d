"""`WS /v1/stream`: the live event stream (protocol in docs/api.md, "Live stream"; close codes
in `api/live_socket.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket

from chatflow.api.deps import SESSION_COOKIE, Runtime
from chatflow.api.live_socket import (
    CLOSE_INVALID_CURSOR,
    CLOSE_UNAUTHENTICATED,
    close,
    resume_position,
    serve,
)
from chatflow.domain.errors import AuthenticationError, InvalidCursorError
from chatflow.live.hub import LiveEvent, StreamSubscriber

router = APIRouter(tags=["stream"])


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """The caller's events, live: an agent's chatrooms, or an admin's or API key's whole
    organization. `?after=<cursor>` resumes after that event, with no gap and no duplicate."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    token = _token(websocket)
    try:
        actor = await runtime.authenticator.authenticate(token)
    except AuthenticationError as exc:
        await close(websocket, CLOSE_UNAUTHENTICATED, str(exc))
        return
    try:
        after = resume_position(websocket.query_params.get("after"))
    except InvalidCursorError as exc:
        await close(websocket, CLOSE_INVALID_CURSOR, str(exc))
        return

    async def recheck(subscriber: StreamSubscriber) -> None:
        # A session that ended, or an agent deactivated or demoted while connected, stops
        # receiving what it may no longer see.
        subscriber.actor = await runtime.authenticator.authenticate(token)

    await serve(
        websocket,
        runtime.hub.open(actor, after),
        heartbeat_seconds=runtime.settings.stream_heartbeat_seconds,
        frames=_event_frames,
        recheck=recheck,
    )


def _token(websocket: WebSocket) -> str | None:
    """`Authorization: Bearer`, else `?access_token=` (browsers cannot set headers on a
    WebSocket), else the session cookie, from this server's own pages only: a browser sends the
    cookie with a handshake that any site starts, and the stream must not answer those."""
    header = websocket.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    query = websocket.query_params.get("access_token")
    if query:
        return query
    origin = websocket.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        return None
    return websocket.cookies.get(SESSION_COOKIE)


async def _event_frames(items: Sequence[LiveEvent]) -> list[str]:
    # Cursors are URL-safe base64 and the body is JSON already: no escaping needed.
    return [f'{{"type":"event","cursor":"{item.cursor}","event":{item.body}}}' for item in items]
