"""Tenancy: nothing of one organization can be read, changed or referenced by another.

Org A (the `org` fixture) addresses every id of org B. Each attempt must answer 404 exactly as it
does for an id that exists nowhere (so it reveals nothing), and leave org B as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tests.factories import Api, Org, call, expect_problem, make_org, quick_agent, snapshot

from chatflow.ids import new_id


@dataclass(frozen=True)
class World:
    """One organization's ids, as a test addresses them."""

    contact: str
    chatroom: str
    message: str
    template: str
    channel: str
    agent: str
    api_key: str


@dataclass(frozen=True)
class Other:
    org: Org
    world: World
    key: Api  # the extra API key of org B, proved to keep working


def _other_org(org: Org) -> Other:
    other = make_org(org.client, org.database)
    contact = other.contact()
    chatroom = other.chatroom(contact=contact)
    message = other.customer_says(chatroom["id"], "Secret plans")
    template = other.template()
    other.send_template(chatroom["id"], template)
    agent, _ = quick_agent(other)
    key = other.api.ok("POST", "/v1/api-keys", {"name": "B's key"}, status=201)
    world = World(
        contact=contact["id"],
        chatroom=chatroom["id"],
        message=message["id"],
        template=template["id"],
        channel=other.channel_id,
        agent=agent["id"],
        api_key=key["id"],
    )
    return Other(other, world, Api(org.client, key["key"]))


def _made_up() -> World:
    """Ids of the same shape as real ones, that exist in no organization."""
    return World(
        contact=new_id("ct"),
        chatroom=new_id("cr"),
        message=new_id("msg"),
        template=new_id("tpl"),
        channel=new_id("ch"),
        agent=new_id("ag"),
        api_key=new_id("key"),
    )


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _masked(text: str, world: World) -> str:
    for name, value in vars(world).items():
        text = text.replace(value, f"<{name}>")
    return text


TEMPLATE_SEND = {"template": "greeting", "language": "en_US", "variables": {"body": ["Ada", "#1"]}}

# (method, path, body, query): `{name}` is an id of the other organization, `{own_*}` one of A's.
CASES: list[tuple[str, str, Any, dict[str, str] | None]] = [
    ("GET", "/v1/contacts/{contact}", None, None),
    ("PATCH", "/v1/contacts/{contact}", {"first_name": "Eve", "opted_in": False}, None),
    ("GET", "/v1/chatrooms/{chatroom}", None, None),
    ("GET", "/v1/chatrooms/{chatroom}/messages", None, None),
    ("GET", "/v1/chatrooms/{chatroom}/messages/{message}", None, None),
    ("GET", "/v1/chatrooms/{own_chatroom}/messages/{message}", None, None),
    ("POST", "/v1/chatrooms/{chatroom}/messages", {"text": "Injected"}, None),
    ("POST", "/v1/chatrooms/{chatroom}/template-messages", TEMPLATE_SEND, None),
    ("POST", "/v1/chatrooms/{chatroom}/reassign", {"agent_ids": []}, None),
    ("POST", "/v1/chatrooms/{chatroom}/read", {"agent_id": "{own_agent}"}, None),
    ("POST", "/v1/chatrooms/{chatroom}/close", None, None),
    ("POST", "/v1/chatrooms/{chatroom}/reopen", None, None),
    ("GET", "/v1/chatrooms", None, {"agent_id": "{agent}"}),
    ("GET", "/v1/templates/{template}", None, None),
    ("PATCH", "/v1/templates/{template}", {"category": "MARKETING"}, None),
    ("POST", "/v1/templates/{template}/approve", None, None),
    ("POST", "/v1/templates/{template}/reject", {"reason": "mine now"}, None),
    ("GET", "/v1/channels/{channel}", None, None),
    ("PATCH", "/v1/channels/{channel}", {"name": "Hijacked"}, None),
    ("GET", "/v1/agents/{agent}", None, None),
    ("PATCH", "/v1/agents/{agent}", {"name": "Hijacked", "active": False}, None),
    ("DELETE", "/v1/api-keys/{api_key}", None, None),
    (
        "POST",
        "/v1/chatrooms",
        {"contact_id": "{contact}", "channel_id": "{own_channel}", "participants": []},
        None,
    ),
    (
        "POST",
        "/v1/chatrooms",
        {"contact_id": "{own_contact}", "channel_id": "{channel}", "participants": []},
        None,
    ),
    (
        "POST",
        "/v1/chatrooms",
        {"contact_id": "{own_contact}", "channel_id": "{own_channel}", "participants": ["{agent}"]},
        None,
    ),
    ("POST", "/v1/chatrooms/{own_chatroom}/reassign", {"agent_ids": ["{agent}"]}, None),
    ("POST", "/v1/chatrooms/{own_chatroom}/read", {"agent_id": "{agent}"}, None),
    (
        "POST",
        "/v1/chatrooms/{own_chatroom}/messages",
        {"text": "As someone else", "as_agent_id": "{agent}"},
        None,
    ),
    (
        "POST",
        "/v1/chatrooms/{own_chatroom}/template-messages",
        {**TEMPLATE_SEND, "as_agent_id": "{agent}"},
        None,
    ),
    ("POST", "/v1/sandbox/inbound", {"chatroom_id": "{chatroom}", "text": "hi"}, None),
    (
        "POST",
        "/v1/sandbox/inbound",
        {"channel_id": "{channel}", "contact_id": "{own_contact}", "text": "hi"},
        None,
    ),
    (
        "POST",
        "/v1/sandbox/inbound",
        {"channel_id": "{own_channel}", "contact_id": "{contact}", "text": "hi"},
        None,
    ),
]


