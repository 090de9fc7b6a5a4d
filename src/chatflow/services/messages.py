"""Sending messages into a chatroom: free-form (R1, R4) and templates (R4, R5), bumping (R3).

Agents and automation send side by side (R7): nothing here locks a chatroom for one kind of
sender; each send is its own transaction on the chatroom's row.
"""

from __future__ import annotations

from typing import Any

from chatflow.domain.access import Actor, ActorKind
from chatflow.domain.errors import (
    NotFoundError,
    TemplateNotApprovedError,
    TemplateNotFoundError,
    ValidationError,
)
from chatflow.domain.models import (
    Channel,
    Chatroom,
    Direction,
    Message,
    MessageFlags,
    MessageId,
    MessageKind,
    MessageStatus,
    SenderType,
    TemplateStatus,
)
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.domain.rules import check_can_send_free_form, check_can_send_template
from chatflow.domain.templates import (
    TemplateVariables,
    button_payload,
    parse_template,
    render_template,
)
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.services.chatrooms import access_chatroom, bumped, check_agents
from chatflow.services.contacts import access_contact
from chatflow.storage import channels as channel_store
from chatflow.storage import chatrooms as chatroom_store
from chatflow.storage import messages as store
from chatflow.storage import outbound as outbound_store
from chatflow.storage import templates as template_store
from chatflow.storage.database import Tx
from chatflow.views import message_view

MAX_TEXT_LENGTH = 4096


def check_text(text: str, pointer: str = "/text") -> None:
    if not text.strip():
        raise ValidationError(
            "The message text is empty", errors=[{"pointer": pointer, "message": "empty"}]
        )
    if len(text) > MAX_TEXT_LENGTH:
        raise ValidationError(
            f"The message text is longer than {MAX_TEXT_LENGTH} characters",
            errors=[{"pointer": pointer, "message": f"at most {MAX_TEXT_LENGTH} characters"}],
        )


def _sender(tx: Tx, actor: Actor, as_agent_id: str | None) -> tuple[SenderType, str | None]:
    """Agents send as themselves; API keys send as the bot unless they name an agent (SPEC)."""
    if actor.kind is ActorKind.AGENT:
        if as_agent_id is not None and as_agent_id != actor.id:
            raise ValidationError(
                "Agents send as themselves",
                errors=[{"pointer": "/as_agent_id", "message": "only for API keys"}],
            )
        return SenderType.AGENT, actor.id
    if as_agent_id is None:
        return SenderType.BOT, None
    check_agents(tx, actor, [as_agent_id], "/as_agent_id")
    return SenderType.AGENT, as_agent_id


def _outbound_status(channel: Channel) -> MessageStatus:
    # Provider channels (WhatsApp) send after commit, from `outbound_sends`; the sandbox and web
    # chat deliver by writing the message.
    return MessageStatus.QUEUED if channel.type.sends_through_provider else MessageStatus.SENT


def _channel(tx: Tx, chatroom: Chatroom) -> Channel:
    channel = channel_store.get_channel(tx, chatroom.org_id, chatroom.channel_id)
    assert channel is not None, "a chatroom's channel is never deleted"
    return channel


def _commit_outbound(
    tx: Tx, chatroom: Chatroom, message: Message, sender_agent: str | None
) -> None:
    """Store an outbound message, queue it for its provider if it has one, and apply R3: bump
    every participant unless told not to."""
    store.insert_message(tx, message)
    if message.status is MessageStatus.QUEUED:
        outbound_store.enqueue(tx, message, chatroom.channel_id)
    bumps = message.flags.bump
    if bumps:
        key = tx.next_bump_key()
        chatroom_store.bump_participants(tx, chatroom.id, key)
    else:
        key = 0
    if sender_agent is not None and chatroom.participant(sender_agent) is not None:
        # Only an agent's own send counts as having read the chatroom.
        chatroom_store.mark_read(tx, chatroom.id, sender_agent)
    specs: list[outbox.EventSpec] = [
        (EventType.MESSAGE_CREATED, {"message": message_view(message)})
    ]
    if bumps:
        specs.append(bumped(chatroom, key, "message"))
    last_seq = chatroom_store.touch_chatroom(tx, chatroom.id, bump_key=key, events=len(specs))
    outbox.record_chatroom(tx, chatroom.org_id, chatroom.id, specs, last_seq=last_seq)


