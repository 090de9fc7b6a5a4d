"""The delivery progress of outbound messages: the provider's answer to our send, and the status
reports it sends later (sent → delivered → read, or failed), never moving backwards.

Each change is a `message.status_updated` event of the message's chatroom.
"""

from __future__ import annotations

from dataclasses import replace

from chatflow.domain.models import JsonObject, Message, MessageStatus, OrganizationId
from chatflow.domain.rules import status_moves_forward
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.storage import messages as message_store
from chatflow.storage import outbound as outbound_store
from chatflow.storage.database import Tx
from chatflow.views import message_view


def _record(tx: Tx, before: Message, after: Message) -> None:
    message_store.update_delivery(tx, after)
    outbox.record_chatroom(
        tx,
        after.org_id,
        after.chatroom_id,
        [
            (
                EventType.MESSAGE_STATUS_UPDATED,
                {"message": message_view(after), "previous_status": before.status.value},
            )
        ],
    )


def do_record_sent(tx: Tx, chatroom_id: str, message_id: str, channel_message_id: str) -> None:
    """The provider took the message and named it: queued → sent. Statuses it reported for that
    name before this commit are applied now."""
    outbound_store.finish(tx, message_id)
    message = message_store.lock_message(tx, chatroom_id, message_id)
    if message is None or message.status is not MessageStatus.QUEUED:
        return
    sent = replace(message, status=MessageStatus.SENT, channel_message_id=channel_message_id)
    _record(tx, message, sent)
    for early in outbound_store.take_early_statuses(tx, message.org_id, channel_message_id):
        sent = _apply(tx, sent, MessageStatus(early.status), early.error) or sent


def do_record_refused(tx: Tx, chatroom_id: str, message_id: str, error: JsonObject) -> None:
    """The provider refused the message for good, or it could not be sent in time: failed."""
    outbound_store.finish(tx, message_id)
    message = message_store.lock_message(tx, chatroom_id, message_id)
    if message is None or message.status is not MessageStatus.QUEUED:
        return
    _record(tx, message, replace(message, status=MessageStatus.FAILED, error=error))


def do_apply_status_report(
    tx: Tx,
    org_id: OrganizationId,
    channel_message_id: str,
    status: MessageStatus,
    timestamp: int,
    error: JsonObject | None,
) -> bool:
    """A status the provider reported for one of our messages. False when it did not apply
    (older than what we know, or a repeat). A report for a message id we have not recorded yet
    is kept until we do."""
    message = message_store.lock_by_channel_message_id(tx, org_id, channel_message_id)
    if message is None:
        outbound_store.keep_early_status(
            tx, org_id, channel_message_id, status.value, timestamp, error
        )
        return False
    return _apply(tx, message, status, error) is not None


def _apply(
    tx: Tx, message: Message, status: MessageStatus, error: JsonObject | None
) -> Message | None:
    """The message with the reported status, recorded; None when the report does not apply."""
    if not status_moves_forward(message.status, status):
        return None
    updated = replace(
        message, status=status, error=error if status is MessageStatus.FAILED else message.error
    )
    _record(tx, message, updated)
    return updated
