"""Organizations, agents, API keys and agent sessions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatflow.domain.models import (
    Agent,
    AgentId,
    ApiKey,
    ApiKeyId,
    Organization,
    OrganizationId,
    Role,
)
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, param
from chatflow.storage.tables import agents, api_keys, organizations, sessions


def _organization(row: Any) -> Organization:
    return Organization(
        id=OrganizationId(row.id),
        name=row.name,
        idle_close_seconds=row.idle_close_seconds,
        created_at=row.created_at,
    )


def _agent(row: Any) -> Agent:
    return Agent(
        id=AgentId(row.id),
        org_id=OrganizationId(row.org_id),
        email=row.email,
        name=row.name,
        role=Role(row.role),
        active=bool(row.active),
        created_at=row.created_at,
    )


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        id=ApiKeyId(row.id),
        org_id=OrganizationId(row.org_id),
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


_AGENT_COLUMNS = [c for c in agents.c if c.name != "password_hash"]


def insert_organization(tx: Tx, org: Organization) -> None:
    tx.execute(
        organizations.insert().values(
            id=org.id,
            name=org.name,
            idle_close_seconds=org.idle_close_seconds,
            created_at=org.created_at,
        )
    )


def get_organization(tx: Tx, org_id: str) -> Organization | None:
    row = tx.execute(sa.select(organizations).where(organizations.c.id == org_id)).first()
    return None if row is None else _organization(row)


def update_organization(tx: Tx, org_id: str, values: dict[str, Any]) -> None:
    tx.execute(organizations.update().where(organizations.c.id == org_id).values(**values))


def organizations_with_idle_close(tx: Tx) -> list[Organization]:
    rows = tx.execute(
        sa.select(organizations).where(organizations.c.idle_close_seconds.is_not(None))
    ).all()
    return [_organization(r) for r in rows]


def count_organizations(tx: Tx) -> int:
    return int(tx.execute(sa.select(sa.func.count()).select_from(organizations)).scalar_one())


def insert_agent(tx: Tx, agent: Agent, password_hash: str) -> None:
    tx.execute(
        agents.insert().values(
            id=agent.id,
            org_id=agent.org_id,
            email=agent.email,
            name=agent.name,
            role=agent.role.value,
            active=agent.active,
            password_hash=password_hash,
            created_at=agent.created_at,
        )
    )


_GET_AGENT = Query(
    sa.select(*_AGENT_COLUMNS).where(agents.c.org_id == param("org_id"), agents.c.id == param("id"))
)


def get_agent(tx: Tx, org_id: str, agent_id: str) -> Agent | None:
    row = tx.run(_GET_AGENT, {"org_id": org_id, "id": agent_id}).first()
    return None if row is None else _agent(row)


def get_agents(tx: Tx, org_id: str, agent_ids: list[str]) -> dict[str, Agent]:
    if not agent_ids:
        return {}
    rows = tx.execute(
        sa.select(*_AGENT_COLUMNS).where(agents.c.org_id == org_id, agents.c.id.in_(agent_ids))
    ).all()
    return {row.id: _agent(row) for row in rows}


def agent_email_exists(tx: Tx, email: str) -> bool:
    return tx.execute(sa.select(agents.c.id).where(agents.c.email == email)).first() is not None


def get_agent_login(tx: Tx, email: str) -> tuple[Agent, str] | None:
    row = tx.execute(sa.select(agents).where(agents.c.email == email)).first()
    return None if row is None else (_agent(row), row.password_hash)


def list_agents(tx: Tx, org_id: str, after: str | None, limit: int) -> list[Agent]:
    query = sa.select(*_AGENT_COLUMNS).where(agents.c.org_id == org_id)
    if after is not None:
        query = query.where(agents.c.id > after)
    rows = tx.execute(query.order_by(agents.c.id).limit(limit + 1)).all()
    return [_agent(r) for r in rows]


def update_agent(tx: Tx, agent_id: str, values: dict[str, Any]) -> None:
    tx.execute(agents.update().where(agents.c.id == agent_id).values(**values))


def insert_api_key(tx: Tx, key: ApiKey, key_hash: str) -> None:
    tx.execute(
        api_keys.insert().values(
            id=key.id,
            org_id=key.org_id,
            name=key.name,
            prefix=key.prefix,
            key_hash=key_hash,
            created_at=key.created_at,
            last_used_at=None,
            revoked_at=None,
        )
    )


_API_KEY_BY_HASH = Query(sa.select(api_keys).where(api_keys.c.key_hash == param("key_hash")))


def get_api_key_by_hash(tx: Tx, key_hash: str) -> ApiKey | None:
    row = tx.run(_API_KEY_BY_HASH, {"key_hash": key_hash}).first()
    return None if row is None else _api_key(row)


def get_api_key(tx: Tx, org_id: str, key_id: str) -> ApiKey | None:
    row = tx.execute(
        sa.select(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.id == key_id)
    ).first()
    return None if row is None else _api_key(row)


def list_api_keys(tx: Tx, org_id: str, after: str | None, limit: int) -> list[ApiKey]:
    query = sa.select(api_keys).where(api_keys.c.org_id == org_id)
    if after is not None:
        query = query.where(api_keys.c.id > after)
    return [_api_key(r) for r in tx.execute(query.order_by(api_keys.c.id).limit(limit + 1))]


def update_api_key(tx: Tx, key_id: str, values: dict[str, Any]) -> None:
    tx.execute(api_keys.update().where(api_keys.c.id == key_id).values(**values))


def insert_session(tx: Tx, session_id: str, token_hash: str, agent: Agent, expires_at: int) -> None:
    tx.execute(
        sessions.insert().values(
            id=session_id,
            token_hash=token_hash,
            agent_id=agent.id,
            org_id=agent.org_id,
            created_at=tx.now,
            expires_at=expires_at,
            revoked_at=None,
        )
    )


_SESSION_AGENT = Query(
    sa.select(
        sessions.c.id.label("session_id"),
        sessions.c.expires_at,
        sessions.c.revoked_at,
        *_AGENT_COLUMNS,
    )
    .join(agents, agents.c.id == sessions.c.agent_id)
    .where(sessions.c.token_hash == param("token_hash"))
)


def get_session_agent(tx: Tx, token_hash: str) -> tuple[str, int, int | None, Agent] | None:
    row = tx.run(_SESSION_AGENT, {"token_hash": token_hash}).first()
    if row is None:
        return None
    return row.session_id, row.expires_at, row.revoked_at, _agent(row)


def revoke_session(tx: Tx, token_hash: str) -> None:
    tx.execute(
        sessions.update()
        .where(sessions.c.token_hash == token_hash, sessions.c.revoked_at.is_(None))
        .values(revoked_at=tx.now)
    )


def revoke_agent_sessions(tx: Tx, agent_id: str) -> None:
    tx.execute(
        sessions.update()
        .where(sessions.c.agent_id == agent_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=tx.now)
    )
