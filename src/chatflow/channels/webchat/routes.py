"""The web-chat customer's routes: the page, its embed snippet, its API and its live stream.

Everything is under `/chat/{key}`, `key` being the channel's public key. The visitor's own calls
carry `Authorization: Bearer <visitor token>`, the token `POST /chat/{key}/visitors` returned.

`WS /chat/{key}/stream` speaks like `WS /v1/stream`, with the same close codes: the page sends
`{"type": "auth", "token": …, "after": <cursor or null>}` first (a token in the URL would end up
in access logs), then receives `ready`, `heartbeat` and `message` frames, each with the cursor to
resume after. A `message` frame carries the message as the visitor sees it (`VisitorMessageRead`),
when it is created and when its status changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import Field, TypeAdapter
from starlette.responses import Response
from typing_extensions import TypedDict

from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import Db, Runtime, bearer_token
from chatflow.api.live_socket import (
    CLOSE_INVALID_CURSOR,
    CLOSE_UNAUTHENTICATED,
    close,
    resume_position,
    serve,
)
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response
from chatflow.api.schemas import Body
from chatflow.channels.webchat import visitors
from chatflow.clock import to_millis
from chatflow.domain.errors import (
    AuthenticationError,
    InvalidCursorError,
    NotFoundError,
    ValidationError,
)
from chatflow.domain.models import Channel, Message, SenderType
from chatflow.live.audience import Visitor as StreamVisitor
from chatflow.live.hub import (
    LiveEvent,
    encode_position,
)
from chatflow.services.messages import MAX_TEXT_LENGTH
from chatflow.storage import accounts as account_store
from chatflow.storage.database import Tx
from chatflow.views import (
    MessageRead,
    VisitorMessageRead,
    message_view,
    to_json,
    visitor_message_view,
)

router = APIRouter(route_class=CompiledRoute, tags=["web chat"], responses=PROBLEM_RESPONSES)

CLOSE_NOT_FOUND = 4404
AUTH_TIMEOUT_SECONDS = 10.0
TOUCH_AFTER_MS = 5 * 60 * 1000
"""`last_seen_at` is written on a stream connect only when it is older than this."""
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


# -- static files -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _load(name: str, media_type: str) -> _Asset:
    body = (resources.files(__package__) / "static" / name).read_bytes()
    return _Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


_ASSETS = {
    "webchat.js": _load("webchat.js", "text/javascript; charset=utf-8"),
    "webchat.css": _load("webchat.css", "text/css; charset=utf-8"),
}
_EMBED = _load("embed.js", "text/javascript; charset=utf-8")
_PAGE = _load("page.html", "text/html; charset=utf-8").body.decode()


def _asset_response(request: Request, asset: _Asset, extra: dict[str, str]) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        **extra,
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, 200, headers=headers, media_type=asset.media_type)


@router.get("/chat/_static/{name}", include_in_schema=False)
async def static_file(name: str, request: Request) -> Response:
    asset = _ASSETS.get(name)
    if asset is None:
        raise NotFoundError(f"No file {name}")
    return _asset_response(request, asset, {})


# -- the page and its embed snippet ----------------------------------------------------------


def _script_json(value: Any) -> str:
    """JSON that cannot end the <script> element it is written into."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page_security(channel: Channel, request: Request) -> dict[str, str]:
    host = request.headers.get("host", "")
    origins: list[str] = channel.config.get("allowed_origins", [])
    # 'self' covers the page's own WebSocket in current browsers; older ones need it named.
    sockets = f" ws://{host} wss://{host}" if _HOST.match(host) else ""
    policy = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src 'self'{sockets}",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    if origins:
        policy.append("frame-ancestors 'self' " + " ".join(origins))
    return {
        "Content-Security-Policy": "; ".join(policy),
        "Cache-Control": "no-store",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Content-Type-Options": "nosniff",
    }


