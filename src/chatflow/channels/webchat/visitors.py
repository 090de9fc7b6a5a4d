"""Web-chat visitors: start a conversation, read it, write into it, tap template buttons.

A visitor proves who it is with the token it got when it started (only its SHA-256 is stored);
the page's key names the channel. What a visitor writes goes through the one inbound path
(`services.inbound.receive`), exactly as the sandbox customer's does.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import secrets
from dataclasses import dataclass

from chatflow.channels.webchat.config import KEY_PATTERN
from chatflow.domain.errors import (
    AuthenticationError,
    NotATemplateMessageError,
    NotFoundError,
    ValidationError,
)
from chatflow.domain.models import (
    Channel,
    ChatroomId,
    Contact,
    ContactId,
    Message,
    MessageKind,
    SenderType,
)
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.services import inbound
from chatflow.services.messages import check_text
from chatflow.storage import accounts as account_store
from chatflow.storage import contacts as contact_store
from chatflow.storage import messages as message_store
from chatflow.storage import webchat as store
from chatflow.storage.database import Tx
from chatflow.storage.events import log_end
from chatflow.views import contact_view

TOKEN_PREFIX = "wcv_"
MAX_NAME = 128
MAX_EMAIL = 320
MAX_CLIENT_ID = 64
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Visitor:
    """An authenticated visitor: its row, its channel and its contact."""

    row: store.VisitorRow
    channel: Channel
    contact: Contact


@dataclass(frozen=True, slots=True)
class Started:
    visitor: Visitor
    token: str
    """Shown this once: the page keeps it; only its hash is stored."""


@dataclass(frozen=True, slots=True)
class History:
    messages: list[Message]
    """Oldest first."""
    more_before: str | None
    """The id to pass as `before` for the page before this one; None: this is the first."""
    agent_names: dict[str, str]
    stream_after: tuple[int, int]
    """Where the live stream resumes so that nothing after this read is missed."""


def channel_by_key(tx: Tx, key: str) -> Channel:
    """The web-chat channel of the page `key`; a 404 for anything else."""
    channel = store.find_channel_by_key(tx, key) if KEY_PATTERN.match(key) else None
    if channel is None:
        raise NotFoundError("No web chat here; check the page's address")
    return channel


def authenticate(tx: Tx, key: str, token: str | None) -> Visitor:
    """The visitor of this token on the channel of `key`: a 404 for an unknown key, a 401 for
    a missing or unknown token, or one of another channel."""
    channel = channel_by_key(tx, key)
    row = None if not token else store.get_visitor_by_token_hash(tx, hash_token(token))
    if row is None or row.channel_id != channel.id:
        raise AuthenticationError("Start a conversation first: the visitor token is not valid")
    contact = contact_store.get_contact(tx, row.org_id, row.contact_id)
    assert contact is not None, "a visitor's contact is never deleted"
    return Visitor(row, channel, contact)


def _optional(value: str | None, pointer: str, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(
            f"{pointer[1:]} is longer than {limit} characters",
            errors=[{"pointer": pointer, "message": f"at most {limit} characters"}],
        )
    return value or None


def do_start(tx: Tx, key: str, *, name: str | None, email: str | None) -> Started:
    """A new visitor: a contact with no phone (its name, its email) and a token for the page."""
    channel = channel_by_key(tx, key)
    name = _optional(name, "/name", MAX_NAME)
    email = _optional(email, "/email", MAX_EMAIL)
    if email is not None and not EMAIL_PATTERN.match(email):
        raise ValidationError(
            "The email address is not valid",
            errors=[{"pointer": "/email", "message": "not an email address"}],
        )
    contact = Contact(
        id=ContactId(new_id("ct")),
        org_id=channel.org_id,
        phone=None,
        first_name=name,
        last_name=None,
        email=email,
        external_id=None,
        custom_attributes={},
        # Opting in to template messages is the business's to record (R4), not the page's.
        opted_in=False,
        opted_in_at=None,
        created_at=tx.now,
        updated_at=tx.now,
    )
    contact_store.insert_contact(tx, contact)
    outbox.record(tx, channel.org_id, EventType.CONTACT_CREATED, {"contact": contact_view(contact)})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = store.VisitorRow(
        id=new_id("wcv"),
        org_id=channel.org_id,
        channel_id=channel.id,
        contact_id=contact.id,
        created_at=tx.now,
        last_seen_at=tx.now,
    )
    store.insert_visitor(tx, row, hash_token(token))
    return Started(Visitor(row, channel, contact), token)


def history(tx: Tx, key: str, token: str | None, *, before: str | None, limit: int) -> History:
    """The newest `limit` messages of the visitor's chatrooms on the channel before `before`."""
    stream_after = log_end(tx)  # first: what commits after this read is on the stream
    visitor = authenticate(tx, key, token)
    rooms = store.visitor_chatroom_ids(tx, visitor.contact.id, visitor.channel.id)
    newest_first = heapq.merge(
        *(message_store.list_messages(tx, room, before=before, limit=limit) for room in rooms),
        key=lambda m: m.id,
        reverse=True,
    )
    page = [m for _, m in zip(range(limit + 1), newest_first, strict=False)]
    more = page[limit - 1].id if len(page) > limit else None
    messages = list(reversed(page[:limit]))
    return History(messages, more, agent_names(tx, visitor, messages), stream_after)


