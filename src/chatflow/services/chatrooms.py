"""Chatrooms: creation (R2, R8), the agent's list (R3), reassign (R9), close and reopen."""

from __future__ import annotations

from dataclasses import replace

from chatflow.domain.access import Actor, check_administers, check_sees_chatroom
from chatflow.domain.errors import (
    AgentInactiveError,
    ChatroomStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from chatflow.domain.models import (
    Agent,
    AgentId,
    AssignReason,
    ChannelId,
    Chatroom,
    ChatroomId,
    ChatroomListItem,
    ChatroomStatus,
    ContactId,
    OrganizationId,
)
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.services.channels import access_channel
from chatflow.services.contacts import access_contact
from chatflow.storage import accounts as account_store
from chatflow.storage import chatrooms as store
from chatflow.storage.database import Tx
from chatflow.views import chatroom_view

MAX_PARTICIPANTS = 50


def access_chatroom(tx: Tx, actor: Actor, chatroom_id: str, *, lock: bool = False) -> Chatroom:
    """Fetch the chatroom within the actor's organization and check the actor may see it.

    `lock=True` in write transactions: on PostgreSQL it locks the chatroom's row, so changes to
    one chatroom apply one after another.
    """
    chatroom = store.load_chatroom(tx, actor.org_id, chatroom_id, lock=lock)
    if chatroom is None:
        raise NotFoundError(f"No chatroom {chatroom_id}")
    check_sees_chatroom(actor, chatroom)
    return chatroom


def reload(tx: Tx, chatroom: Chatroom) -> Chatroom:
    fresh = store.load_chatroom(tx, chatroom.org_id, chatroom.id)
    assert fresh is not None
    return fresh


def check_agents(tx: Tx, actor: Actor, agent_ids: list[str], pointer: str) -> list[Agent]:
    """The named agents exist in the actor's organization and are active."""
    if len(set(agent_ids)) != len(agent_ids):
        raise ValidationError(
            "An agent is named twice", errors=[{"pointer": pointer, "message": "duplicate agent"}]
        )
    if len(agent_ids) > MAX_PARTICIPANTS:
        raise ValidationError(
            f"At most {MAX_PARTICIPANTS} agents per chatroom",
            errors=[{"pointer": pointer, "message": "too many agents"}],
        )
    found = account_store.get_agents(tx, actor.org_id, agent_ids)
    agents = []
    for agent_id in agent_ids:
        agent = found.get(agent_id)
        if agent is None:
            raise NotFoundError(f"No agent {agent_id}")
        if not agent.active:
            raise AgentInactiveError(f"Agent {agent_id} is deactivated", agent_id=agent_id)
        agents.append(agent)
    return agents


def do_create_chatroom(
    tx: Tx,
    actor: Actor,
    *,
    contact_id: str,
    channel_id: str,
    participant_ids: list[str],
    assign_on_handover: bool,
) -> tuple[Chatroom, bool]:
    """R2: one open chatroom per contact and channel; R8: assign on handover.

    Returns the chatroom and whether it was created. An open chatroom that already exists is
    returned unchanged: no bump, participants untouched, no event.
    """
    if not actor.sees_whole_organization and actor.id not in participant_ids:
        raise PermissionDeniedError("An agent can only create chatrooms it participates in")
    contact = access_contact(tx, actor, contact_id)
    channel = access_channel(tx, actor, channel_id)
    agents = check_agents(tx, actor, participant_ids, "/participants")
    existing = store.find_open_chatroom(tx, contact.id, channel.id, lock=True)
    # Re-read under the lock: a close may have committed since the open chatroom was found.
    if existing is not None and existing.status is ChatroomStatus.OPEN:
        check_sees_chatroom(actor, existing)
        return existing, False
    previous = store.find_latest_chatroom(tx, contact.id, channel.id)
    # The customer-service window belongs to the customer and the channel, not to one chatroom:
    # a new chatroom keeps the window the last one had.
    chatroom = insert_new(
        tx,
        actor.org_id,
        contact.id,
        channel.id,
        window_expires_at=None if previous is None else previous.window_expires_at,
    )
    key = chatroom.bump_key
    agent_ids = [a.id for a in agents]
    if assign_on_handover:
        store.insert_pending(tx, chatroom.id, agent_ids)
    else:
        # R2/R3: a new chatroom comes to the top of each participant's list.
        store.insert_participants(tx, chatroom.id, agent_ids, key)
    chatroom = reload(tx, chatroom)
    specs: list[outbox.EventSpec] = [
        (EventType.CHATROOM_CREATED, {"chatroom": chatroom_view(chatroom)})
    ]
    if agent_ids and not assign_on_handover:
        specs.append(_assigned(chatroom.id, agent_ids, AssignReason.CREATED))
    events = outbox.record_chatroom(tx, actor.org_id, chatroom.id, specs)
    return replace(chatroom, event_seq=events[-1].seq or 0), True


def insert_new(
    tx: Tx,
    org_id: OrganizationId,
    contact_id: ContactId,
    channel_id: ChannelId,
    *,
    window_expires_at: int | None,
) -> Chatroom:
    """Store a new open chatroom, at the top of the order (its key is fresh), with no agents."""
    chatroom = Chatroom(
        id=ChatroomId(new_id("cr")),
        org_id=org_id,
        contact_id=contact_id,
        channel_id=channel_id,
        status=ChatroomStatus.OPEN,
        created_at=tx.now,
        closed_at=None,
        last_activity_at=tx.now,
        bump_key=tx.next_bump_key(),
        window_expires_at=window_expires_at,
        event_seq=0,
    )
    store.insert_chatroom(tx, chatroom)
    return chatroom


def bumped(chatroom: Chatroom, key: int, cause: str) -> outbox.EventSpec:
    """`chatroom.bumped`: every participant's order key is now `key` (R3)."""
    return (
        EventType.CHATROOM_BUMPED,
        {
            "chatroom_id": chatroom.id,
            "agent_ids": [p.agent_id for p in chatroom.participants],
            "bump_key": key,
            "cause": cause,
        },
    )


def _assigned(
    chatroom_id: str, agent_ids: list[AgentId] | list[str], reason: AssignReason
) -> outbox.EventSpec:
    return (
        EventType.CHATROOM_ASSIGNED,
        {"chatroom_id": chatroom_id, "agent_ids": list(agent_ids), "reason": reason.value},
    )


def _unassigned(chatroom_id: str, agent_ids: list[AgentId], *, pending: bool) -> outbox.EventSpec:
    """Agents leave a chatroom at reassign; `pending`: they had not joined yet (R8, R9)."""
    return (
        EventType.CHATROOM_UNASSIGNED,
        {
            "chatroom_id": chatroom_id,
            "agent_ids": agent_ids,
            "reason": "reassign",
            "pending": pending,
        },
    )


def join(
    tx: Tx, chatroom: Chatroom, agent_ids: list[AgentId], reason: AssignReason, *, unread: int = 0
) -> outbox.EventSpec | None:
    """Agents join: they become participants with a fresh order key (R3), so the chatroom comes to
    the top of their lists. Call inside the chatroom's (locked) transaction. `unread`: how many
    messages the joiners have not read yet (at handover, the customer's message that caused it).
    """
    if not agent_ids:
        return None
    store.insert_participants(tx, chatroom.id, agent_ids, tx.next_bump_key(), unread=unread)
    return _assigned(chatroom.id, agent_ids, reason)


def do_reassign(tx: Tx, actor: Actor, chatroom_id: str, agent_ids: list[str]) -> Chatroom:
    """R9: set the chatroom's agents explicitly and discard any pending assign-on-handover.

    Admins and API keys reassign any chatroom; an agent reassigns the chatrooms it participates
    in (handing a conversation to a colleague), as SPEC's agents do.
    """
    chatroom = access_chatroom(tx, actor, chatroom_id, lock=True)
    agents = check_agents(tx, actor, agent_ids, "/agent_ids")
    wanted = [a.id for a in agents]
    current = [p.agent_id for p in chatroom.participants]
    leaving = [a for a in current if a not in wanted]
    joining = [a for a in wanted if a not in current]
    discarded = store.take_pending(tx, chatroom.id)
    store.delete_participants(tx, chatroom.id, leaving)
    specs: list[outbox.EventSpec] = []
    if leaving:
        specs.append(_unassigned(chatroom.id, leaving, pending=False))
    if discarded:
        specs.append(_unassigned(chatroom.id, discarded, pending=True))
    joined = join(tx, chatroom, joining, AssignReason.REASSIGN)
    if joined is not None:
        specs.append(joined)
    outbox.record_chatroom(tx, actor.org_id, chatroom.id, specs)
    return reload(tx, chatroom)


def do_close(tx: Tx, actor: Actor, chatroom_id: str, *, reason: str = "closed") -> Chatroom:
    chatroom = access_chatroom(tx, actor, chatroom_id, lock=True)
    if chatroom.status is ChatroomStatus.CLOSED:
        raise ChatroomStateError(f"Chatroom {chatroom.id} is already closed")
    return close(tx, chatroom, reason)


def close(tx: Tx, chatroom: Chatroom, reason: str) -> Chatroom:
    store.update_chatroom(
        tx, chatroom.id, {"status": ChatroomStatus.CLOSED.value, "closed_at": tx.now}
    )
    closed = reload(tx, chatroom)
    outbox.record_chatroom(
        tx,
        chatroom.org_id,
        chatroom.id,
        [
            (
                EventType.CHATROOM_CLOSED,
                {"chatroom": chatroom_view(closed), "reason": reason},
            )
        ],
    )
    return reload(tx, chatroom)


def do_reopen(tx: Tx, actor: Actor, chatroom_id: str) -> Chatroom:
    chatroom = access_chatroom(tx, actor, chatroom_id, lock=True)
    if chatroom.status is ChatroomStatus.OPEN:
        raise ChatroomStateError(f"Chatroom {chatroom.id} is already open")
    reopened, spec = reopen(tx, chatroom, "reopened")
    outbox.record_chatroom(tx, actor.org_id, chatroom.id, [spec])
    return reload(tx, reopened)


def reopen(tx: Tx, chatroom: Chatroom, reason: str) -> tuple[Chatroom, outbox.EventSpec]:
    """Reopen a closed chatroom, unless its contact has another open one on the channel (R2)."""
    other = store.find_open_chatroom(tx, chatroom.contact_id, chatroom.channel_id, lock=False)
    if other is not None:
        raise ChatroomStateError(
            f"Chatroom {other.id} is already open for this contact on this channel",
            open_chatroom_id=other.id,
        )
    # Reopening is activity: the idle time (R2) counts from now, not from before the close.
    store.update_chatroom(
        tx,
        chatroom.id,
        {"status": ChatroomStatus.OPEN.value, "closed_at": None, "last_activity_at": tx.now},
    )
    reopened = reload(tx, chatroom)
    return reopened, (
        EventType.CHATROOM_REOPENED,
        {"chatroom": chatroom_view(reopened), "reason": reason},
    )


def do_mark_read(tx: Tx, actor: Actor, chatroom_id: str, agent_id: str | None) -> Chatroom:
    """Reset an agent's unread count: the caller's own, or (API keys, admins) a named agent's."""
    chatroom = access_chatroom(tx, actor, chatroom_id, lock=True)
    reader = actor.agent_id if agent_id is None else agent_id
    if reader is None:
        raise ValidationError(
            "An API key must name the agent who read the chatroom",
            errors=[{"pointer": "/agent_id", "message": "required for API keys"}],
        )
    if reader != actor.agent_id and not actor.sees_whole_organization:
        raise PermissionDeniedError("Agents mark chatrooms read for themselves only")
    if agent_id is not None and account_store.get_agent(tx, actor.org_id, agent_id) is None:
        # An id that is not an agent of this organization is unknown here, as everywhere.
        raise NotFoundError(f"No agent {agent_id}")
    if chatroom.participant(reader) is None:
        raise ChatroomStateError(
            f"Agent {reader} is not a participant of chatroom {chatroom.id}", agent_id=reader
        )
    store.mark_read(tx, chatroom.id, reader)
    return reload(tx, chatroom)


def list_for_agent(
    tx: Tx, actor: Actor, agent_id: str, *, cursor: str | None, limit: int
) -> Page[ChatroomListItem]:
    """R3: the chatrooms where the agent participates, newest order key first."""
    if agent_id != actor.agent_id and not actor.sees_whole_organization:
        raise PermissionDeniedError("Agents can list their own chatrooms only")
    if account_store.get_agent(tx, actor.org_id, agent_id) is None:
        raise NotFoundError(f"No agent {agent_id}")
    after = None
    if cursor:
        key, room = decode_cursor("agent_chatrooms", cursor, [int, str])
        after = (int(key), str(room))
    rows = store.list_for_agent(tx, agent_id, after=after, limit=limit)
    return page_of(rows, limit, "agent_chatrooms", lambda i: [i.bump_key, i.chatroom.id])


def list_for_organization(
    tx: Tx, actor: Actor, *, cursor: str | None, limit: int, status: ChatroomStatus | None
) -> Page[Chatroom]:
    check_administers(actor)
    after = None
    if cursor:
        key, room = decode_cursor("chatrooms", cursor, [int, str])
        after = (int(key), str(room))
    rows = store.list_for_organization(
        tx,
        actor.org_id,
        after=after,
        limit=limit,
        status=None if status is None else status.value,
    )
    return page_of(rows, limit, "chatrooms", lambda c: [c.bump_key, c.id])


def do_close_idle(tx: Tx, limit: int = 500) -> int:
    """R2: close open chatrooms idle longer than their organization allows. Returns how many."""
    closed = 0
    for org in account_store.organizations_with_idle_close(tx):
        assert org.idle_close_seconds is not None
        idle_before = tx.now - org.idle_close_seconds * 1000
        for chatroom_id in store.idle_open_chatrooms(tx, org.id, idle_before, limit - closed):
            chatroom = store.load_chatroom(tx, org.id, chatroom_id, lock=True)
            # Checked again under the lock: activity may have committed since the search.
            if (
                chatroom is not None
                and chatroom.status is ChatroomStatus.OPEN
                and chatroom.last_activity_at < idle_before
            ):
                close(tx, chatroom, "idle")
                closed += 1
        if closed >= limit:
            break
    return closed
