"""Who sees which event on the live stream (SPEC "Who may do what", applied to events)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from chatflow.domain.access import Actor
from chatflow.domain.models import Event
from chatflow.events.types import EventType

_ASSIGNMENTS = frozenset({EventType.CHATROOM_ASSIGNED.value, EventType.CHATROOM_UNASSIGNED.value})


def sees_event(actor: Actor, event: Event, participants: Mapping[str, Collection[str]]) -> bool:
    """Whether `actor` receives `event`, given each chatroom's participants now.

    API keys and admin agents see every event of their organization. An agent sees the events of
    the chatrooms it participates in now, and the (un)assignments that name it, so it learns that
    it was removed from a chatroom whose other events it no longer sees. A pending agent's
    discarded assignment (`pending: true`) is not shown: pending agents see nothing yet (R8).
    `participants` must hold every chatroom of the events asked about when the actor is an agent.
    """
    if event.org_id != actor.org_id:
        return False
    if actor.sees_whole_organization:
        return True
    if event.chatroom_id is None:
        return False
    if actor.id in participants[event.chatroom_id]:
        return True
    return (
        event.type in _ASSIGNMENTS
        and not event.data.get("pending", False)
        and actor.id in event.data.get("agent_ids", ())
    )


def needs_participants(actor: Actor) -> bool:
    """Whether deciding what `actor` sees takes the chatrooms' participants."""
    return not actor.sees_whole_organization
