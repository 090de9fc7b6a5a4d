"""Defects found by fuzzing the API with schemathesis against its own OpenAPI document."""

from __future__ import annotations

from tests.factories import Org, call, expect_problem, snapshot

PHONE = "+14155552671"


def test_405_allow_header_lists_every_method_of_a_collection(org: Org) -> None:
    response = call(org.api, "PUT", "/v1/agents")

    expect_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


def test_405_allow_header_lists_every_method_of_an_item(org: Org) -> None:
    contact = org.contact()

    response = call(org.api, "DELETE", f"/v1/contacts/{contact['id']}")

    expect_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, PATCH"
    assert org.api.ok("GET", f"/v1/contacts/{contact['id']}")["id"] == contact["id"]


def test_nul_character_in_a_body_string_is_refused_on_every_database(org: Org) -> None:
    before = snapshot(org)

    response = call(org.api, "POST", "/v1/contacts", {"phone": PHONE, "first_name": "A\x00da"})

    body = expect_problem(response, 422, "validation_error")
    assert body["errors"][0]["pointer"] == "/first_name"
    assert snapshot(org) == before


def test_nul_character_in_a_login_is_refused_not_a_server_error(org: Org) -> None:
    response = org.client.post(
        "/v1/auth/login", json={"email": "admin\x00@example.com", "password": "x"}
    )

    expect_problem(response, 422, "validation_error")


def test_nul_character_in_a_path_id_is_refused_not_a_server_error(org: Org) -> None:
    expect_problem(call(org.api, "GET", "/v1/contacts/ct_%00"), 422, "validation_error")


def test_nul_character_in_a_query_is_refused_not_a_server_error(org: Org) -> None:
    response = call(org.api, "GET", "/v1/events", params={"chatroom_id": "cr_\x00"})

    expect_problem(response, 422, "validation_error")


def test_custom_attribute_integer_past_64_bits_is_refused_not_a_server_error(org: Org) -> None:
    before = snapshot(org)

    response = call(
        org.api, "POST", "/v1/contacts", {"phone": PHONE, "custom_attributes": {"n": 10**30}}
    )

    body = expect_problem(response, 422, "validation_error")
    assert body["errors"][0]["pointer"] == "/custom_attributes"
    assert snapshot(org) == before


def test_custom_attribute_float_past_its_range_is_refused_not_stored_as_null(org: Org) -> None:
    before = snapshot(org)

    response = org.client.post(
        "/v1/contacts",
        content=b'{"phone": "' + PHONE.encode() + b'", "custom_attributes": {"n": 1e400}}',
        headers={"Authorization": f"Bearer {org.api.token}", "Content-Type": "application/json"},
    )

    expect_problem(response, 422, "validation_error")
    assert snapshot(org) == before