@router.get("/chat/{key}", include_in_schema=False)
async def page(key: str, request: Request, db: Db) -> Response:
    """The customer page. Any site may frame it unless the channel lists `allowed_origins`."""
    channel = await db.read(lambda tx: visitors.channel_by_key(tx, key))
    title = str(channel.config.get("title") or channel.name)
    welcome = str(channel.config.get("welcome_text") or "")
    settings = {"key": key, "title": title, "welcome_text": welcome}
    body = (
        _PAGE.replace("__TITLE__", html.escape(title))
        .replace("__WELCOME__", html.escape(welcome))
        .replace("__CONFIG__", _script_json(settings))
    )
    return Response(
        body, 200, headers=_page_security(channel, request), media_type="text/html; charset=utf-8"
    )


@router.get("/chat/{key}/embed.js", include_in_schema=False)
async def embed_script(key: str, request: Request, db: Db) -> Response:
    """The snippet a business pastes into its site: a chat button opening the page in a frame."""
    await db.read(lambda tx: visitors.channel_by_key(tx, key))
    return _asset_response(request, _EMBED, {"Cross-Origin-Resource-Policy": "cross-origin"})


# -- the visitor's API -------------------------------------------------------------------------


class VisitorStart(Body):
    name: str | None = Field(default=None, max_length=visitors.MAX_NAME)
    email: str | None = Field(default=None, max_length=visitors.MAX_EMAIL)


class VisitorStarted(TypedDict):
    token: Annotated[str, Field(description="The visitor's credential. Shown this once; keep it.")]
    name: str | None
    email: str | None


class VisitorButton(Body):
    message_id: str = Field(max_length=40, description="The template message tapped.")
    index: int = Field(ge=0, le=9, description="The button's index in the template.")


class VisitorWrite(Body):
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    button: VisitorButton | None = None
    client_id: str | None = Field(
        default=None,
        max_length=visitors.MAX_CLIENT_ID,
        description="The page's id for this message: sending it again returns the same message.",
    )


class VisitorHistory(TypedDict):
    data: Annotated[list[VisitorMessageRead], Field(description="Oldest first.")]
    next_before: Annotated[
        str | None,
        Field(description="Pass as `before` for the earlier messages; null: there are none."),
    ]
    stream_cursor: Annotated[
        str,
        Field(description="Open the stream with `after` this: nothing after this read is missed."),
    ]


def _render(message: Message, names: dict[str, str]) -> VisitorMessageRead:
    return visitor_message_view(message_view(message), names.get(message.sender_id or ""))


@router.post("/chat/{key}/visitors", status_code=201, response_model=VisitorStarted)
async def start(key: str, body: VisitorStart, db: Db) -> Response:
    """Start a conversation: a contact (no phone; the name and email given) and its token."""
    started = await db.write(
        lambda tx: visitors.do_start(tx, key, name=body.name, email=body.email)
    )
    contact = started.visitor.contact
    view = VisitorStarted(token=started.token, name=contact.first_name, email=contact.email)
    return json_response(view, 201)


@router.get("/chat/{key}/messages", response_model=VisitorHistory)
async def history(
    key: str,
    request: Request,
    db: Db,
    before: str | None = Query(default=None, max_length=40),
    limit: int = Query(default=50, ge=1, le=100),
) -> Response:
    """The visitor's conversation, newest page first, each page oldest first."""
    found = await db.read(
        lambda tx: visitors.history(tx, key, bearer_token(request), before=before, limit=limit)
    )
    view = VisitorHistory(
        data=[_render(m, found.agent_names) for m in found.messages],
        next_before=found.more_before,
        stream_cursor=encode_position(found.stream_after),
    )
    return json_response(view)


@router.post("/chat/{key}/messages", status_code=201, response_model=VisitorMessageRead)
async def write(key: str, body: VisitorWrite, request: Request, db: Db) -> Response:
    """Write `text`, or tap `button` (a quick reply of a template message of the conversation).

    Through the same inbound path as WhatsApp and the sandbox: a free-flow message bumps and hands
    over; a tap follows the flags its template was sent with (R3, R6, R8). 200 instead of 201:
    the `client_id` was sent before, and this is that message.
    """
    if (body.text is None) == (body.button is None):
        raise ValidationError(
            "Send either text or button",
            errors=[{"pointer": "/text", "message": "exactly one of text and button"}],
        )
    token = bearer_token(request)
    tap = None if body.button is None else (body.button.message_id, body.button.index)

    def work(tx: Tx) -> tuple[VisitorMessageRead, bool]:
        result, visitor = visitors.do_write(
            tx, key, token, text=body.text, tap=tap, client_id=body.client_id
        )
        names = visitors.agent_names(tx, visitor, [result.message])
        return _render(result.message, names), result.duplicate

    try:
        view, duplicate = await db.write(work)
    except sa.exc.IntegrityError:
        # The same `client_id` committed concurrently: this run finds it.
        view, duplicate = await db.write(work)
    return json_response(view, 200 if duplicate else 201)