def _case_id(case: tuple[str, str, Any, dict[str, str] | None]) -> str:
    method, path, body, query = case
    refs = sorted(
        part.split("}")[0] for part in str((path, body, query)).split("{")[1:] if "}" in part
    )
    return f"{method} {path} " + ",".join(refs)


@pytest.mark.parametrize(("method", "path", "body", "query"), CASES, ids=map(_case_id, CASES))
def test_ids_of_another_organization_are_404_reveal_nothing_and_change_nothing(
    org: Org, method: str, path: str, body: Any, query: dict[str, str] | None
) -> None:
    other = _other_org(org)
    own_contact = org.contact()
    own_chatroom = org.chatroom(contact=org.contact())
    org.customer_says(own_chatroom["id"], "Hi")  # A's window is open: only the id can fail
    org.template(name="greeting")
    own = {
        "own_contact": own_contact["id"],
        "own_chatroom": own_chatroom["id"],
        "own_channel": org.channel_id,
        "own_agent": org.admin_id,
    }
    fake = _made_up()
    other_before = snapshot(other.org)
    own_before = snapshot(org)

    responses = []
    for world in (other.world, fake):
        ids = {**vars(world), **own}
        responses.append(
            call(
                org.api,
                method,
                _fill(path, ids),
                _fill(body, ids),
                params=_fill(query, ids),
            )
        )
    foreign, unknown = responses

    expect_problem(foreign, 404, "not_found")
    expect_problem(unknown, 404, "not_found")
    assert _masked(foreign.text, other.world) == _masked(unknown.text, fake)
    assert snapshot(other.org) == other_before
    assert snapshot(org) == own_before
    assert call(other.key, "GET", "/v1/me").status_code == 200


def test_lists_never_show_another_organizations_rows(org: Org) -> None:
    other = _other_org(org)
    own_chatroom = org.chatroom()
    org.customer_says(own_chatroom["id"])

    texts = [
        call(org.api, "GET", path, params={"limit": 100}).text
        for path in (
            "/v1/contacts",
            "/v1/chatrooms",
            "/v1/templates",
            "/v1/channels",
            "/v1/agents",
            "/v1/api-keys",
            "/v1/events",
        )
    ]

    for text in texts:
        for value in vars(other.world).values():
            assert value not in text
        assert other.org.id not in text


def test_events_filtered_by_another_organizations_chatroom_are_empty(org: Org) -> None:
    other = _other_org(org)

    page = org.api.ok("GET", "/v1/events", params={"chatroom_id": other.world.chatroom})

    assert page["data"] == []


def test_phone_lookup_does_not_find_another_organizations_contact(org: Org) -> None:
    other = _other_org(org)
    phone = other.org.api.ok("GET", f"/v1/contacts/{other.world.contact}")["phone"]

    page = org.api.ok("GET", "/v1/contacts", params={"phone": phone})

    assert page["data"] == []


def test_template_of_another_organization_cannot_be_sent(org: Org) -> None:
    other = _other_org(org)
    name = other.org.api.ok("GET", f"/v1/templates/{other.world.template}")["name"]
    chatroom = org.chatroom()
    before = snapshot(org)

    path = f"/v1/chatrooms/{chatroom['id']}/template-messages"
    foreign = call(org.api, "POST", path, {**TEMPLATE_SEND, "template": name})
    unknown = call(org.api, "POST", path, {**TEMPLATE_SEND, "template": "t_made_up_name"})

    expect_problem(foreign, 404, "template_not_found")
    expect_problem(unknown, 404, "template_not_found")
    assert foreign.text.replace(name, "?") == unknown.text.replace("t_made_up_name", "?")
    assert snapshot(org) == before


def test_an_agent_session_is_confined_to_its_organization(org: Org) -> None:
    other = _other_org(org)
    admin_of_a = org.login(org.admin_email)

    response = call(admin_of_a, "GET", f"/v1/chatrooms/{other.world.chatroom}")

    expect_problem(response, 404, "not_found")
    assert admin_of_a.ok("GET", "/v1/me")["organization"]["id"] == org.id
