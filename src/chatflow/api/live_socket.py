"""Serving a live-stream subscriber over a WebSocket: the protocol `WS /v1/stream` and the web
chat's stream share (frames, heartbeats, close codes), whatever each renders its events as.

The handshake is always accepted; a refusal is a close frame with a code and a reason, since a
browser sees those but not the status of a refused handshake:

- 4400: `after` is not a cursor this API issued.
- 4401: no valid credential, or it ended while connected: authenticate again.
- 4429: the client fell more than `CHATFLOW_STREAM_MAX_PENDING` events behind: reconnect with
  `after=` the cursor in the reason (the last one sent), losing nothing.
- 1001: the server is shutting down: reconnect likewise.
- 1011: the server failed to send events to this client: reconnect likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

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

CLOSE_INVALID_CURSOR = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4429
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011

_MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes
_MAX_CURSOR_LENGTH = 512

Frames = Callable[[Sequence[LiveEvent]], Awaitable[Sequence[str]]]
"""Renders a page of events as the text frames this stream sends."""
Recheck = Callable[[StreamSubscriber], Awaitable[None]]
"""Called once per heartbeat interval; raises `AuthenticationError` when the client may no
longer receive events (the stream then closes with 4401)."""


def resume_position(cursor: str | None) -> LogPosition | None:
    """The position after which to resume, from a cursor this API issued (None: from now)."""
    if cursor is None:
        return None
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursorError("The cursor is not one this API issued")
    return decode_position(cursor)


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    encoded = reason.encode()[:_MAX_REASON_BYTES]
    with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
        await websocket.close(code, encoded.decode(errors="ignore"))


async def serve(
    websocket: WebSocket,
    subscriber: StreamSubscriber,
    *,
    heartbeat_seconds: float,
    frames: Frames,
    recheck: Recheck | None = None,
) -> None:
    """Send `subscriber`'s events until the client goes or the stream must close; what the
    client sends meanwhile is ignored. The subscriber is closed on the way out."""
    sending = asyncio.create_task(_send(websocket, subscriber, heartbeat_seconds, frames, recheck))
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


async def _send(
    websocket: WebSocket,
    subscriber: StreamSubscriber,
    heartbeat: float,
    frames: Frames,
    recheck: Recheck | None,
) -> None:
    loop = asyncio.get_running_loop()
    try:
        async for page in subscriber.catch_up():
            for frame in await frames(page):
                await websocket.send_text(frame)
        await websocket.send_text(_control("ready", subscriber.cursor))
        check_again_at = loop.time() + heartbeat
        while True:
            items = await subscriber.next(heartbeat)
            if items:
                for frame in await frames(items):
                    await websocket.send_text(frame)
            else:
                await websocket.send_text(_control("heartbeat", subscriber.cursor))
            if recheck is not None and loop.time() >= check_again_at:
                check_again_at = loop.time() + heartbeat
                await recheck(subscriber)
    except SubscriberLaggingError:
        await close(
            websocket, CLOSE_TOO_SLOW, f"Too far behind; reconnect with after={subscriber.cursor}"
        )
    except HubStoppedError:
        await close(
            websocket, CLOSE_GOING_AWAY, f"Shutting down; reconnect with after={subscriber.cursor}"
        )
    except StreamClosedError:
        await close(
            websocket,
            CLOSE_INTERNAL_ERROR,
            f"Server error; reconnect with after={subscriber.cursor}",
        )
    except AuthenticationError as exc:
        await close(websocket, CLOSE_UNAUTHENTICATED, str(exc))
    except WebSocketDisconnect:
        return


def _control(kind: str, cursor: str) -> str:
    # Cursors are URL-safe base64: no escaping needed.
    return f'{{"type":"{kind}","cursor":"{cursor}"}}'


async def _until_disconnected(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