def do_send_message(
    tx: Tx, actor: Actor, chatroom_id: str, *, text: str, as_agent_id: str | None = None
) -> Message:
    """R1/R4: a free-form message, only while the customer-service window is open."""
    check_text(text)
    chatroom = access_chatroom(tx, actor, chatroom_id, lock=True)
    sender_type, sender_id = _sender(tx, actor, as_agent_id)
    channel = _channel(tx, chatroom)
    check_can_send_free_form(channel, chatroom, tx.now)
    message = Message(
        id=MessageId(new_id("msg")),
        org_id=chatroom.org_id,
        chatroom_id=chatroom.id,
        direction=Direction.OUTBOUND,
        sender_type=sender_type,
        sender_id=sender_id,
        kind=MessageKind.TEXT,
        text=text,
        template=None,
        button=None,
        reply_to_message_id=None,
        flags=MessageFlags(),
        status=_outbound_status(channel),
        channel_message_id=None,
        channel_timestamp=None,
        error=None,
        created_at=tx.now,
    )
    _commit_outbound(tx, chatroom, message, sender_id if sender_type is SenderType.AGENT else None)
    return message


def do_send_template(
    tx: Tx,
    actor: Actor,
    chatroom_id: str,
    *,
    name: str,
    language: str,
    variables: TemplateVariables,
    flags: MessageFlags,
    as_agent_id: str | None = None,
) -> Message:
    """R4/R5: an APPROVED template, to an opted-in contact, at any time.

    Every quick-reply button is sent with a payload naming this message and the button's index,
    so a tap identifies both (R6).
    """
    chatroom = access_chatroom(tx, actor, chatroom_id, lock=True)
    sender_type, sender_id = _sender(tx, actor, as_agent_id)
    contact = access_contact(tx, actor, chatroom.contact_id)
    check_can_send_template(chatroom, contact)
    template = template_store.get_template_by_name(tx, actor.org_id, name, language)
    if template is None:
        raise TemplateNotFoundError(f"No template {name!r} in language {language!r}")
    if template.status is not TemplateStatus.APPROVED:
        raise TemplateNotApprovedError(
            f"Template {name!r} ({language}) is {template.status.value}; only APPROVED templates "
            "can be sent",
            template_status=template.status.value,
        )
    definition = parse_template(
        template.name, template.language, template.category, template.components
    )
    rendered = render_template(definition, variables)
    message_id = MessageId(new_id("msg"))
    buttons: list[dict[str, Any]] = []
    for button in rendered.buttons:
        entry: dict[str, Any] = {"index": button.index, "type": button.type, "text": button.text}
        if button.type == "QUICK_REPLY":
            entry["payload"] = button_payload(message_id, button.index)
        if button.url is not None:
            entry["url"] = button.url
        if button.phone_number is not None:
            entry["phone_number"] = button.phone_number
        if button.code is not None:
            entry["code"] = button.code
        buttons.append(entry)
    channel = _channel(tx, chatroom)
    message = Message(
        id=message_id,
        org_id=chatroom.org_id,
        chatroom_id=chatroom.id,
        direction=Direction.OUTBOUND,
        sender_type=sender_type,
        sender_id=sender_id,
        kind=MessageKind.TEMPLATE,
        text=rendered.text,
        template={
            "id": template.id,
            "name": template.name,
            "language": template.language,
            "category": template.category,
            "header": None
            if rendered.header_format is None
            else {"format": rendered.header_format, "text": rendered.header_text},
            "body": rendered.body,
            "footer": rendered.footer,
            "buttons": buttons,
            "variables": {
                "header": list(variables.header),
                "body": list(variables.body),
                "buttons": {str(k): list(v) for k, v in variables.buttons.items()},
            },
        },
        button=None,
        reply_to_message_id=None,
        flags=flags,
        status=_outbound_status(channel),
        channel_message_id=None,
        channel_timestamp=None,
        error=None,
        created_at=tx.now,
    )
    _commit_outbound(tx, chatroom, message, sender_id if sender_type is SenderType.AGENT else None)
    return message


def access_message(tx: Tx, actor: Actor, chatroom_id: str, message_id: str) -> Message:
    chatroom = access_chatroom(tx, actor, chatroom_id)
    message = store.get_message(tx, chatroom.id, message_id)
    if message is None:
        raise NotFoundError(f"No message {message_id} in chatroom {chatroom_id}")
    return message


def list_messages(
    tx: Tx, actor: Actor, chatroom_id: str, *, cursor: str | None, limit: int
) -> Page[Message]:
    """Newest first."""
    chatroom = access_chatroom(tx, actor, chatroom_id)
    before = str(decode_cursor("messages", cursor, [str])[0]) if cursor else None
    rows = store.list_messages(tx, chatroom.id, before=before, limit=limit)
    return page_of(rows, limit, "messages", lambda m: [m.id])
