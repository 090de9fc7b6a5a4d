"""Authentication (API keys, agent sessions) and who may do what (SPEC "Who may do what")."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from tests.factories import PASSWORD, Api, Org, call, expect_problem, quick_agent, snapshot

from chatflow.clock import ManualClock, iso, to_millis
from chatflow.ids import new_id
from chatflow.storage.tables import api_keys

SESSION_COOKIE = "chatflow_session"


def _anonymous(
    org: Org, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A request with no credential at all: the shared client's cookie jar is emptied first."""
    org.client.cookies.clear()
    return org.client.request(method, path, headers=headers or {})


def _unauthenticated(response: httpx.Response) -> dict[str, Any]:
    problem = expect_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    return problem


def _login(org: Org, email: str, password: str = PASSWORD) -> httpx.Response:
    """Log in; the cookie it sets is not kept, so later requests only speak as they say."""
    org.client.cookies.clear()
    response = org.client.post("/v1/auth/login", json={"email": email, "password": password})
    org.client.cookies.clear()
    return response


def _new_key(org: Org, name: str = "CRM") -> dict[str, Any]:
    created: dict[str, Any] = org.api.ok("POST", "/v1/api-keys", {"name": name}, status=201)
    return created


# -- authentication ---------------------------------------------------------------------------


def test_request_without_any_token_is_401_with_bearer_challenge(org: Org) -> None:
    _unauthenticated(_anonymous(org, "GET", "/v1/contacts"))


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer   ",
        "Token cfk_x",
        "cfk_x",
        "Bearer not-a-chatflow-token",
    ],
)
def test_malformed_authorization_header_is_401_unauthenticated(org: Org, header: str) -> None:
    _unauthenticated(_anonymous(org, "GET", "/v1/contacts", {"Authorization": header}))


def test_valid_key_in_another_scheme_than_bearer_is_refused(org: Org) -> None:
    response = _anonymous(org, "GET", "/v1/contacts", {"Authorization": f"Basic {org.api.token}"})
    _unauthenticated(response)


@pytest.mark.parametrize("prefix", ["cfk_", "cfs_"])
def test_unknown_api_key_or_session_token_is_401_unauthenticated(org: Org, prefix: str) -> None:
    token = prefix + uuid.uuid4().hex + uuid.uuid4().hex
    _unauthenticated(call(Api(org.client, token), "GET", "/v1/contacts"))


def test_revoked_api_key_stops_working_at_once(org: Org) -> None:
    created = _new_key(org)
    key = Api(org.client, created["key"])
    assert call(key, "GET", "/v1/contacts").status_code == 200

    revoked = org.api.ok("DELETE", f"/v1/api-keys/{created['id']}")

    assert revoked["revoked_at"] is not None
    _unauthenticated(call(key, "GET", "/v1/contacts"))
    assert call(org.api, "GET", "/v1/contacts").status_code == 200  # other keys keep working


def test_login_returns_a_session_token_usable_as_bearer(org: Org) -> None:
    response = _login(org, org.admin_email)

    assert response.status_code == 200, response.text
    session = response.json()
    assert session["token"].startswith("cfs_")
    assert session["agent"]["id"] == org.admin_id
    me = Api(org.client, session["token"]).ok("GET", "/v1/me")
    assert me["kind"] == "agent"
    assert me["agent"]["id"] == org.admin_id


def test_login_sets_an_http_only_session_cookie_usable_without_header(org: Org) -> None:
    response = _login(org, org.admin_email)

    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={response.json()['token']};")
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    org.client.cookies.clear()
    org.client.cookies.set(SESSION_COOKIE, response.json()["token"])
    try:
        by_cookie = org.client.get("/v1/me")
    finally:
        org.client.cookies.clear()
    assert by_cookie.status_code == 200, by_cookie.text
    assert by_cookie.json()["agent"]["id"] == org.admin_id


