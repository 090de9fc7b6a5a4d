"""Views are plain dicts typed by TypedDicts: every response and event payload carries exactly
its view's fields, in the order the view declares them, with values its schema accepts."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from tests.factories import Org

from chatflow.domain.models import ChatroomStatus
from chatflow.storage import chatrooms as chatroom_store
from chatflow.storage import messages as message_store
from chatflow.storage.database import Tx
from chatflow.views import (
    AgentRead,
    ApiKeyCreated,
    ChannelRead,
    ChatroomCreated,
    ChatroomListEntry,
    ChatroomRead,
    ContactRead,
    EventRead,
    MessageRead,
    OrganizationRead,
    TemplateRead,
    chatroom_view,
    message_view,
    to_json,
)


def _conforms(body: dict[str, Any], view: Any) -> None:
    assert list(body) == list(view.__annotations__), view.__name__
    TypeAdapter(view).validate_python(body, strict=False)


@pytest.fixture
def scene(org: Org) -> dict[str, Any]:
    """One of each: a chatroom whose customer wrote, a free-form answer and a template."""
    chatroom = org.chatroom()
    inbound = org.customer_says(chatroom["id"])
    answer = org.api.ok(
        "POST", f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "Hi!"}, status=201
    )
    template = org.template()
    sent = org.send_template(chatroom["id"], template)
    return {"chatroom": chatroom, "messages": [inbound, answer, sent], "template": template}


def test_responses_carry_exactly_their_views_fields_in_order(
    org: Org, scene: dict[str, Any]
) -> None:
    chatroom_id = scene["chatroom"]["id"]
    _conforms(scene["chatroom"], ChatroomCreated)
    _conforms(org.api.ok("GET", f"/v1/chatrooms/{chatroom_id}"), ChatroomRead)
    for message in scene["messages"]:
        _conforms(message, MessageRead)
    _conforms(scene["template"], TemplateRead)
    _conforms(org.api.ok("GET", "/v1/organization"), OrganizationRead)
    _conforms(org.api.ok("GET", f"/v1/agents/{org.admin_id}"), AgentRead)
    _conforms(org.api.ok("GET", f"/v1/channels/{org.channel_id}"), ChannelRead)
    contact_id = scene["chatroom"]["contact_id"]
    _conforms(org.api.ok("GET", f"/v1/contacts/{contact_id}"), ContactRead)
    _conforms(org.api.ok("POST", "/v1/api-keys", {"name": "views"}, status=201), ApiKeyCreated)
    entries = org.api.ok("GET", "/v1/chatrooms", params={"agent_id": org.admin_id})["data"]
    assert entries
    for entry in entries:
        _conforms(entry, ChatroomListEntry)


def test_event_payloads_are_the_views_of_the_api(org: Org, scene: dict[str, Any]) -> None:
    events = org.events(limit=100)
    assert events
    payloads = {"message": MessageRead, "chatroom": ChatroomRead, "contact": ContactRead}
    seen = set()
    for event in events:
        _conforms(event, EventRead)
        for key, view in payloads.items():
            if key in event["data"]:
                _conforms(event["data"][key], view)
                seen.add(key)
    assert seen == set(payloads)


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, int, bool, float)


def test_views_hold_plain_json_values_not_enum_members(org: Org, scene: dict[str, Any]) -> None:
    """Pydantic writes an enum member in twice the time of a string; events store the views."""
    chatroom_id = scene["chatroom"]["id"]

    def views(tx: Tx) -> list[Any]:
        chatroom = chatroom_store.load_chatroom(tx, org.id, chatroom_id)
        assert chatroom is not None
        messages = message_store.list_messages(tx, chatroom.id, before=None, limit=10)
        return [chatroom_view(chatroom), *(message_view(m) for m in messages)]

    made = org.database.read_sync(views)
    assert len(made) == 4
    assert all(_plain(view) for view in made)


_PYDANTIC_JSON = TypeAdapter(Any)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    # Past 64 bits too: orjson refuses those, and pydantic writes them.
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.just(UTC))
    | st.sampled_from(ChatroomStatus),
    lambda children: (
        st.lists(children) | st.dictionaries(st.text() | st.integers(max_value=9), children)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_bodies_are_written_byte_for_byte_as_pydantic_writes_them(value: Any) -> None:
    """`to_json` writes plain values with orjson, faster, and falls back to pydantic for what
    orjson would write otherwise or refuses: either way, the same bytes."""
    assert to_json(value) == _PYDANTIC_JSON.dump_json(value)
