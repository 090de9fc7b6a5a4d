"""Writing events in the transaction of the change they record (the transactional outbox).

Call these inside a write `Tx`: the events commit or roll back with the change, and are handed
to the commit listeners (delivery, live stream, flow triggers) only after the commit.
"""

from __future__ import annotations

from typing import Any

from chatflow.domain.models import ChatroomId, Event, EventId, OrganizationId
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.storage import chatrooms as chatroom_store
from chatflow.storage import events as event_store
from chatflow.storage.database import Tx

EventSpec = tuple[EventType, dict[str, Any]]


def record(tx: Tx, org_id: OrganizationId, type: EventType, data: dict[str, Any]) -> Event:
    """An event about the organization, not about one chatroom (no `seq`)."""
    event = Event(
        EventId(new_id("evt")), org_id, type.value, None, None, data, tx.now, cause=tx.cause
    )
    event_store.insert_events(tx, [event])
    tx.events.append(event)
    return event


def record_chatroom(
    tx: Tx,
    org_id: OrganizationId,
    chatroom_id: ChatroomId,
    specs: list[EventSpec],
    *,
    last_seq: int | None = None,
) -> list[Event]:
    """Events about one chatroom, numbered by its sequence.

    `last_seq` is the chatroom's sequence after reserving `len(specs)` numbers in the same
    transaction (see `storage.chatrooms.touch_chatroom`); without it the numbers are reserved here.
    """
    if not specs:
        return []
    if last_seq is None:
        last_seq = chatroom_store.reserve_event_seq(tx, chatroom_id, len(specs))
    first = last_seq - len(specs) + 1
    batch = [
        Event(
            EventId(new_id("evt")),
            org_id,
            type.value,
            chatroom_id,
            first + i,
            data,
            tx.now,
            cause=tx.cause,
        )
        for i, (type, data) in enumerate(specs)
    ]
    event_store.insert_events(tx, batch)
    tx.events.extend(batch)
    return batch