def test_wrong_password_and_unknown_email_get_the_same_401_invalid_credentials(org: Org) -> None:
    wrong_password = _login(org, org.admin_email, "not the password")
    unknown_email = _login(org, f"nobody-{uuid.uuid4().hex[:8]}@example.com")

    expect_problem(wrong_password, 401, "invalid_credentials")
    expect_problem(unknown_email, 401, "invalid_credentials")
    assert wrong_password.content == unknown_email.content
    assert "set-cookie" not in wrong_password.headers


def test_login_email_is_case_insensitive(org: Org) -> None:
    response = _login(org, org.admin_email.upper())
    assert response.status_code == 200, response.text


def test_logout_ends_the_session(org: Org) -> None:
    session = org.login(org.admin_email)
    other_session = org.login(org.admin_email)

    response = call(session, "POST", "/v1/auth/logout")

    assert response.status_code == 204
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    _unauthenticated(call(session, "GET", "/v1/me"))
    assert call(other_session, "GET", "/v1/me").status_code == 200  # only that session ended


def test_deactivated_agent_cannot_log_in(org: Org) -> None:
    agent, _ = quick_agent(org)
    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"active": False})

    expect_problem(_login(org, agent["email"]), 401, "invalid_credentials")


def test_deactivating_an_agent_ends_its_open_sessions(org: Org) -> None:
    agent, session = quick_agent(org)
    assert call(session, "GET", "/v1/me").status_code == 200

    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"active": False})

    _unauthenticated(call(session, "GET", "/v1/me"))


def test_reactivated_agent_does_not_get_its_old_sessions_back(org: Org) -> None:
    agent, session = quick_agent(org)
    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"active": False})
    org.api.ok("PATCH", f"/v1/agents/{agent['id']}", {"active": True})

    _unauthenticated(call(session, "GET", "/v1/me"))
    assert _login(org, agent["email"]).status_code == 200


def test_me_for_an_api_key_names_the_key_and_organization(org: Org) -> None:
    keys = org.api.ok("GET", "/v1/api-keys")["data"]

    me = org.api.ok("GET", "/v1/me")

    assert me["kind"] == "api_key"
    assert me["api_key_id"] == keys[0]["id"]
    assert me["organization"]["id"] == org.id
    assert "agent" not in me


def test_me_for_an_agent_session_names_the_agent_and_role(org: Org) -> None:
    agent, session = quick_agent(org, name="Grace")

    me = session.ok("GET", "/v1/me")

    assert me["kind"] == "agent"
    assert me["organization"]["id"] == org.id
    assert me["agent"] == agent
    assert me["agent"]["role"] == "agent"
    assert "api_key_id" not in me


# -- API keys ---------------------------------------------------------------------------------


def test_created_api_key_shows_its_secret_once_with_its_prefix(org: Org) -> None:
    created = _new_key(org, "CRM integration")

    assert created["id"].startswith("key_")
    assert created["name"] == "CRM integration"
    assert created["key"].startswith("cfk_")
    assert created["key"].startswith(created["prefix"])
    assert len(created["prefix"]) < len(created["key"]) // 2
    assert created["last_used_at"] is None
    assert created["revoked_at"] is None


def test_api_key_list_never_shows_the_secret(org: Org) -> None:
    created = _new_key(org)

    response = call(org.api, "GET", "/v1/api-keys")

    assert response.status_code == 200
    listed = {key["id"]: key for key in response.json()["data"]}
    assert "key" not in listed[created["id"]]
    assert listed[created["id"]]["prefix"] == created["prefix"]
    assert created["key"] not in response.text
    assert org.api.token not in response.text


def test_api_key_records_when_it_was_last_used(org: Org, clock: ManualClock) -> None:
    created = _new_key(org)

    assert call(Api(org.client, created["key"]), "GET", "/v1/contacts").status_code == 200

    listed = {key["id"]: key for key in org.api.ok("GET", "/v1/api-keys")["data"]}
    assert listed[created["id"]]["last_used_at"] == iso(to_millis(clock.now()))


