"""Contacts: E.164 phones, one contact per phone per organization, lookup, PATCH, opt-in, events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.factories import Org, call, expect_problem, make_org, snapshot

from chatflow.clock import ManualClock, iso, to_millis


def _create(org: Org, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = org.api.ok("POST", "/v1/contacts", fields, status=201)
    return created


def _contacts(org: Org, **params: Any) -> list[dict[str, Any]]:
    contacts: list[dict[str, Any]] = org.api.ok("GET", "/v1/contacts", params=params)["data"]
    return contacts


def _now(clock: ManualClock) -> str:
    return iso(to_millis(clock.now()))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+1 (415) 555-2671", "+14155552671"),
        ("14155552671", "+14155552671"),  # WhatsApp's wa_id: digits, no plus
        ("+44 20 7946 0958", "+442079460958"),
        ("  +1-415-555-2671 ", "+14155552671"),
    ],
)
def test_phone_is_stored_in_e164(org: Org, given: str, stored: str) -> None:
    contact = _create(org, phone=given)

    assert contact["phone"] == stored
    assert org.api.ok("GET", f"/v1/contacts/{contact['id']}")["phone"] == stored


@pytest.mark.parametrize("phone", ["abc", "+1 555", "+999123", "415-555-2671x", "+"])
def test_invalid_phone_is_422_invalid_phone_and_stores_nothing(org: Org, phone: str) -> None:
    response = call(org.api, "POST", "/v1/contacts", {"phone": phone, "first_name": "Ada"})

    problem = expect_problem(response, 422, "invalid_phone")
    assert problem["errors"][0]["pointer"] == "/phone"
    assert _contacts(org) == []
    assert org.events() == []


def test_second_contact_with_the_same_phone_in_another_format_is_409_naming_the_first(
    org: Org,
) -> None:
    first = _create(org, phone="+14155552671", first_name="Ada")
    before = snapshot(org)

    response = call(org.api, "POST", "/v1/contacts", {"phone": "1 (415) 555-2671"})

    problem = expect_problem(response, 409, "contact_phone_taken")
    assert problem["contact_id"] == first["id"]
    assert first["id"] in problem["detail"]
    assert snapshot(org) == before


def test_the_same_phone_in_another_organization_is_fine(org: Org) -> None:
    other = make_org(org.client, org.database)
    mine = _create(org, phone="+14155552671")

    theirs = _create(other, phone="+1 415 555 2671")

    assert theirs["phone"] == mine["phone"]
    assert theirs["id"] != mine["id"]


@pytest.mark.parametrize("query", ["+14155552671", "14155552671", "+1 (415) 555-2671"])
def test_lookup_by_phone_finds_the_contact_in_any_format(org: Org, query: str) -> None:
    contact = _create(org, phone="+1 415-555-2671")
    _create(org, phone="+14155552672")

    assert [c["id"] for c in _contacts(org, phone=query)] == [contact["id"]]


def test_lookup_by_an_unused_phone_finds_nothing(org: Org) -> None:
    _create(org, phone="+14155552671")

    assert _contacts(org, phone="+14155552699") == []


def test_lookup_by_an_invalid_phone_is_422(org: Org) -> None:
    response = call(org.api, "GET", "/v1/contacts", params={"phone": "abc"})

    problem = expect_problem(response, 422, "invalid_phone")
    assert problem["errors"][0]["pointer"] == "phone"


def test_patch_changes_only_the_fields_sent(org: Org, clock: ManualClock) -> None:
    contact = _create(
        org,
        phone="+14155552671",
        first_name="Ada",
        last_name="King",
        email="ada@example.com",
        external_id="crm-1",
        custom_attributes={"tier": "gold"},
        opted_in=True,
    )
    clock.advance(timedelta(minutes=1))

    patched = org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"last_name": "Lovelace"})

    expected = {**contact, "last_name": "Lovelace", "display_name": patched["display_name"]}
    assert patched == {**expected, "updated_at": _now(clock)}
    assert patched["display_name"] == "Ada Lovelace"
    assert org.api.ok("GET", f"/v1/contacts/{contact['id']}") == patched


def test_patch_merges_custom_attributes_and_null_removes_a_key(org: Org) -> None:
    contact = _create(org, custom_attributes={"tier": "gold", "city": "London", "score": 3})

    patched = org.api.ok(
        "PATCH",
        f"/v1/contacts/{contact['id']}",
        {"custom_attributes": {"city": None, "score": 4, "vip": True}},
    )

    assert patched["custom_attributes"] == {"tier": "gold", "score": 4, "vip": True}


def test_patch_to_a_phone_another_contact_has_is_409(org: Org) -> None:
    taken = _create(org, phone="+14155552671")
    contact = _create(org, phone="+14155552672")
    before = snapshot(org)

    response = call(org.api, "PATCH", f"/v1/contacts/{contact['id']}", {"phone": "14155552671"})

    problem = expect_problem(response, 409, "contact_phone_taken")
    assert problem["contact_id"] == taken["id"]
    assert snapshot(org) == before


def test_patch_to_its_own_phone_in_another_format_is_fine(org: Org) -> None:
    contact = _create(org, phone="+14155552671")

    patched = org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"phone": "1 415 555 2671"})

    assert patched["phone"] == "+14155552671"


def test_patch_with_an_invalid_phone_is_422_and_changes_nothing(org: Org) -> None:
    contact = _create(org, phone="+14155552671")
    before = snapshot(org)

    response = call(org.api, "PATCH", f"/v1/contacts/{contact['id']}", {"phone": "+1 555"})

    expect_problem(response, 422, "invalid_phone")
    assert snapshot(org) == before


def test_opting_in_records_when_and_opting_out_clears_it_r4(org: Org, clock: ManualClock) -> None:
    contact = _create(org, phone="+14155552671", opted_in=False)
    assert (contact["opted_in"], contact["opted_in_at"]) == (False, None)
    clock.advance(timedelta(minutes=5))

    opted_in = org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"opted_in": True})
    assert (opted_in["opted_in"], opted_in["opted_in_at"]) == (True, _now(clock))
    clock.advance(timedelta(minutes=5))

    opted_out = org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"opted_in": False})
    assert (opted_out["opted_in"], opted_out["opted_in_at"]) == (False, None)


def test_opting_in_again_keeps_the_first_opt_in_time(org: Org, clock: ManualClock) -> None:
    contact = _create(org, opted_in=True)
    clock.advance(timedelta(minutes=5))

    again = org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"opted_in": True})

    assert again["opted_in_at"] == contact["opted_in_at"]


def test_contact_created_opted_in_records_the_time(org: Org, clock: ManualClock) -> None:
    contact = _create(org, phone="+14155552671", opted_in=True)

    assert contact["opted_in_at"] == _now(clock)


def test_contacts_without_phone_are_allowed_for_web_chat_visitors(org: Org) -> None:
    first = _create(org, first_name="Visitor")
    second = _create(org, first_name="Another visitor")

    assert first["phone"] is None
    assert second["phone"] is None
    assert {c["id"] for c in _contacts(org)} == {first["id"], second["id"]}


def test_contact_created_event_is_recorded(org: Org) -> None:
    contact = _create(org, phone="+14155552671", first_name="Ada")

    events = org.events(type="contact.created")

    assert [e["data"]["contact"] for e in events] == [contact]
    assert events[0]["chatroom_id"] is None


def test_contact_updated_event_names_what_changed(org: Org) -> None:
    contact = _create(org, phone="+14155552671", first_name="Ada")

    patched = org.api.ok(
        "PATCH", f"/v1/contacts/{contact['id']}", {"first_name": "Grace", "opted_in": True}
    )

    events = org.events(type="contact.updated")
    assert [e["data"]["contact"] for e in events] == [patched]
    assert events[0]["data"]["changed"] == ["first_name", "opted_in", "opted_in_at"]


def test_patch_that_changes_nothing_records_no_event(org: Org) -> None:
    contact = _create(org, phone="+14155552671", first_name="Ada")

    same = org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"first_name": "Ada"})

    assert same == contact
    assert org.events(type="contact.updated") == []
