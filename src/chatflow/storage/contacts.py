"""Contacts: one per phone number per organization."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatflow.domain.models import Contact, ContactId, OrganizationId
from chatflow.storage import json
from chatflow.storage.database import Tx
from chatflow.storage.sql import Query, insert_row, param
from chatflow.storage.tables import contacts


def _contact(row: Any) -> Contact:
    return Contact(
        id=ContactId(row.id),
        org_id=OrganizationId(row.org_id),
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        external_id=row.external_id,
        custom_attributes=json.loads(row.custom_attributes),
        opted_in=bool(row.opted_in),
        opted_in_at=row.opted_in_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _values(contact: Contact) -> dict[str, Any]:
    return {
        "phone": contact.phone,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "external_id": contact.external_id,
        "custom_attributes": json.dumps(contact.custom_attributes),
        "opted_in": contact.opted_in,
        "opted_in_at": contact.opted_in_at,
        "updated_at": contact.updated_at,
    }


_INSERT = insert_row(contacts)


def insert_contact(tx: Tx, contact: Contact) -> None:
    # A hot path too: every new customer's first WhatsApp or web-chat message makes one.
    tx.run(
        _INSERT,
        {
            "id": contact.id,
            "org_id": contact.org_id,
            "created_at": contact.created_at,
            **_values(contact),
        },
    )


def update_contact(tx: Tx, contact: Contact) -> None:
    tx.execute(contacts.update().where(contacts.c.id == contact.id).values(**_values(contact)))


_GET = Query(
    sa.select(contacts).where(contacts.c.org_id == param("org_id"), contacts.c.id == param("id"))
)
_BY_PHONE = Query(
    sa.select(contacts).where(
        contacts.c.org_id == param("org_id"), contacts.c.phone == param("phone")
    )
)


def get_contact(tx: Tx, org_id: str, contact_id: str) -> Contact | None:
    row = tx.run(_GET, {"org_id": org_id, "id": contact_id}).first()
    return None if row is None else _contact(row)


def get_contact_by_phone(tx: Tx, org_id: str, phone: str) -> Contact | None:
    row = tx.run(_BY_PHONE, {"org_id": org_id, "phone": phone}).first()
    return None if row is None else _contact(row)


def list_contacts(
    tx: Tx, org_id: str, *, before: str | None, limit: int, phone: str | None = None
) -> list[Contact]:
    """Newest first."""
    query = sa.select(contacts).where(contacts.c.org_id == org_id)
    if phone is not None:
        query = query.where(contacts.c.phone == phone)
    if before is not None:
        query = query.where(contacts.c.id < before)
    rows = tx.execute(query.order_by(contacts.c.id.desc()).limit(limit + 1)).all()
    return [_contact(r) for r in rows]