def test_api_keys_are_stored_only_as_a_hash(org: Org) -> None:
    created = _new_key(org)

    row = org.database.read_sync(
        lambda tx: tx.execute(sa.select(api_keys).where(api_keys.c.id == created["id"])).one()
    )

    secret = created["key"]
    assert row.prefix == created["prefix"]
    for value in row:
        assert secret not in str(value)
        assert secret[len(created["prefix"]) :] not in str(value)


def test_revoking_an_unknown_api_key_is_404(org: Org) -> None:
    expect_problem(call(org.api, "DELETE", f"/v1/api-keys/{new_id('key')}"), 404, "not_found")


# -- who may do what --------------------------------------------------------------------------


def _template_body() -> dict[str, Any]:
    return {
        "name": f"t_{uuid.uuid4().hex[:8]}",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hello"}],
    }


ADMIN_ONLY: list[tuple[str, str, Any]] = [
    (
        "POST",
        "/v1/agents",
        {"email": "new@example.com", "name": "New", "role": "admin", "password": PASSWORD},
    ),
    ("PATCH", "/v1/agents/{agent}", {"role": "admin"}),
    ("POST", "/v1/api-keys", {"name": "Mine"}),
    ("GET", "/v1/api-keys", None),
    ("DELETE", "/v1/api-keys/{key}", None),
    ("POST", "/v1/channels", {"type": "sandbox", "name": "Mine"}),
    ("PATCH", "/v1/channels/{channel}", {"name": "Mine"}),
    ("POST", "/v1/templates", "template"),
    ("PATCH", "/v1/templates/{template}", {"category": "MARKETING"}),
    ("POST", "/v1/templates/{template}/approve", None),
    ("POST", "/v1/templates/{template}/reject", None),
    ("GET", "/v1/events", None),
    ("PATCH", "/v1/organization", {"name": "Taken over"}),
    ("POST", "/v1/sandbox/inbound", {"chatroom_id": "{chatroom}", "text": "hi"}),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body"), ADMIN_ONLY, ids=[f"{m} {p}" for m, p, _ in ADMIN_ONLY]
)
def test_agent_role_is_forbidden_admin_capabilities(
    org: Org, method: str, path: str, body: Any
) -> None:
    agent, session = quick_agent(org)
    chatroom = org.chatroom(participants=[agent["id"]])
    pending = org.api.ok("POST", "/v1/templates", _template_body(), status=201)
    keys = org.api.ok("GET", "/v1/api-keys")["data"]
    ids = {
        "agent": agent["id"],
        "key": keys[0]["id"],
        "channel": org.channel_id,
        "template": pending["id"],
        "chatroom": chatroom["id"],
    }
    before = snapshot(org)

    response = call(
        session,
        method,
        _fill(path, ids),
        _template_body() if body == "template" else _fill(body, ids),
    )

    expect_problem(response, 403, "forbidden")
    assert snapshot(org) == before
    assert org.api.ok("GET", "/v1/api-keys")["data"] == keys


def test_agent_listing_chatrooms_without_agent_id_gets_its_own_list(org: Org) -> None:
    agent, session = quick_agent(org)
    older = org.chatroom(participants=[agent["id"]])
    org.chatroom(participants=[org.admin_id])  # not the agent's
    newer = org.chatroom(participants=[agent["id"], org.admin_id])

    page = session.ok("GET", "/v1/chatrooms")

    assert [room["id"] for room in page["data"]] == [newer["id"], older["id"]]
    assert all("agent_bump_key" in room for room in page["data"])


def test_agent_cannot_read_another_agents_list(org: Org) -> None:
    _, session = quick_agent(org)
    other, _ = quick_agent(org)
    org.chatroom(participants=[other["id"]])

    response = call(session, "GET", "/v1/chatrooms", params={"agent_id": other["id"]})

    expect_problem(response, 403, "forbidden")


