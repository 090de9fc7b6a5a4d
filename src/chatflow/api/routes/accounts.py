"""Sessions, the organization, agents and API keys."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import (
    SESSION_COOKIE,
    CurrentActor,
    Cursor,
    Db,
    Limit,
    RuntimeDep,
    bearer_token,
)
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response, page_response, write
from chatflow.clock import iso
from chatflow.domain.access import check_administers
from chatflow.domain.errors import InvalidCredentialsError
from chatflow.domain.models import Role
from chatflow.services import accounts
from chatflow.services.passwords import hash_password, verify_password
from chatflow.views import (
    AgentRead,
    ApiKeyCreated,
    ApiKeyRead,
    OrganizationRead,
    agent_view,
    api_key_created_view,
    api_key_view,
    organization_view,
)

router = APIRouter(route_class=CompiledRoute, prefix="/v1", responses=PROBLEM_RESPONSES)


@router.post("/auth/login", response_model=schemas.SessionRead, tags=["auth"])
async def login(body: schemas.LoginRequest, runtime: RuntimeDep) -> Response:
    """Start an agent session for the web app and the live stream."""
    database = runtime.database
    found = await database.read(lambda tx: accounts.find_login(tx, body.email))
    agent, password_hash = found if found is not None else (None, None)
    # Verified off the event loop: Argon2 takes tens of milliseconds by design.
    valid = await asyncio.to_thread(verify_password, password_hash, body.password)
    if agent is None or not valid or not agent.active:
        raise InvalidCredentialsError("The email or password is wrong")
    token, expires_at = await database.write(lambda tx: accounts.do_start_session(tx, agent))
    response = json_response(
        schemas.SessionRead(token=token, expires_at=iso(expires_at), agent=agent_view(agent))
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=accounts.SESSION_LIFETIME_MILLIS // 1000,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.secure_cookies,
        path="/",
    )
    return response


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """End the caller's agent session."""
    token = bearer_token(request)
    if token is not None and token.startswith(accounts.SESSION_PREFIX):
        await runtime.database.write(lambda tx: accounts.do_end_session(tx, token))
        runtime.authenticator.forget(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", tags=["auth"])
async def me(actor: CurrentActor, db: Db) -> dict[str, object]:
    """Who the caller is: an agent (with its role) or an API key, and its organization."""
    org = await db.read(lambda tx: accounts.get_organization(tx, actor))
    result: dict[str, object] = {
        "kind": actor.kind.value,
        "organization": organization_view(org),
    }
    if actor.agent_id is not None:
        agent_id = actor.agent_id
        agent = await db.read(lambda tx: accounts.access_agent(tx, actor, agent_id))
        result["agent"] = agent_view(agent)
    else:
        result["api_key_id"] = actor.id
    return result


@router.get("/organization", response_model=OrganizationRead, tags=["organization"])
async def get_organization(actor: CurrentActor, db: Db) -> Response:
    return json_response(
        organization_view(await db.read(lambda tx: accounts.get_organization(tx, actor)))
    )


@router.patch("/organization", response_model=OrganizationRead, tags=["organization"])
async def update_organization(
    body: schemas.OrganizationUpdate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    clear = "idle_close_seconds" in body.model_fields_set and body.idle_close_seconds is None
    return await write(
        request,
        db,
        actor,
        lambda tx: accounts.do_update_organization(
            tx, actor, name=body.name, idle_close_seconds=body.idle_close_seconds, clear_idle=clear
        ),
        lambda org: (200, organization_view(org)),
    )


@router.post("/agents", status_code=201, response_model=AgentRead, tags=["agents"])
async def create_agent(
    body: schemas.AgentCreate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Admins add agents; the password is hashed before the transaction starts."""
    check_administers(actor)
    password_hash = await asyncio.to_thread(hash_password, body.password)
    return await write(
        request,
        db,
        actor,
        lambda tx: accounts.do_create_agent(
            tx,
            actor,
            email=body.email,
            name=body.name,
            role=Role(body.role),
            password_hash=password_hash,
        ),
        lambda agent: (201, agent_view(agent)),
    )


@router.get("/agents", tags=["agents"])
async def list_agents(
    actor: CurrentActor, db: Db, cursor: Cursor = None, limit: Limit = 20
) -> Response:
    page = await db.read(lambda tx: accounts.list_agents(tx, actor, cursor=cursor, limit=limit))
    return page_response(page, agent_view)


@router.get("/agents/{agent_id}", response_model=AgentRead, tags=["agents"])
async def get_agent(agent_id: str, actor: CurrentActor, db: Db) -> Response:
    return json_response(
        agent_view(await db.read(lambda tx: accounts.access_agent(tx, actor, agent_id)))
    )


@router.patch("/agents/{agent_id}", response_model=AgentRead, tags=["agents"])
async def update_agent(
    agent_id: str,
    body: schemas.AgentUpdate,
    request: Request,
    actor: CurrentActor,
    runtime: RuntimeDep,
) -> Response:
    check_administers(actor)
    password_hash = await asyncio.to_thread(hash_password, body.password) if body.password else None
    response = await write(
        request,
        runtime.database,
        actor,
        lambda tx: accounts.do_update_agent(
            tx,
            actor,
            agent_id,
            name=body.name,
            role=None if body.role is None else Role(body.role),
            active=body.active,
            password_hash=password_hash,
        ),
        lambda agent: (200, agent_view(agent)),
    )
    runtime.authenticator.forget(actor_id=agent_id)
    return response


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated, tags=["api keys"])
async def create_api_key(
    body: schemas.ApiKeyCreate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """The secret is in this response only; chatflow keeps its hash."""
    return await write(
        request,
        db,
        actor,
        lambda tx: accounts.do_create_api_key(tx, actor, name=body.name),
        lambda made: (201, api_key_created_view(*made)),
    )


@router.get("/api-keys", tags=["api keys"])
async def list_api_keys(
    actor: CurrentActor, db: Db, cursor: Cursor = None, limit: Limit = 20
) -> Response:
    page = await db.read(lambda tx: accounts.list_api_keys(tx, actor, cursor=cursor, limit=limit))
    return page_response(page, api_key_view)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyRead, tags=["api keys"])
async def revoke_api_key(key_id: str, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """Revoke a key: it stops working at once."""
    key = await runtime.database.write(lambda tx: accounts.do_revoke_api_key(tx, actor, key_id))
    runtime.authenticator.forget(actor_id=key.id)
    return json_response(api_key_view(key))
