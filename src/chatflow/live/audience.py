"""Who sees which event on the live stream (SPEC "Who may do what", applied to events)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from chatflow.domain.access import Actor
from chatflow.domain.models import Event, OrganizationId
from chatflow.events.types import EventType
from chatflow.storage.participation import customer_key

_ASSIGNMENTS = frozenset({EventType.CHATROOM_ASSIGNED.value, EventType.CHATROOM_UNASSIGNED.value})

VISITOR_EVENTS = frozenset(
    {EventType.MESSAGE_CREATED.value, EventType.MESSAGE_STATUS_UPDATED.value}
)
"""What a customer sees of a chatroom: its messages and their delivery. Never who is assigned,
bumps, relays or anything else internal."""


@dataclass(frozen=True, slots=True)
class Visitor:
    """A web-chat customer: the messages of its own contact's chatrooms on its channel."""

    org_id: OrganizationId
    contact_id: str
    channel_id: str

    @property
    def sees_whole_organization(self) -> bool:
        return False

    @property
    def key(self) -> str:
        return customer_key(self.contact_id, self.channel_id)


Viewer = Actor | Visitor
"""Whoever reads the live stream: an API key, an agent, or a web-chat visitor."""


def sees_event(viewer: Viewer, event: Event, participants: Mapping[str, Collection[str]]) -> bool:
    """Whether `viewer` receives `event`, given each chatroom's audience now: its participants'
    agent ids and its customer's `customer_key`.

    API keys and admin agents see every event of their organization. An agent sees the events of
    the chatrooms it participates in now, and the (un)assignments that name it, so it learns that
    it was removed from a chatroom whose other events it no longer sees. A pending agent's
    discarded assignment (`pending: true`) is not shown: pending agents see nothing yet (R8). A
    visitor sees the `VISITOR_EVENTS` of the chatrooms whose customer it is, on its channel.
    `participants` must hold every chatroom of the events asked about when the viewer is an agent
    or a visitor.
    """
    if event.org_id != viewer.org_id:
        return False
    if isinstance(viewer, Visitor):
        return (
            event.type in VISITOR_EVENTS
            and event.chatroom_id is not None
            and viewer.key in participants[event.chatroom_id]
        )
    if viewer.sees_whole_organization:
        return True
    if event.chatroom_id is None:
        return False
    if viewer.id in participants[event.chatroom_id]:
        return True
    return (
        event.type in _ASSIGNMENTS
        and not event.data.get("pending", False)
        and viewer.id in event.data.get("agent_ids", ())
    )


def needs_participants(viewer: Viewer) -> bool:
    """Whether deciding what `viewer` sees takes the chatrooms' audience."""
    return not viewer.sees_whole_organization
