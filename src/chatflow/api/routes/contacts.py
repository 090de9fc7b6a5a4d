"""Contacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from chatflow.api import schemas
from chatflow.api.compiled_route import CompiledRoute
from chatflow.api.deps import CurrentActor, Cursor, Db, Limit
from chatflow.api.problems import PROBLEM_RESPONSES
from chatflow.api.respond import json_response, page_response, write
from chatflow.services import contacts
from chatflow.views import ContactRead, contact_view

router = APIRouter(
    route_class=CompiledRoute, prefix="/v1/contacts", tags=["contacts"], responses=PROBLEM_RESPONSES
)


def _fields(body: schemas.ContactCreate) -> contacts.ContactFields:
    given = {name: getattr(body, name) for name in body.model_fields_set}
    if given.get("custom_attributes") is None and "custom_attributes" in given:
        given["custom_attributes"] = {}
    if given.get("opted_in") is None and "opted_in" in given:
        given["opted_in"] = False
    return contacts.ContactFields(**given)


@router.post("", status_code=201, response_model=ContactRead)
async def create_contact(
    body: schemas.ContactCreate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Create a contact. A phone number already used by another contact is a 409."""
    fields = _fields(body)
    return await write(
        request,
        db,
        actor,
        lambda tx: contacts.do_create_contact(tx, actor, fields),
        lambda contact: (201, contact_view(contact)),
    )


@router.get("")
async def list_contacts(
    actor: CurrentActor,
    db: Db,
    phone: Annotated[
        str | None, Query(max_length=40, description="Look a contact up by phone number.")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Response:
    """Newest first; with `phone`, the contact that has that number (in any format)."""
    page = await db.read(
        lambda tx: contacts.list_contacts(tx, actor, cursor=cursor, limit=limit, phone=phone)
    )
    return page_response(page, contact_view)


@router.get("/{contact_id}", response_model=ContactRead)
async def get_contact(contact_id: str, actor: CurrentActor, db: Db) -> Response:
    return json_response(
        contact_view(await db.read(lambda tx: contacts.access_contact(tx, actor, contact_id)))
    )


@router.patch("/{contact_id}", response_model=ContactRead)
async def update_contact(
    contact_id: str, body: schemas.ContactUpdate, request: Request, actor: CurrentActor, db: Db
) -> Response:
    """Change the fields sent. Setting `opted_in` records the opt-in time (R4)."""
    fields = _fields(body)
    return await write(
        request,
        db,
        actor,
        lambda tx: contacts.do_update_contact(tx, actor, contact_id, fields),
        lambda contact: (200, contact_view(contact)),
    )
