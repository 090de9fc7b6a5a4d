"""The one inbound path: every customer message, from any channel, goes through `receive`.

Channels (WhatsApp, web chat, the sandbox) turn what they receive into an `InboundMessage`; the
rules that follow from a customer message are applied here and only here: dedupe by channel id,
R2 (reopen, or a new chatroom), the free-flow/interaction split, R3 bumps, R4 window, R6 relay and
R8 handover.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatflow.domain.errors import ChatroomStateError
from chatflow.domain.models import (
    AgentId,
    AssignReason,
    ButtonTap,
    Channel,
    Chatroom,
    ChatroomId,
    ChatroomStatus,
    Contact,
    Direction,
    Message,
    MessageFlags,
    MessageId,
    MessageKind,
    MessageStatus,
    SenderType,
)
from chatflow.domain.rules import decide_inbound, window_expiry
from chatflow.domain.templates import parse_button_payload
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.services import chatrooms as chatroom_service
from chatflow.storage import accounts as account_store
from chatflow.storage import chatrooms as chatroom_store
from chatflow.storage import messages as message_store
from chatflow.storage.database import Tx
from chatflow.views import chatroom_view, contact_view, message_view


@dataclass(frozen=True, slots=True)
class InboundButton:
    """A tapped button: the payload chatflow set when sending, and the label shown."""

    payload: str
    text: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    channel: Channel
    contact: Contact
    text: str
    timestamp: int
    """The channel's own time of the message (R4's window runs from it), in milliseconds."""
    channel_message_id: str | None = None
    button: InboundButton | None = None
    reply_to_message_id: MessageId | None = None
    """The chatflow message the customer replied to or tapped on (from the channel's context)."""
    chatroom_id: ChatroomId | None = None
    """Set when the channel already knows the chatroom (the sandbox names it)."""


@dataclass(frozen=True, slots=True)
class InboundResult:
    message: Message
    duplicate: bool
    """The channel had delivered this message before: nothing was done again."""


def receive(tx: Tx, inbound: InboundMessage) -> InboundResult:
    org_id = inbound.channel.org_id
    if inbound.channel_message_id is not None:
        seen = message_store.find_by_channel_message_id(tx, org_id, inbound.channel_message_id)
        if seen is not None:
            return InboundResult(seen, duplicate=True)

    chatroom, specs = _chatroom_for(tx, inbound)
    template_message = _tapped_template(tx, chatroom, inbound)
    decision = decide_inbound(template_message)
    button = None
    if inbound.button is not None:
        parsed = parse_button_payload(inbound.button.payload)
        button = ButtonTap(
            index=parsed[1] if parsed is not None else -1,
            text=inbound.button.text,
            payload=inbound.button.payload,
            template_message_id=None if template_message is None else template_message.id,
        )
    message = Message(
        id=MessageId(new_id("msg")),
        org_id=org_id,
        chatroom_id=chatroom.id,
        direction=Direction.INBOUND,
        sender_type=SenderType.CONTACT,
        sender_id=inbound.contact.id,
        kind=MessageKind.BUTTON_REPLY if button is not None else MessageKind.TEXT,
        text=inbound.text,
        template=None,
        button=button,
        reply_to_message_id=inbound.reply_to_message_id
        or (None if template_message is None else template_message.id),
        flags=MessageFlags(),
        status=MessageStatus.RECEIVED,
        channel_message_id=inbound.channel_message_id,
        channel_timestamp=inbound.timestamp,
        error=None,
        created_at=tx.now,
    )
    message_store.insert_message(tx, message)
    specs.append((EventType.MESSAGE_CREATED, {"message": message_view(message)}))

    # The chatroom was loaded under its row lock, so its participants and pending agents are
    # current: statements that would find none of them are not run.
    key = 0
    if decision.bumps:
        key = tx.next_bump_key()
        if chatroom.participants:
            chatroom_store.bump_participants(tx, chatroom.id, key, unread=1)
        specs.append(chatroom_service.bumped(chatroom, key, "message"))
    if decision.hands_over and chatroom.pending_agent_ids:
        joined = _hand_over(tx, chatroom)
        if joined is not None:
            specs.append(joined)
    if decision.relays and template_message is not None and button is not None:
        specs.append(_template_response(inbound, chatroom, message, template_message, button))

    # R4: every customer message opens or refreshes the window, from its own timestamp; a late
    # delivery of an older message never shortens it (the touch keeps the later end).
    last_seq = chatroom_store.touch_chatroom(
        tx,
        chatroom.id,
        bump_key=key,
        events=len(specs),
        window_expires_at=window_expiry(inbound.timestamp),
    )
    outbox.record_chatroom(tx, org_id, chatroom.id, specs, last_seq=last_seq)
    return InboundResult(message, duplicate=False)


def _chatroom_for(tx: Tx, inbound: InboundMessage) -> tuple[Chatroom, list[outbox.EventSpec]]:
    """R2: the contact's open chatroom on the channel; a closed one reopens; else a new one."""
    org_id = inbound.channel.org_id
    if inbound.chatroom_id is not None:
        chatroom = chatroom_store.load_chatroom(tx, org_id, inbound.chatroom_id, lock=True)
        if chatroom is None or chatroom.contact_id != inbound.contact.id:
            raise ChatroomStateError("The chatroom does not belong to this customer")
    else:
        chatroom = chatroom_store.find_open_chatroom(
            tx, inbound.contact.id, inbound.channel.id, lock=True
        ) or chatroom_store.find_latest_chatroom(tx, inbound.contact.id, inbound.channel.id)
    if chatroom is None:
        return _new_chatroom(tx, inbound)
    if chatroom.status is ChatroomStatus.CLOSED:
        reopened, spec = chatroom_service.reopen(tx, chatroom, "customer_message")
        return reopened, [spec]
    return chatroom, []


def _new_chatroom(tx: Tx, inbound: InboundMessage) -> tuple[Chatroom, list[outbox.EventSpec]]:
    """A customer who writes first gets a chatroom with no agents yet: admins see it."""
    chatroom = chatroom_service.insert_new(
        tx, inbound.channel.org_id, inbound.contact.id, inbound.channel.id, window_expires_at=None
    )
    return chatroom, [(EventType.CHATROOM_CREATED, {"chatroom": chatroom_view(chatroom)})]


def _tapped_template(tx: Tx, chatroom: Chatroom, inbound: InboundMessage) -> Message | None:
    """The template message of this chatroom that a button tap interacts with, if any.

    The payload chatflow set names the message and the button; failing that, the channel's reply
    context names the message. Anything else makes the message free-flow.
    """
    if inbound.button is None:
        return None
    candidates: list[str] = []
    parsed = parse_button_payload(inbound.button.payload)
    if parsed is not None:
        candidates.append(parsed[0])
    if inbound.reply_to_message_id is not None:
        candidates.append(inbound.reply_to_message_id)
    for message_id in candidates:
        found = message_store.get_message(tx, chatroom.id, message_id)
        if found is not None and found.kind is MessageKind.TEMPLATE:
            return found
    return None


def _hand_over(tx: Tx, chatroom: Chatroom) -> outbox.EventSpec | None:
    """R8: all pending agents (deactivated ones skipped) join, atomically and once.

    Taking the pending rows deletes them, so a second customer message finds none.
    """
    pending = chatroom_store.take_pending(tx, chatroom.id)
    if not pending:
        return None
    agents = account_store.get_agents(tx, chatroom.org_id, list(pending))
    members = {p.agent_id for p in chatroom.participants}
    joining = [AgentId(a) for a in pending if a in agents and agents[a].active and a not in members]
    return chatroom_service.join(tx, chatroom, joining, AssignReason.HANDOVER, unread=1)


def _template_response(
    inbound: InboundMessage,
    chatroom: Chatroom,
    message: Message,
    template_message: Message,
    button: ButtonTap,
) -> outbox.EventSpec:
    """R6: what the organization's webhook receives for a tap on a relayed template."""
    template = template_message.template or {}
    return (
        EventType.TEMPLATE_RESPONSE,
        {
            "chatroom_id": chatroom.id,
            "contact": contact_view(inbound.contact),
            "message_id": message.id,
            "template_message_id": template_message.id,
            "template": {"name": template.get("name"), "language": template.get("language")},
            "button": {"index": button.index, "text": button.text, "payload": button.payload},
        },
    )