# -- the visitor's live stream -----------------------------------------------------------------


@router.websocket("/chat/{key}/stream")
async def stream(websocket: WebSocket, key: str) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    try:
        hello = await _hello(websocket)
    except WebSocketDisconnect:
        return
    if hello is None:
        await close(websocket, CLOSE_UNAUTHENTICATED, "Send the visitor token first")
        return
    token, cursor = hello
    try:
        after = resume_position(cursor)
        visitor, log_end = await runtime.database.read(
            lambda tx: visitors.open_stream(tx, key, token)
        )
    except InvalidCursorError as exc:
        await close(websocket, CLOSE_INVALID_CURSOR, str(exc))
        return
    except AuthenticationError as exc:
        await close(websocket, CLOSE_UNAUTHENTICATED, str(exc))
        return
    except NotFoundError as exc:
        await close(websocket, CLOSE_NOT_FOUND, str(exc))
        return
    if visitor.row.last_seen_at < to_millis(runtime.clock.now()) - TOUCH_AFTER_MS:
        await runtime.database.write(lambda tx: visitors.do_touch(tx, visitor.row.id))
    viewer = StreamVisitor(visitor.channel.org_id, visitor.contact.id, visitor.channel.id)
    await serve(
        websocket,
        runtime.hub.open(viewer, after if after is not None else log_end),
        heartbeat_seconds=runtime.settings.stream_heartbeat_seconds,
        frames=_Renderer(runtime, visitor).frames,
    )


async def _hello(websocket: WebSocket) -> tuple[str, str | None] | None:
    """The token and resume cursor of the page's first frame; None if it sent something else
    or nothing in time."""
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
            message = await websocket.receive()
    except TimeoutError:
        return None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    try:
        frame = json.loads(message.get("text") or "")
    except ValueError:
        return None
    if not isinstance(frame, dict) or frame.get("type") != "auth":
        return None
    token, after = frame.get("token"), frame.get("after")
    if not isinstance(token, str) or not (after is None or isinstance(after, str)):
        return None
    return token, after


_MESSAGE: TypeAdapter[MessageRead] = TypeAdapter(MessageRead)


class _Renderer:
    """Turns events into the visitor's frames; agents' names are looked up once per connection."""

    def __init__(self, runtime: Runtime, visitor: visitors.Visitor) -> None:
        self._runtime = runtime
        self._org_id = visitor.channel.org_id
        self._names: dict[str, str | None] = {}

    async def frames(self, items: Sequence[LiveEvent]) -> list[str]:
        shown = [
            (item, _MESSAGE.validate_python(data))
            for item in items
            if isinstance(data := item.event.data.get("message"), dict)
        ]
        senders = {r["sender"]["id"] for _, r in shown if r["sender"]["type"] == SenderType.AGENT}
        unknown = sorted(s for s in senders if s is not None and s not in self._names)
        if unknown:
            agents = await self._runtime.database.read(
                lambda tx: account_store.get_agents(tx, self._org_id, unknown)
            )
            for agent_id in unknown:
                self._names[agent_id] = agents[agent_id].name if agent_id in agents else None
        return [self._frame(item.cursor, read) for item, read in shown]

    def _frame(self, cursor: str, read: MessageRead) -> str:
        view = visitor_message_view(read, self._names.get(read["sender"]["id"] or ""))
        # Cursors are URL-safe base64 and the view is JSON already: no escaping needed.
        return f'{{"type":"message","cursor":"{cursor}","message":{to_json(view).decode()}}}'
