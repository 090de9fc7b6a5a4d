"""The messaging rules of the seed, as pure decisions (R3, R4, R6, R8).

Services apply these inside a transaction; nothing here reads a clock or a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chatflow.domain.errors import (
    ChatroomClosedError,
    ContactNotOptedInError,
    WindowClosedError,
)
from chatflow.domain.models import (
    Channel,
    Chatroom,
    ChatroomStatus,
    Contact,
    Message,
    MessageKind,
    MessageStatus,
)

CUSTOMER_WINDOW_MILLIS = 24 * 60 * 60 * 1000


_PROGRESS = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}


def status_moves_forward(current: MessageStatus, reported: MessageStatus) -> bool:
    """Whether a provider's status report applies to an outbound message.

    Reports arrive late, twice and out of order (read before delivered), so a status only ever
    moves a message forward: queued → sent → delivered → read. `failed` applies to a message not
    yet delivered; a failed message stays failed.
    """
    if current not in _PROGRESS or reported is MessageStatus.RECEIVED:
        return False
    if reported is MessageStatus.FAILED:
        return current in (MessageStatus.QUEUED, MessageStatus.SENT)
    return _PROGRESS[reported] > _PROGRESS[current]


def window_expiry(customer_message_timestamp: int) -> int:
    """R4: the window runs 24 hours from the customer message's own (channel) timestamp."""
    return customer_message_timestamp + CUSTOMER_WINDOW_MILLIS


def is_window_open(channel: Channel, chatroom: Chatroom, now: int) -> bool:
    if not channel.customer_window:
        return True
    return chatroom.window_expires_at is not None and now < chatroom.window_expires_at


def check_can_send_free_form(channel: Channel, chatroom: Chatroom, now: int) -> None:
    """R4: free-form messages only while the customer-service window is open."""
    if chatroom.status is ChatroomStatus.CLOSED:
        raise ChatroomClosedError(
            f"Chatroom {chatroom.id} is closed; reopen it before sending",
            chatroom_id=chatroom.id,
        )
    if not is_window_open(channel, chatroom, now):
        raise WindowClosedError(
            "The customer has not written in the last 24 hours, so only a template message can "
            "be sent; send one with POST /v1/chatrooms/{id}/template-messages",
            chatroom_id=chatroom.id,
            window_expires_at=chatroom.window_expires_at,
        )


def check_can_send_template(chatroom: Chatroom, contact: Contact) -> None:
    """R4: templates can always be sent, but only to contacts that opted in."""
    if chatroom.status is ChatroomStatus.CLOSED:
        raise ChatroomClosedError(
            f"Chatroom {chatroom.id} is closed; reopen it before sending",
            chatroom_id=chatroom.id,
        )
    if not contact.opted_in:
        raise ContactNotOptedInError(
            f"Contact {contact.id} has not opted in; record the opt-in with "
            "PATCH /v1/contacts/{id} before sending templates",
            contact_id=contact.id,
        )


class InboundKind(StrEnum):
    FREE_FLOW = "free_flow"
    INTERACTION = "interaction"


@dataclass(frozen=True, slots=True)
class InboundDecision:
    """What a customer message does to its chatroom."""

    kind: InboundKind
    bumps: bool
    hands_over: bool
    relays: bool


def decide_inbound(template_message: Message | None) -> InboundDecision:
    """Free-flow or interaction (SPEC), and what follows from it.

    `template_message` is the template message of this chatroom that a button tap refers to, or
    None for anything else the customer sends (text, media, a reply to another message, a tap whose
    context is unknown): all of that is free-flow, which always bumps and hands over (R3, R8).
    A tap on a template bumps unless it was sent with `bump_response=false` (R3), is relayed when
    it was sent with `relay_response=true` (R6), and otherwise hands over (R8).
    """
    if template_message is None or template_message.kind is not MessageKind.TEMPLATE:
        return InboundDecision(InboundKind.FREE_FLOW, bumps=True, hands_over=True, relays=False)
    flags = template_message.flags
    return InboundDecision(
        InboundKind.INTERACTION,
        bumps=flags.bump_response,
        hands_over=not flags.relay_response,
        relays=flags.relay_response,
    )
