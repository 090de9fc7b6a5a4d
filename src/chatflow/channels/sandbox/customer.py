"""The sandbox customer: act as the customer of a sandbox chatroom, through the inbound path."""

from __future__ import annotations

from chatflow.domain.access import Actor, check_administers
from chatflow.domain.errors import ChannelMismatchError, NotATemplateMessageError
from chatflow.domain.models import ChannelType, ChatroomId, MessageId, MessageKind
from chatflow.services import inbound
from chatflow.services.channels import access_channel
from chatflow.services.chatrooms import access_chatroom
from chatflow.services.contacts import access_contact
from chatflow.services.messages import check_text
from chatflow.storage import messages as message_store
from chatflow.storage.database import Tx


def do_customer_message(
    tx: Tx,
    actor: Actor,
    *,
    chatroom_id: str | None,
    channel_id: str | None,
    contact_id: str | None,
    text: str | None,
    tap: tuple[str, int] | None,
    reply_to_message_id: str | None,
    timestamp: int | None,
) -> inbound.InboundResult:
    """A customer writes (`text`) or taps button `index` of template message `message_id` (`tap`).

    Either `chatroom_id`, or `channel_id` and `contact_id` for a customer who writes first.
    `timestamp` is the channel's time of the message (default: now), as WhatsApp would give it.
    """
    check_administers(actor)
    if chatroom_id is not None:
        chatroom = access_chatroom(tx, actor, chatroom_id, lock=True)
        channel = access_channel(tx, actor, chatroom.channel_id)
        contact = access_contact(tx, actor, chatroom.contact_id)
    else:
        assert channel_id is not None and contact_id is not None
        channel = access_channel(tx, actor, channel_id)
        contact = access_contact(tx, actor, contact_id)
    if channel.type is not ChannelType.SANDBOX:
        raise ChannelMismatchError(
            f"Channel {channel.id} is a {channel.type.value} channel; only sandbox chatrooms "
            "take simulated customer messages"
        )
    button = None
    reply_to = MessageId(reply_to_message_id) if reply_to_message_id else None
    if tap is not None:
        if chatroom_id is None:
            raise NotATemplateMessageError("A tap needs the chatroom of the template message")
        message_id, index = tap
        tapped = message_store.get_message(tx, chatroom_id, message_id)
        buttons = [] if tapped is None or tapped.template is None else tapped.template["buttons"]
        quick = next(
            (b for b in buttons if b["index"] == index and b["type"] == "QUICK_REPLY"), None
        )
        if tapped is None or tapped.kind is not MessageKind.TEMPLATE or quick is None:
            raise NotATemplateMessageError(
                f"Message {message_id} of this chatroom is not a template message with a "
                f"quick-reply button {index}",
                errors=[{"pointer": "/button", "message": "no such template button"}],
            )
        button = inbound.InboundButton(payload=quick["payload"], text=quick["text"])
        reply_to = tapped.id
        text = quick["text"]
    else:
        assert text is not None
        check_text(text)
    if reply_to is not None and message_store.get_message(tx, chatroom_id or "", reply_to) is None:
        reply_to = None  # an unknown context is free-flow, as on WhatsApp
    return inbound.receive(
        tx,
        inbound.InboundMessage(
            channel=channel,
            contact=contact,
            text=text,
            timestamp=timestamp if timestamp is not None else tx.now,
            button=button,
            reply_to_message_id=reply_to,
            chatroom_id=ChatroomId(chatroom_id) if chatroom_id is not None else None,
        ),
    )
