"""Agents: created and managed by admins; emails are unique in any case; passwords are strong."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.factories import PASSWORD, Org, call, expect_problem, quick_agent, snapshot


def _email() -> str:
    return f"agent-{uuid.uuid4().hex[:12]}@example.com"


def _body(**fields: Any) -> dict[str, Any]:
    return {"email": _email(), "name": "Grace Hopper", "password": PASSWORD, **fields}


def _login(org: Org, email: str, password: str = PASSWORD) -> int:
    org.client.cookies.clear()
    response = org.client.post("/v1/auth/login", json={"email": email, "password": password})
    org.client.cookies.clear()
    return response.status_code


def test_admin_creates_an_agent(org: Org) -> None:
    body = _body(role="agent")

    agent = org.api.ok("POST", "/v1/agents", body, status=201)

    assert agent["id"].startswith("ag_")
    assert (agent["email"], agent["name"], agent["role"], agent["active"]) == (
        body["email"],
        "Grace Hopper",
        "agent",
        True,
    )
    assert "password" not in agent
    assert "password_hash" not in agent
    assert _login(org, body["email"]) == 200


def test_agent_role_is_the_default(org: Org) -> None:
    body = _body()

    agent = org.api.ok("POST", "/v1/agents", body, status=201)

    assert agent["role"] == "agent"


def test_admin_session_can_create_agents(org: Org) -> None:
    admin = org.login(org.admin_email)

    agent = admin.ok("POST", "/v1/agents", _body(role="admin"), status=201)

    assert agent["role"] == "admin"


def test_agent_email_is_stored_lowercase(org: Org) -> None:
    email = _email()

    agent = org.api.ok("POST", "/v1/agents", _body(email=email.upper()), status=201)

    assert agent["email"] == email


@pytest.mark.parametrize("transform", [str.lower, str.upper, str.title])
def test_duplicate_email_in_any_case_is_409_agent_email_taken(org: Org, transform: Any) -> None:
    email = _email()
    org.api.ok("POST", "/v1/agents", _body(email=email), status=201)
    before = snapshot(org)

    response = call(org.api, "POST", "/v1/agents", _body(email=transform(email)))

    expect_problem(response, 409, "agent_email_taken")
    assert snapshot(org) == before


@pytest.mark.parametrize("password", ["", "short", "1234567"])
def test_password_shorter_than_8_characters_is_422(org: Org, password: str) -> None:
    before = snapshot(org)

    response = call(org.api, "POST", "/v1/agents", _body(password=password))

    problem = expect_problem(response, 422, "validation_error")
    assert [e["pointer"] for e in problem["errors"]] == ["/password"]
    assert snapshot(org) == before


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "@example.com", "a b@example.com"])
def test_invalid_email_is_422(org: Org, email: str) -> None:
    response = call(org.api, "POST", "/v1/agents", _body(email=email))

    problem = expect_problem(response, 422, "validation_error")
    assert problem["errors"][0]["pointer"] == "/email"


def test_unknown_role_is_422(org: Org) -> None:
    response = call(org.api, "POST", "/v1/agents", _body(role="owner"))

    expect_problem(response, 422, "validation_error")


def test_list_and_get_agents(org: Org) -> None:
    first, _ = quick_agent(org, name="First")
    second, _ = quick_agent(org, name="Second")

    listed = org.api.ok("GET", "/v1/agents")["data"]

    assert [a["id"] for a in listed] == [org.admin_id, first["id"], second["id"]]
    assert listed[1] == first
    assert org.api.ok("GET", f"/v1/agents/{second['id']}") == second


def test_agents_list_is_paged(org: Org) -> None:
    made = [quick_agent(org)[0]["id"] for _ in range(3)]

    first = org.api.ok("GET", "/v1/agents", params={"limit": 2})
    rest = org.api.ok("GET", "/v1/agents", params={"limit": 2, "cursor": first["next_cursor"]})

    seen = [a["id"] for a in first["data"] + rest["data"]]
    assert seen == [org.admin_id, *made]
    assert rest["next_cursor"] is None


def test_patch_changes_name_and_role(org: Org) -> None:
    agent, _ = quick_agent(org)

    patched = org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"name": "Ada", "role": "admin"})

    assert patched == {**agent, "name": "Ada", "role": "admin"}
    assert org.api.ok("GET", f"/v1/agents/{agent['id']}") == patched


def test_promoted_agent_gets_admin_rights_in_its_open_session(org: Org) -> None:
    agent, session = quick_agent(org)
    expect_problem(call(session, "GET", "/v1/events"), 403, "forbidden")

    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"role": "admin"})

    assert call(session, "GET", "/v1/events").status_code == 200


def test_demoted_admin_loses_admin_rights_in_its_open_session(org: Org) -> None:
    agent, session = quick_agent(org, role="admin")
    assert call(session, "GET", "/v1/events").status_code == 200

    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"role": "agent"})

    expect_problem(call(session, "GET", "/v1/events"), 403, "forbidden")


def test_patch_deactivates_and_reactivates(org: Org) -> None:
    agent, _ = quick_agent(org)

    off = org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"active": False})
    assert off["active"] is False
    assert _login(org, agent["email"]) == 401

    on = org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"active": True})
    assert on["active"] is True
    assert _login(org, agent["email"]) == 200


def test_patch_password_ends_sessions_and_the_new_password_works(org: Org) -> None:
    agent, session = quick_agent(org)

    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"password": "a much newer passphrase"})

    assert call(session, "GET", "/v1/me").status_code == 401
    assert _login(org, agent["email"]) == 401
    assert _login(org, agent["email"], "a much newer passphrase") == 200


def test_patch_with_a_short_password_is_422(org: Org) -> None:
    agent, session = quick_agent(org)

    response = call(org.api, "PATCH", f"/v1/agents/{agent['id']}", {"password": "short"})

    expect_problem(response, 422, "validation_error")
    assert call(session, "GET", "/v1/me").status_code == 200


def test_patch_email_is_refused(org: Org) -> None:
    agent, _ = quick_agent(org)

    response = call(org.api, "PATCH", f"/v1/agents/{agent['id']}", {"email": _email()})

    expect_problem(response, 422, "validation_error")


def test_agent_can_read_the_agents_of_its_organization(org: Org) -> None:
    agent, session = quick_agent(org)

    listed = session.ok("GET", "/v1/agents")["data"]

    assert [a["id"] for a in listed] == [org.admin_id, agent["id"]]


def test_get_unknown_agent_is_404(org: Org) -> None:
    expect_problem(call(org.api, "GET", "/v1/agents/ag_unknown"), 404, "not_found")


def test_deactivated_agent_cannot_be_made_a_participant(org: Org) -> None:
    agent, _ = quick_agent(org)
    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"active": False})
    contact = org.contact()

    response = call(
        org.api,
        "POST",
        "/v1/chatrooms",
        {"contact_id": contact["id"], "channel_id": org.channel_id, "participants": [agent["id"]]},
    )

    problem = expect_problem(response, 409, "agent_inactive")
    assert problem["agent_id"] == agent["id"]