NOT_THEIRS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/chatrooms/{chatroom}", None),
    ("GET", "/v1/chatrooms/{chatroom}/messages", None),
    ("GET", "/v1/chatrooms/{chatroom}/messages/{message}", None),
    ("POST", "/v1/chatrooms/{chatroom}/messages", {"text": "Sneaky"}),
    (
        "POST",
        "/v1/chatrooms/{chatroom}/template-messages",
        {"template": "{template}", "language": "en_US", "variables": {"body": ["Ada", "#1"]}},
    ),
    ("POST", "/v1/chatrooms/{chatroom}/read", None),
    ("POST", "/v1/chatrooms/{chatroom}/close", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), NOT_THEIRS, ids=[f"{m} {p}" for m, p, _ in NOT_THEIRS]
)
def test_agent_gets_404_on_chatrooms_it_does_not_participate_in(
    org: Org, method: str, path: str, body: Any
) -> None:
    _, session = quick_agent(org)
    template = org.template()
    chatroom = org.chatroom(participants=[org.admin_id])
    message = org.customer_says(chatroom["id"], "Hi there")
    before = snapshot(org)
    real = {"chatroom": chatroom["id"], "message": message["id"], "template": template["name"]}
    fake = {"chatroom": new_id("cr"), "message": new_id("msg"), "template": template["name"]}

    hidden = call(session, method, _fill(path, real), _fill(body, real))
    missing = call(session, method, _fill(path, fake), _fill(body, fake))

    expect_problem(hidden, 404, "not_found")
    expect_problem(missing, 404, "not_found")
    assert hidden.text.replace(chatroom["id"], "?").replace(message["id"], "?") == (
        missing.text.replace(fake["chatroom"], "?").replace(fake["message"], "?")
    )
    assert snapshot(org) == before


def test_pending_agent_does_not_see_the_chatroom_before_handover_r8(org: Org) -> None:
    agent, session = quick_agent(org)
    chatroom = org.chatroom(participants=[agent["id"]], assign_on_handover=True)

    expect_problem(call(session, "GET", f"/v1/chatrooms/{chatroom['id']}"), 404, "not_found")
    assert session.ok("GET", "/v1/chatrooms")["data"] == []


def test_admin_session_sees_every_chatroom_of_the_organization(org: Org) -> None:
    agent, _ = quick_agent(org)
    admin = org.login(org.admin_email)
    chatroom = org.chatroom(participants=[agent["id"]])
    message = org.customer_says(chatroom["id"], "Hi")

    assert admin.ok("GET", f"/v1/chatrooms/{chatroom['id']}")["id"] == chatroom["id"]
    messages = admin.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages")["data"]
    assert [m["id"] for m in messages] == [message["id"]]
    everything = admin.ok("GET", "/v1/chatrooms")["data"]
    assert [room["id"] for room in everything] == [chatroom["id"]]


def test_agent_can_send_into_its_own_chatroom(org: Org) -> None:
    agent, session = quick_agent(org)
    chatroom = org.chatroom(participants=[agent["id"]])
    org.customer_says(chatroom["id"], "Hello?")

    sent = session.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "Hi!"}, status=201
    )

    assert sent["sender"] == {"type": "agent", "id": agent["id"]}
    listed = session.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages")["data"]
    assert listed[0]["id"] == sent["id"]


@pytest.mark.parametrize("change", [{"active": False}, {"role": "agent"}])
def test_admin_cannot_deactivate_or_demote_itself(org: Org, change: dict[str, Any]) -> None:
    admin = org.login(org.admin_email)

    response = call(admin, "PATCH", f"/v1/agents/{org.admin_id}", change)

    expect_problem(response, 409, "conflict")
    me = admin.ok("GET", "/v1/me")["agent"]
    assert (me["role"], me["active"]) == ("admin", True)