def agent_names(tx: Tx, visitor: Visitor, messages: list[Message]) -> dict[str, str]:
    ids = sorted(
        {m.sender_id for m in messages if m.sender_id and m.sender_type is SenderType.AGENT}
    )
    agents = account_store.get_agents(tx, visitor.channel.org_id, ids) if ids else {}
    return {agent_id: agent.name for agent_id, agent in agents.items()}


def _tapped(tx: Tx, visitor: Visitor, message_id: str, index: int) -> tuple[Message, str, str]:
    """The visitor's template message `message_id` and its quick-reply button `index`."""
    rooms = store.visitor_chatroom_ids(tx, visitor.contact.id, visitor.channel.id)
    found = (message_store.get_message(tx, room, message_id) for room in rooms)
    tapped = next((m for m in found if m is not None), None)
    buttons = [] if tapped is None or tapped.template is None else tapped.template["buttons"]
    quick = next((b for b in buttons if b["index"] == index and b["type"] == "QUICK_REPLY"), None)
    if tapped is None or tapped.kind is not MessageKind.TEMPLATE or quick is None:
        raise NotATemplateMessageError(
            f"Message {message_id} of this conversation is not a template message with a "
            f"quick-reply button {index}",
            errors=[{"pointer": "/button", "message": "no such template button"}],
        )
    return tapped, str(quick["payload"]), str(quick["text"])


def _client_id(client_id: str | None) -> str | None:
    if client_id is not None and not CLIENT_ID_PATTERN.match(client_id):
        raise ValidationError(
            f"client_id is 1–{MAX_CLIENT_ID} characters of A–Z, a–z, 0–9, _ and -",
            errors=[{"pointer": "/client_id", "message": "invalid"}],
        )
    return client_id


def do_write(
    tx: Tx,
    key: str,
    token: str | None,
    *,
    text: str | None,
    tap: tuple[str, int] | None,
    client_id: str | None,
) -> tuple[inbound.InboundResult, Visitor]:
    """The visitor writes `text`, or taps button `index` of template message `message_id`.

    `client_id` (the page's id for the message) makes a retry safe: the same visitor sending the
    same `client_id` again gets the message it already sent.
    """
    visitor = authenticate(tx, key, token)
    client_id = _client_id(client_id)
    button = None
    chatroom_id = None
    reply_to = None
    if tap is not None:
        tapped, payload, label = _tapped(tx, visitor, *tap)
        button = inbound.InboundButton(payload=payload, text=label)
        chatroom_id, reply_to, text = tapped.chatroom_id, tapped.id, label
    else:
        assert text is not None
        check_text(text)
    store.touch_visitor(tx, visitor.row.id)
    result = inbound.receive(
        tx,
        inbound.InboundMessage(
            channel=visitor.channel,
            contact=visitor.contact,
            text=text,
            timestamp=tx.now,
            channel_message_id=None
            if client_id is None
            else f"webchat:{visitor.row.id}:{client_id}",
            button=button,
            reply_to_message_id=reply_to,
            chatroom_id=ChatroomId(chatroom_id) if chatroom_id is not None else None,
        ),
    )
    return result, visitor


def open_stream(tx: Tx, key: str, token: str | None) -> tuple[Visitor, tuple[int, int]]:
    """The visitor opening its live stream, and the end of the log as it stands."""
    stream_after = log_end(tx)
    return authenticate(tx, key, token), stream_after


def do_touch(tx: Tx, visitor_id: str) -> None:
    store.touch_visitor(tx, visitor_id)
