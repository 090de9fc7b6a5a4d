"""Organizations, agents, API keys and agent sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace

from chatflow.domain.access import Actor, ActorKind, check_administers
from chatflow.domain.errors import (
    AuthenticationError,
    ConflictError,
    EmailTakenError,
    InvalidCredentialsError,
    NotFoundError,
    ValidationError,
)
from chatflow.domain.models import (
    Agent,
    AgentId,
    ApiKey,
    ApiKeyId,
    Channel,
    ChannelId,
    ChannelType,
    Organization,
    OrganizationId,
    Role,
)
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.ids import new_id
from chatflow.storage import accounts as store
from chatflow.storage import channels as channel_store
from chatflow.storage.database import Tx

API_KEY_PREFIX = "cfk_"
SESSION_PREFIX = "cfs_"
SESSION_LIFETIME_MILLIS = 14 * 24 * 60 * 60 * 1000
MIN_PASSWORD_LENGTH = 8


def token_hash(token: str) -> str:
    """API keys and session tokens carry 256 random bits, so a plain SHA-256 protects them."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    local, at, domain = cleaned.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in cleaned):
        raise ValidationError(
            "The email address is not valid",
            errors=[{"pointer": "/email", "message": "not an email address"}],
        )
    return cleaned


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters",
            errors=[{"pointer": "/password", "message": "too short"}],
        )


# -- organizations ---------------------------------------------------------------------------


def get_organization(tx: Tx, actor: Actor) -> Organization:
    org = store.get_organization(tx, actor.org_id)
    if org is None:
        raise NotFoundError("No such organization")
    return org


def do_update_organization(
    tx: Tx, actor: Actor, *, name: str | None, idle_close_seconds: int | None, clear_idle: bool
) -> Organization:
    check_administers(actor)
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = name
    if idle_close_seconds is not None or clear_idle:
        values["idle_close_seconds"] = idle_close_seconds
    if values:
        store.update_organization(tx, actor.org_id, values)
    return get_organization(tx, actor)


@dataclass(frozen=True, slots=True)
class Bootstrap:
    organization: Organization
    admin: Agent
    admin_password: str
    api_key: str
    channel: Channel


def do_bootstrap(
    tx: Tx, *, org_name: str, admin_email: str, admin_password: str, password_hash: str
) -> Bootstrap:
    """Create an organization with an admin agent, an API key and a sandbox channel."""
    org = Organization(OrganizationId(new_id("org")), org_name, None, tx.now)
    store.insert_organization(tx, org)
    admin = Agent(
        AgentId(new_id("ag")),
        org.id,
        normalise_email(admin_email),
        "Admin",
        Role.ADMIN,
        True,
        tx.now,
    )
    if store.agent_email_exists(tx, admin.email):
        raise EmailTakenError(f"An agent with email {admin.email} already exists")
    store.insert_agent(tx, admin, password_hash)
    actor = Actor(org.id, ActorKind.AGENT, admin.id, Role.ADMIN)
    _, key = do_create_api_key(tx, actor, name="Default key")
    channel = Channel(
        ChannelId(new_id("ch")), org.id, ChannelType.SANDBOX, "Sandbox", True, {}, tx.now
    )
    channel_store.insert_channel(tx, channel, {})
    return Bootstrap(org, admin, admin_password, key, channel)


def is_empty(tx: Tx) -> bool:
    return store.count_organizations(tx) == 0


# -- agents -----------------------------------------------------------------------------------


def access_agent(tx: Tx, actor: Actor, agent_id: str) -> Agent:
    agent = store.get_agent(tx, actor.org_id, agent_id)
    if agent is None:
        raise NotFoundError(f"No agent {agent_id}")
    return agent


def do_create_agent(
    tx: Tx, actor: Actor, *, email: str, name: str, role: Role, password_hash: str
) -> Agent:
    """`password_hash` comes from `passwords.hash_password`, computed before the transaction."""
    check_administers(actor)
    agent = Agent(
        AgentId(new_id("ag")), actor.org_id, normalise_email(email), name, role, True, tx.now
    )
    if store.agent_email_exists(tx, agent.email):
        raise EmailTakenError(f"An agent with email {agent.email} already exists")
    store.insert_agent(tx, agent, password_hash)
    return agent


