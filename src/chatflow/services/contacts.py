"""Contacts: create, update, look up by phone (one contact per phone per organization)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chatflow.domain.access import Actor
from chatflow.domain.errors import NotFoundError, PhoneTakenError
from chatflow.domain.models import Contact, ContactId, OrganizationId
from chatflow.domain.paging import Page, decode_cursor, page_of
from chatflow.events import outbox
from chatflow.events.types import EventType
from chatflow.ids import new_id
from chatflow.services.phones import normalise_phone
from chatflow.storage import contacts as store
from chatflow.storage.database import Tx
from chatflow.views import contact_view

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class ContactFields:
    """Fields given by the caller; `_UNSET` ones are left as they are on update."""

    phone: str | None = _UNSET
    first_name: str | None = _UNSET
    last_name: str | None = _UNSET
    email: str | None = _UNSET
    external_id: str | None = _UNSET
    custom_attributes: dict[str, Any] = _UNSET
    opted_in: bool = _UNSET

    def given(self, name: str) -> bool:
        return getattr(self, name) is not _UNSET


def access_contact(tx: Tx, actor: Actor, contact_id: str) -> Contact:
    contact = store.get_contact(tx, actor.org_id, contact_id)
    if contact is None:
        raise NotFoundError(f"No contact {contact_id}")
    return contact


def _check_phone_free(tx: Tx, actor: Actor, phone: str, own_id: str | None) -> None:
    existing = store.get_contact_by_phone(tx, actor.org_id, phone)
    if existing is not None and existing.id != own_id:
        raise PhoneTakenError(
            f"Contact {existing.id} already has the phone number {phone}",
            contact_id=existing.id,
        )


def do_create_contact(tx: Tx, actor: Actor, fields: ContactFields) -> Contact:
    phone = normalise_phone(fields.phone) if fields.given("phone") and fields.phone else None
    if phone is not None:
        _check_phone_free(tx, actor, phone, None)
    return _insert_new(tx, actor.org_id, phone, fields)


def customer_by_phone(
    tx: Tx, org_id: OrganizationId, phone: str, *, first_name: str | None
) -> Contact:
    """The organization's contact with this phone, or a new one: a customer who writes first on
    a channel that knows their number (WhatsApp) becomes a contact, named as their profile is."""
    normalised = normalise_phone(phone)
    existing = store.get_contact_by_phone(tx, org_id, normalised)
    if existing is not None:
        return existing
    return _insert_new(tx, org_id, normalised, ContactFields(first_name=first_name))


def _insert_new(
    tx: Tx, org_id: OrganizationId, phone: str | None, fields: ContactFields
) -> Contact:
    opted_in = bool(fields.opted_in) if fields.given("opted_in") else False
    contact = Contact(
        id=ContactId(new_id("ct")),
        org_id=org_id,
        phone=phone,
        first_name=fields.first_name if fields.given("first_name") else None,
        last_name=fields.last_name if fields.given("last_name") else None,
        email=fields.email if fields.given("email") else None,
        external_id=fields.external_id if fields.given("external_id") else None,
        custom_attributes=fields.custom_attributes if fields.given("custom_attributes") else {},
        opted_in=opted_in,
        opted_in_at=tx.now if opted_in else None,
        created_at=tx.now,
        updated_at=tx.now,
    )
    store.insert_contact(tx, contact)
    outbox.record(tx, org_id, EventType.CONTACT_CREATED, {"contact": contact_view(contact)})
    return contact


def do_update_contact(tx: Tx, actor: Actor, contact_id: str, fields: ContactFields) -> Contact:
    contact = access_contact(tx, actor, contact_id)
    changes: dict[str, Any] = {}
    if fields.given("phone"):
        phone = normalise_phone(fields.phone) if fields.phone else None
        if phone is not None and phone != contact.phone:
            _check_phone_free(tx, actor, phone, contact.id)
        changes["phone"] = phone
    for name in ("first_name", "last_name", "email", "external_id"):
        if fields.given(name):
            changes[name] = getattr(fields, name)
    if fields.given("custom_attributes"):
        # A merge, as integrators expect of PATCH; a null value removes the attribute.
        merged = dict(contact.custom_attributes)
        for key, value in fields.custom_attributes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        changes["custom_attributes"] = merged
    if fields.given("opted_in") and bool(fields.opted_in) != contact.opted_in:
        changes["opted_in"] = bool(fields.opted_in)
        changes["opted_in_at"] = tx.now if fields.opted_in else None
    updated = replace(contact, **changes)
    if updated == contact:
        return contact
    updated = replace(updated, updated_at=tx.now)
    store.update_contact(tx, updated)
    outbox.record(
        tx,
        actor.org_id,
        EventType.CONTACT_UPDATED,
        {"contact": contact_view(updated), "changed": sorted(changes)},
    )
    return updated


def list_contacts(
    tx: Tx, actor: Actor, *, cursor: str | None, limit: int, phone: str | None
) -> Page[Contact]:
    before = str(decode_cursor("contacts", cursor, [str])[0]) if cursor else None
    normalised = normalise_phone(phone, "phone") if phone is not None else None
    rows = store.list_contacts(tx, actor.org_id, before=before, limit=limit, phone=normalised)
    return page_of(rows, limit, "contacts", lambda c: [c.id])
