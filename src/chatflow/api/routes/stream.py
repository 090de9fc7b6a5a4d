"""`WS /v1/stream`: the live event stream (protocol in docs/api.md, "Live stream").

The handshake is always accepted; a refusal is a close frame with a code and a reason, since a
browser sees those but not the status of a refused handshake:

- 4400: `after` is not a cursor this API issued.
- 4401: no valid API key or session, or it ended while connected: authenticate again.
- 4429: the client fell more than `CHATFLOW_STREAM_MAX_PENDING` events behind: reconnect with
  `after=` the cursor in the reason (the last one sent), losing nothing.
- 1001: the server is shutting down: reconnect likewise.
- 1011: the server failed to send events to this client: reconnect likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

from chatflow.api.deps import SESSION_COOKIE, Runtime
from chatflow.domain.errors import AuthenticationError, InvalidCursorError
from chatflow.domain.models import LogPosition
from chatflow.live.hub import (
    HubStoppedError,
    LiveEvent,
    StreamClosedError,
    StreamSubscriber,
    SubscriberLaggingError,
    decode_position,
)

router = APIRouter(tags=["stream"])

CLOSE_INVALID_CURSOR = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4429
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011

_MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes


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
        await _close(websocket, CLOSE_UNAUTHENTICATED, str(exc))
        return
    try:
        after = _after(websocket.query_params.get("after"))
    except InvalidCursorError as exc:
        await _close(websocket, CLOSE_INVALID_CURSOR, str(exc))
        return
    subscriber = runtime.hub.open(actor, after)
    sending = asyncio.create_task(_send(websocket, subscriber, runtime, token))
    receiving = asyncio.create_task(_until_disconnected(websocket))
    try:
        await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        subscriber.close()
        for task in (sending, receiving):
            task.cancel()
        # `wait`, not `gather`: if this handler is cancelled meanwhile, its own cancellation
        # must propagate, not the CancelledError of a task it cancelled.
        await asyncio.wait({sending, receiving})
    failure = None if sending.cancelled() else sending.exception()
    if failure is not None:
        raise failure


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


def _after(cursor: str | None) -> LogPosition | None:
    if cursor is None:
        return None
    if len(cursor) > 512:
        raise InvalidCursorError("The cursor is not one this API issued")
    return decode_position(cursor)


async def _send(
    websocket: WebSocket, subscriber: StreamSubscriber, runtime: Runtime, token: str | None
) -> None:
    heartbeat = runtime.settings.stream_heartbeat_seconds
    loop = asyncio.get_running_loop()
    try:
        async for page in subscriber.catch_up():
            await _send_events(websocket, page)
        await websocket.send_text(_control("ready", subscriber.cursor))
        check_again_at = loop.time() + heartbeat
        while True:
            items = await subscriber.next(heartbeat)
            if items:
                await _send_events(websocket, items)
            else:
                await websocket.send_text(_control("heartbeat", subscriber.cursor))
            if loop.time() >= check_again_at:
                # A session that ended, or an agent deactivated or demoted while connected,
                # stops receiving what it may no longer see.
                check_again_at = loop.time() + heartbeat
                subscriber.actor = await runtime.authenticator.authenticate(token)
    except SubscriberLaggingError:
        await _close(
            websocket, CLOSE_TOO_SLOW, f"Too far behind; reconnect with after={subscriber.cursor}"
        )
    except HubStoppedError:
        await _close(
            websocket, CLOSE_GOING_AWAY, f"Shutting down; reconnect with after={subscriber.cursor}"
        )
    except StreamClosedError:
        await _close(
            websocket,
            CLOSE_INTERNAL_ERROR,
            f"Server error; reconnect with after={subscriber.cursor}",
        )
    except AuthenticationError as exc:
        await _close(websocket, CLOSE_UNAUTHENTICATED, str(exc))
    except WebSocketDisconnect:
        return


async def _send_events(websocket: WebSocket, items: Sequence[LiveEvent]) -> None:
    for item in items:
        # Cursors are URL-safe base64 and the body is JSON already: no escaping needed.
        await websocket.send_text(
            f'{{"type":"event","cursor":"{item.cursor}","event":{item.body}}}'
        )


def _control(kind: str, cursor: str) -> str:
    return f'{{"type":"{kind}","cursor":"{cursor}"}}'


async def _until_disconnected(websocket: WebSocket) -> None:
    """What the client sends is ignored; this only notices that it went."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    encoded = reason.encode()[:_MAX_REASON_BYTES]
    with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
        await websocket.close(code, encoded.decode(errors="ignore"))