def do_update_agent(
    tx: Tx,
    actor: Actor,
    agent_id: str,
    *,
    name: str | None = None,
    role: Role | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
) -> Agent:
    check_administers(actor)
    agent = access_agent(tx, actor, agent_id)
    if agent.id == actor.agent_id and (active is False or role is Role.AGENT):
        raise ConflictError("An admin cannot deactivate or demote itself")
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = name
    if role is not None:
        values["role"] = role.value
    if active is not None:
        values["active"] = active
    if password_hash is not None:
        values["password_hash"] = password_hash
    if values:
        store.update_agent(tx, agent.id, values)
    if active is False or password_hash is not None:
        store.revoke_agent_sessions(tx, agent.id)
    return replace(
        agent,
        name=name if name is not None else agent.name,
        role=role if role is not None else agent.role,
        active=active if active is not None else agent.active,
    )


def list_agents(tx: Tx, actor: Actor, *, cursor: str | None, limit: int) -> Page[Agent]:
    after = str(decode_cursor("agents", cursor, [str])[0]) if cursor else None
    rows = store.list_agents(tx, actor.org_id, after, limit)
    return page_of(rows, limit, "agents", lambda a: [a.id])


# -- API keys ---------------------------------------------------------------------------------


def do_create_api_key(tx: Tx, actor: Actor, *, name: str) -> tuple[ApiKey, str]:
    """Returns the key and its secret; only the secret's hash is stored."""
    check_administers(actor)
    secret = new_secret(API_KEY_PREFIX)
    key = ApiKey(ApiKeyId(new_id("key")), actor.org_id, name, secret[:10], tx.now, None, None)
    store.insert_api_key(tx, key, token_hash(secret))
    return key, secret


def list_api_keys(tx: Tx, actor: Actor, *, cursor: str | None, limit: int) -> Page[ApiKey]:
    check_administers(actor)
    after = str(decode_cursor("api_keys", cursor, [str])[0]) if cursor else None
    rows = store.list_api_keys(tx, actor.org_id, after, limit)
    return page_of(rows, limit, "api_keys", lambda k: [k.id])


def do_revoke_api_key(tx: Tx, actor: Actor, key_id: str) -> ApiKey:
    check_administers(actor)
    key = store.get_api_key(tx, actor.org_id, key_id)
    if key is None:
        raise NotFoundError(f"No API key {key_id}")
    if key.revoked_at is None:
        store.update_api_key(tx, key.id, {"revoked_at": tx.now})
        key = replace(key, revoked_at=tx.now)
    return key


def do_touch_api_key(tx: Tx, key_id: str) -> None:
    store.update_api_key(tx, key_id, {"last_used_at": tx.now})


# -- authentication --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authenticated:
    actor: Actor
    last_used_at: int | None


def authenticate(tx: Tx, token: str) -> Authenticated:
    """Resolve a bearer token (API key or agent session) to the actor it speaks for."""
    if token.startswith(API_KEY_PREFIX):
        key = store.get_api_key_by_hash(tx, token_hash(token))
        if key is None or key.revoked_at is not None:
            raise AuthenticationError("The API key is not valid or has been revoked")
        return Authenticated(Actor(key.org_id, ActorKind.API_KEY, key.id), key.last_used_at)
    if token.startswith(SESSION_PREFIX):
        found = store.get_session_agent(tx, token_hash(token))
        if found is not None:
            _, expires_at, revoked_at, agent = found
            if revoked_at is None and expires_at > tx.now and agent.active:
                return Authenticated(
                    Actor(agent.org_id, ActorKind.AGENT, agent.id, agent.role), None
                )
        raise AuthenticationError("The session has expired or ended; log in again")
    raise AuthenticationError("The bearer token is not a chatflow API key or session")


def find_login(tx: Tx, email: str) -> tuple[Agent, str] | None:
    return store.get_agent_login(tx, email.strip().lower())


def do_start_session(tx: Tx, agent: Agent) -> tuple[str, int]:
    """Returns the session token and its expiry; only the token's hash is stored."""
    current = store.get_agent(tx, agent.org_id, agent.id)
    if current is None or not current.active:
        raise InvalidCredentialsError("The email or password is wrong")
    token = new_secret(SESSION_PREFIX)
    expires_at = tx.now + SESSION_LIFETIME_MILLIS
    store.insert_session(tx, new_id("ses"), token_hash(token), current, expires_at)
    return token, expires_at


def do_end_session(tx: Tx, token: str) -> None:
    store.revoke_session(tx, token_hash(token))
