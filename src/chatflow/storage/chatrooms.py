"""Chatrooms, their participants (who carry the R3 order key) and pending assignments (R8)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa

from chatflow.domain.models import (
    AgentId,
    ChannelId,
    Chatroom,
    ChatroomId,
    ChatroomListItem,
    ChatroomStatus,
    ContactId,
    OrganizationId,
    Participant,
)
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, insert_row, param
from chatflow.storage.tables import chatrooms, participants, pending_assignments

_STATUSES = {status.value: status for status in ChatroomStatus}


def _chatroom(row: Any, members: tuple[Participant, ...], pending: tuple[AgentId, ...]) -> Chatroom:
    return Chatroom(
        id=ChatroomId(row.id),
        org_id=OrganizationId(row.org_id),
        contact_id=ContactId(row.contact_id),
        channel_id=ChannelId(row.channel_id),
        status=_STATUSES[row.status],
        created_at=row.created_at,
        closed_at=row.closed_at,
        last_activity_at=row.last_activity_at,
        bump_key=row.bump_key,
        window_expires_at=row.window_expires_at,
        event_seq=row.event_seq,
        participants=members,
        pending_agent_ids=pending,
    )


_INSERT = insert_row(chatrooms)


def insert_chatroom(tx: Tx, chatroom: Chatroom) -> None:
    tx.run(
        _INSERT,
        {
            "id": chatroom.id,
            "org_id": chatroom.org_id,
            "contact_id": chatroom.contact_id,
            "channel_id": chatroom.channel_id,
            "status": chatroom.status.value,
            "created_at": chatroom.created_at,
            "closed_at": chatroom.closed_at,
            "last_activity_at": chatroom.last_activity_at,
            "bump_key": chatroom.bump_key,
            "window_expires_at": chatroom.window_expires_at,
            "event_seq": chatroom.event_seq,
        },
    )


_GET = Query(
    sa.select(chatrooms).where(chatrooms.c.org_id == param("org_id"), chatrooms.c.id == param("id"))
)
# On PostgreSQL every write that touches a chatroom locks its row first, so the changes of one
# chatroom (bumps, handover, per-chatroom event sequence) apply one after another. SQLite has a
# single writer and renders no FOR UPDATE.
_GET_LOCKED = Query(
    sa.select(chatrooms)
    .where(chatrooms.c.org_id == param("org_id"), chatrooms.c.id == param("id"))
    .with_for_update()
)


def load_chatroom(tx: Tx, org_id: str, chatroom_id: str, *, lock: bool = False) -> Chatroom | None:
    row = tx.run(_GET_LOCKED if lock else _GET, {"org_id": org_id, "id": chatroom_id}).first()
    if row is None:
        return None
    # Read after the lock, in a statement of its own: on PostgreSQL it then sees what the
    # transaction that held the lock committed (a join would see the rows of before the wait).
    people = tx.run(_PEOPLE[tx.dialect], {"id": chatroom_id}).one()
    return _chatroom(row, *_people(people))


def _people_json(dialect: str) -> tuple[sa.ColumnElement[str], sa.ColumnElement[str]]:
    """A listed chatroom's participants (`[agent_id, joined_at, bump_key, unread_count,
    last_read_at]` each) and pending agent ids, as two JSON arrays of its row.

    A list page reads its chatrooms and their people in one statement: with the people in a
    second statement (`IN` the page's ids) a page cost a fifth more CPU on SQLite, building a
    row per person, and a round trip more on PostgreSQL. The arrays come unordered (SQLite
    before 3.44 cannot order an aggregate); `_people` orders them.
    """
    member = participants.alias("member")
    waiting = pending_assignments.alias("waiting")
    fields = (
        member.c.agent_id,
        member.c.joined_at,
        member.c.bump_key,
        member.c.unread_count,
        member.c.last_read_at,
    )
    people: sa.ColumnElement[Any]
    agent_ids: sa.ColumnElement[Any]
    if dialect == "postgresql":
        # As text, so that both dialects' arrays are read by the same (fast) parser.
        people = sa.func.coalesce(
            sa.cast(sa.func.json_agg(sa.func.json_build_array(*fields)), sa.Text), "[]"
        )
        agent_ids = sa.func.coalesce(sa.cast(sa.func.json_agg(waiting.c.agent_id), sa.Text), "[]")
    else:
        people = sa.func.json_group_array(sa.func.json_array(*fields))
        agent_ids = sa.func.json_group_array(waiting.c.agent_id)
    return (
        sa.select(people)
        .where(member.c.chatroom_id == chatrooms.c.id)
        .scalar_subquery()
        .label("people"),
        sa.select(agent_ids)
        .where(waiting.c.chatroom_id == chatrooms.c.id)
        .scalar_subquery()
        .label("pending"),
    )


_DIALECTS = ("sqlite", "postgresql")
_PEOPLE_JSON = {dialect: _people_json(dialect) for dialect in _DIALECTS}
_PEOPLE = {
    dialect: Query(
        sa.select(*_PEOPLE_JSON[dialect])
        .select_from(chatrooms)
        .where(chatrooms.c.id == param("id"))
    )
    for dialect in _DIALECTS
}


def _people(row: Any) -> tuple[tuple[Participant, ...], tuple[AgentId, ...]]:
    """The participants, by when they joined, and the pending agents, by id, of a row that
    carries `_people_json`'s arrays."""
    people = orjson.loads(row.people)
    if len(people) > 1:
        people.sort(key=lambda p: (p[1], p[0]))  # by joined_at, then agent id
    members = tuple([Participant(p[0], p[1], p[2], p[3], p[4]) for p in people])
    waiting = orjson.loads(row.pending)
    return members, tuple(sorted(waiting)) if waiting else ()


def _listed(row: Any) -> Chatroom:
    """A chatroom of a list page's row."""
    return _chatroom(row, *_people(row))


_OPEN_OF = Query(
    sa.select(chatrooms.c.id, chatrooms.c.org_id).where(
        chatrooms.c.contact_id == param("contact_id"),
        chatrooms.c.channel_id == param("channel_id"),
        # Written into the SQL, not bound, so that the partial index of open chatrooms serves it
        # with a plan made once. Bound, SQLite re-planned the statement on every execution (its
        # plan depends on the value: 33 µs a lookup against 11), and PostgreSQL's generic plan
        # for a prepared statement could not use the index at all.
        chatrooms.c.status == sa.literal_column(f"'{ChatroomStatus.OPEN.value}'"),
    )
)
_LATEST_OF = Query(
    sa.select(chatrooms.c.id, chatrooms.c.org_id)
    .where(
        chatrooms.c.contact_id == param("contact_id"),
        chatrooms.c.channel_id == param("channel_id"),
    )
    .order_by(chatrooms.c.created_at.desc(), chatrooms.c.id.desc())
    .limit(1)
)


def find_open_chatroom(tx: Tx, contact_id: str, channel_id: str, *, lock: bool) -> Chatroom | None:
    row = tx.run(_OPEN_OF, {"contact_id": contact_id, "channel_id": channel_id}).first()
    return None if row is None else load_chatroom(tx, row.org_id, row.id, lock=lock)


def find_latest_chatroom(tx: Tx, contact_id: str, channel_id: str) -> Chatroom | None:
    row = tx.run(_LATEST_OF, {"contact_id": contact_id, "channel_id": channel_id}).first()
    return None if row is None else load_chatroom(tx, row.org_id, row.id, lock=True)


_TOUCH = Query(
    chatrooms.update()
    .where(chatrooms.c.id == param("id"))
    .values(
        last_activity_at=param("now"),
        bump_key=sa.case(
            (chatrooms.c.bump_key < param("bump_key"), param("bump_key")),
            else_=chatrooms.c.bump_key,
        ),
        event_seq=chatrooms.c.event_seq + param("events"),
        # R4: a customer message opens or refreshes the window; never shortened. A NULL
        # `window` (any other activity) compares false and leaves it as it is.
        window_expires_at=sa.case(
            (
                sa.or_(
                    chatrooms.c.window_expires_at.is_(None),
                    chatrooms.c.window_expires_at < param("window"),
                ),
                param("window"),
            ),
            else_=chatrooms.c.window_expires_at,
        ),
    )
    .returning(chatrooms.c.event_seq)
)
_ADVANCE_SEQ = Query(
    chatrooms.update()
    .where(chatrooms.c.id == param("id"))
    .values(event_seq=chatrooms.c.event_seq + param("events"))
    .returning(chatrooms.c.event_seq)
)


def touch_chatroom(
    tx: Tx, chatroom_id: str, *, bump_key: int, events: int, window_expires_at: int | None = None
) -> int:
    """Record activity (and a bump, if `bump_key` is newer, and the customer window's new end,
    if later); reserve `events` sequence numbers.

    Returns the last reserved sequence number: the events get `last - events + 1 … last`.
    """
    row = tx.run(
        _TOUCH,
        {
            "id": chatroom_id,
            "now": tx.now,
            "bump_key": bump_key,
            "events": events,
            "window": window_expires_at,
        },
    ).one()
    return int(row.event_seq)


def reserve_event_seq(tx: Tx, chatroom_id: str, events: int) -> int:
    return int(tx.run(_ADVANCE_SEQ, {"id": chatroom_id, "events": events}).one().event_seq)


def update_chatroom(tx: Tx, chatroom_id: str, values: dict[str, Any]) -> None:
    tx.execute(chatrooms.update().where(chatrooms.c.id == chatroom_id).values(**values))


_BUMP_PARTICIPANTS = Query(
    participants.update()
    .where(participants.c.chatroom_id == param("id"))
    .values(bump_key=param("bump_key"), unread_count=participants.c.unread_count + param("unread"))
)
_MARK_READ = Query(
    participants.update()
    .where(participants.c.chatroom_id == param("id"), participants.c.agent_id == param("agent_id"))
    .values(unread_count=0, last_read_at=param("now"))
)


def bump_participants(tx: Tx, chatroom_id: str, bump_key: int, *, unread: int = 0) -> None:
    """R3: a bump sets the order key of every participant of the chatroom."""
    tx.run(_BUMP_PARTICIPANTS, {"id": chatroom_id, "bump_key": bump_key, "unread": unread})


def mark_read(tx: Tx, chatroom_id: str, agent_id: str) -> None:
    tx.run(_MARK_READ, {"id": chatroom_id, "agent_id": agent_id, "now": tx.now})


def insert_participants(
    tx: Tx, chatroom_id: str, agent_ids: Iterable[str], bump_key: int, *, unread: int = 0
) -> None:
    rows = [
        {
            "chatroom_id": chatroom_id,
            "agent_id": agent_id,
            "joined_at": tx.now,
            "bump_key": bump_key,
            "unread_count": unread,
            "last_read_at": None,
        }
        for agent_id in agent_ids
    ]
    if rows:
        tx.execute(participants.insert().values(rows))


def delete_participants(tx: Tx, chatroom_id: str, agent_ids: Iterable[str]) -> None:
    ids = list(agent_ids)
    if ids:
        tx.execute(
            participants.delete().where(
                participants.c.chatroom_id == chatroom_id, participants.c.agent_id.in_(ids)
            )
        )


def insert_pending(tx: Tx, chatroom_id: str, agent_ids: Iterable[str]) -> None:
    rows = [
        {"chatroom_id": chatroom_id, "agent_id": agent_id, "created_at": tx.now}
        for agent_id in agent_ids
    ]
    if rows:
        tx.execute(pending_assignments.insert().values(rows))


def take_pending(tx: Tx, chatroom_id: str) -> list[AgentId]:
    """Remove and return the pending agents: whoever takes them does the handover, once."""
    rows = tx.execute(
        pending_assignments.delete()
        .where(pending_assignments.c.chatroom_id == chatroom_id)
        .returning(pending_assignments.c.agent_id)
    ).all()
    return sorted(AgentId(r.agent_id) for r in rows)


def _agent_page(dialect: str, *, after_cursor: bool) -> Query:
    query = (
        sa.select(
            chatrooms,
            *_PEOPLE_JSON[dialect],
            participants.c.bump_key.label("p_bump_key"),
            participants.c.unread_count.label("p_unread_count"),
        )
        .join(participants, participants.c.chatroom_id == chatrooms.c.id)
        .where(participants.c.agent_id == param("agent_id"))
    )
    if after_cursor:
        query = query.where(
            sa.tuple_(participants.c.bump_key, participants.c.chatroom_id)
            < sa.tuple_(param("bump_key"), param("chatroom_id"))
        )
    return Query(
        query.order_by(participants.c.bump_key.desc(), participants.c.chatroom_id.desc()).limit(
            param("limit")
        )
    )


_AGENT_FIRST_PAGE = {d: _agent_page(d, after_cursor=False) for d in _DIALECTS}
_AGENT_NEXT_PAGE = {d: _agent_page(d, after_cursor=True) for d in _DIALECTS}


def list_for_agent(
    tx: Tx, agent_id: str, *, after: tuple[int, str] | None, limit: int
) -> list[ChatroomListItem]:
    """R3: the agent's chatrooms, newest order key first; one range scan of the index."""
    if after is None:
        rows = tx.run(_AGENT_FIRST_PAGE[tx.dialect], {"agent_id": agent_id, "limit": limit + 1})
    else:
        rows = tx.run(
            _AGENT_NEXT_PAGE[tx.dialect],
            {
                "agent_id": agent_id,
                "bump_key": after[0],
                "chatroom_id": after[1],
                "limit": limit + 1,
            },
        )
    return [ChatroomListItem(_listed(row), row.p_bump_key, row.p_unread_count) for row in rows]


def list_for_organization(
    tx: Tx, org_id: str, *, after: tuple[int, str] | None, limit: int, status: str | None
) -> list[Chatroom]:
    query = sa.select(chatrooms, *_PEOPLE_JSON[tx.dialect]).where(chatrooms.c.org_id == org_id)
    if status is not None:
        query = query.where(chatrooms.c.status == status)
    if after is not None:
        query = query.where(
            sa.tuple_(chatrooms.c.bump_key, chatrooms.c.id) < sa.tuple_(after[0], after[1])
        )
    rows = tx.execute(
        query.order_by(chatrooms.c.bump_key.desc(), chatrooms.c.id.desc()).limit(limit + 1)
    )
    return [_listed(row) for row in rows]


def idle_open_chatrooms(tx: Tx, org_id: str, idle_before: int, limit: int) -> list[str]:
    rows = tx.execute(
        sa.select(chatrooms.c.id)
        .where(
            chatrooms.c.status == ChatroomStatus.OPEN.value,
            chatrooms.c.last_activity_at < idle_before,
            chatrooms.c.org_id == org_id,
        )
        .order_by(chatrooms.c.last_activity_at)
        .limit(limit)
    ).all()
    return [r.id for r in rows]
