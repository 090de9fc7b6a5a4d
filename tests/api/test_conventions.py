"""API conventions: problem+json errors, strict bodies, prefixed ordered ids, paging, OpenAPI."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from tests.factories import (
    PASSWORD,
    Org,
    call,
    expect_problem,
    quick_agent,
    random_phone,
    snapshot,
)

from chatflow.events import outbox
from chatflow.ids import is_valid_id, new_id
from chatflow.services import contacts as contact_service

# -- problems ---------------------------------------------------------------------------------


def test_400_malformed_json_is_a_problem_and_stores_nothing(org: Org) -> None:
    org.client.cookies.clear()
    response = org.client.post(
        "/v1/contacts",
        content=b'{"phone": "+14155552671", "first_name": ',
        headers={"Authorization": f"Bearer {org.api.token}", "Content-Type": "application/json"},
    )

    expect_problem(response, 400, "malformed_json")
    assert org.api.ok("GET", "/v1/contacts")["data"] == []
    assert org.events() == []


def test_401_is_a_problem(org: Org) -> None:
    org.client.cookies.clear()
    expect_problem(org.client.get("/v1/contacts"), 401, "unauthenticated")


def test_403_is_a_problem(org: Org) -> None:
    _, session = quick_agent(org)
    expect_problem(call(session, "GET", "/v1/events"), 403, "forbidden")


def test_404_is_a_problem(org: Org) -> None:
    response = call(org.api, "GET", f"/v1/contacts/{new_id('ct')}")
    problem = expect_problem(response, 404, "not_found")
    assert problem["instance"] == response.request.url.path


def test_404_for_an_unknown_route_is_a_problem(org: Org) -> None:
    expect_problem(call(org.api, "GET", "/v1/no-such-thing"), 404, "not_found")


def test_405_for_a_wrong_method_is_a_problem(org: Org) -> None:
    expect_problem(call(org.api, "PUT", "/v1/contacts"), 405, "method_not_allowed")


def test_409_is_a_problem(org: Org) -> None:
    contact = org.contact()
    response = call(org.api, "POST", "/v1/contacts", {"phone": contact["phone"]})
    expect_problem(response, 409, "contact_phone_taken")


def test_422_is_a_problem_with_a_pointer_per_error(org: Org) -> None:
    response = call(org.api, "POST", "/v1/chatrooms", {"channel_id": org.channel_id})
    problem = expect_problem(response, 422, "validation_error")
    assert {"pointer": "/contact_id", "message": "Field required"} in problem["errors"]


def test_unknown_body_fields_are_refused_so_nothing_can_be_mass_assigned(org: Org) -> None:
    other_org = "org_" + new_id("x")[2:]
    body = {"id": new_id("ct"), "org_id": other_org, "phone": random_phone(), "first_name": "Eve"}

    response = call(org.api, "POST", "/v1/contacts", body)

    problem = expect_problem(response, 422, "validation_error")
    assert {e["pointer"] for e in problem["errors"]} == {"/id", "/org_id"}
    assert org.api.ok("GET", "/v1/contacts")["data"] == []


def test_unknown_fields_on_patch_are_refused_and_change_nothing(org: Org) -> None:
    contact = org.contact()
    before = snapshot(org)

    response = call(
        org.api,
        "PATCH",
        f"/v1/contacts/{contact['id']}",
        {"first_name": "Eve", "created_at": "2000-01-01T00:00:00Z"},
    )

    expect_problem(response, 422, "validation_error")
    assert snapshot(org) == before


def test_unhandled_error_is_a_500_problem_without_internals(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret-internal-detail at /srv/chatflow/db.py line 42")

    monkeypatch.setattr(contact_service, "list_contacts", explode)

    response = call(org.api, "GET", "/v1/contacts")

    expect_problem(response, 500, "internal_error")
    for leak in ("secret-internal-detail", "RuntimeError", "Traceback", "db.py", "explode"):
        assert leak not in response.text


def test_unhandled_error_during_a_write_stores_nothing(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the outbox broke")

    monkeypatch.setattr(outbox, "record", explode)

    response = call(org.api, "POST", "/v1/contacts", {"phone": random_phone()})

    expect_problem(response, 500, "internal_error")
    monkeypatch.undo()
    assert org.api.ok("GET", "/v1/contacts")["data"] == []


# -- ids --------------------------------------------------------------------------------------


def test_ids_are_prefixed_and_increase_with_creation_order(org: Org) -> None:
    created: list[tuple[str, str]] = []
    contact = org.contact()
    created.append(("ct", contact["id"]))
    channel = org.api.ok("POST", "/v1/channels", {"type": "webchat", "name": "Web"}, status=201)
    created.append(("ch", channel["id"]))
    agent = org.api.ok(
        "POST",
        "/v1/agents",
        {"email": f"{new_id('x')[-12:]}@example.com", "name": "A", "password": PASSWORD},
        status=201,
    )
    created.append(("ag", agent["id"]))
    key = org.api.ok("POST", "/v1/api-keys", {"name": "k"}, status=201)
    created.append(("key", key["id"]))
    template = org.template()
    created.append(("tpl", template["id"]))
    chatroom = org.chatroom(contact=contact)
    created.append(("cr", chatroom["id"]))
    first = org.customer_says(chatroom["id"], "one")
    created.append(("msg", first["id"]))
    second = org.send_template(chatroom["id"], template)
    created.append(("msg", second["id"]))

    for prefix, value in created:
        assert is_valid_id(value, prefix), value
    bodies = [value.split("_", 1)[1] for _, value in created]
    assert bodies == sorted(bodies)
    assert len(set(bodies)) == len(bodies)


def test_event_ids_are_prefixed_and_follow_the_log_order(org: Org) -> None:
    chatroom = org.chatroom()
    org.customer_says(chatroom["id"], "one")
    org.customer_says(chatroom["id"], "two")

    events = org.events()

    assert len(events) >= 5
    for event in events:
        assert is_valid_id(event["id"], "evt"), event["id"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)


# -- paging -----------------------------------------------------------------------------------


LISTS = [
    "/v1/contacts",
    "/v1/chatrooms",
    "/v1/templates",
    "/v1/channels",
    "/v1/agents",
    "/v1/api-keys",
    "/v1/events",
    "/v1/chatrooms/{chatroom}/messages",
]


@pytest.mark.parametrize("limit", [0, 101, -1])
@pytest.mark.parametrize("path", LISTS)
def test_list_limit_outside_1_to_100_is_422(org: Org, path: str, limit: int) -> None:
    chatroom = org.chatroom()
    response = call(org.api, "GET", path.format(chatroom=chatroom["id"]), params={"limit": limit})

    problem = expect_problem(response, 422, "validation_error")
    assert problem["errors"][0]["pointer"] == "query:limit"


@pytest.mark.parametrize("path", LISTS)
def test_list_limit_of_100_is_accepted(org: Org, path: str) -> None:
    chatroom = org.chatroom()
    page = org.api.ok("GET", path.format(chatroom=chatroom["id"]), params={"limit": 100})
    assert isinstance(page["data"], list)


def _pages(org: Org, path: str, limit: int) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        page: dict[str, Any] = org.api.ok("GET", path, params=params)
        yield page
        cursor = page["next_cursor"]
        if cursor is None:
            return


@pytest.mark.parametrize("count", [7, 6])
def test_cursor_paging_returns_each_contact_once_newest_first(org: Org, count: int) -> None:
    made = [org.contact()["id"] for _ in range(count)]

    pages = list(_pages(org, "/v1/contacts", 3))

    seen = [contact["id"] for page in pages for contact in page["data"]]
    assert seen == list(reversed(made))
    assert len(pages) == -(-count // 3)
    assert all(len(page["data"]) == 3 for page in pages[:-1])


def test_contact_created_while_paging_does_not_repeat_or_shift_the_pages(org: Org) -> None:
    made = [org.contact()["id"] for _ in range(4)]
    first = org.api.ok("GET", "/v1/contacts", params={"limit": 2})
    org.contact()  # newer than everything: belongs before the first page

    rest = org.api.ok("GET", "/v1/contacts", params={"limit": 10, "cursor": first["next_cursor"]})

    seen = [c["id"] for c in first["data"]] + [c["id"] for c in rest["data"]]
    assert seen == list(reversed(made))


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _tampered(valid: str) -> list[str]:
    return [
        valid[:-4],
        "not-a-cursor",
        "////",
        _encode(["contacts", 12345]),
        _encode(["contacts", "ct_x", "extra"]),
        _encode({"contacts": "ct_x"}),
        _encode("contacts"),
    ]


def test_a_tampered_cursor_is_400_invalid_cursor(org: Org) -> None:
    for _ in range(3):
        org.contact()
    valid = org.api.ok("GET", "/v1/contacts", params={"limit": 1})["next_cursor"]
    assert valid is not None

    for cursor in _tampered(valid):
        response = call(org.api, "GET", "/v1/contacts", params={"cursor": cursor})
        expect_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize("target", ["/v1/templates", "/v1/agents", "/v1/events", "/v1/chatrooms"])
def test_a_cursor_from_another_list_is_400(org: Org, target: str) -> None:
    for _ in range(3):
        org.contact()
    contacts_cursor = org.api.ok("GET", "/v1/contacts", params={"limit": 1})["next_cursor"]

    response = call(org.api, "GET", target, params={"cursor": contacts_cursor})

    expect_problem(response, 400, "invalid_cursor")


# -- OpenAPI ----------------------------------------------------------------------------------


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str, bool]]:
    """(path, method, include_in_schema) of every API route, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            for method in route.methods or ():
                yield prefix + route.path, method, route.include_in_schema
        elif hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            yield from _routes(
                route.original_router.routes, prefix + str(getattr(context, "prefix", ""))
            )


@pytest.fixture
def openapi(org: Org) -> dict[str, Any]:
    response = org.client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def test_openapi_lists_every_route(org: Org, openapi: dict[str, Any]) -> None:
    routes = list(_routes(org.client.app.routes))  # type: ignore[attr-defined]

    assert len(routes) > 20
    for path, method, in_schema in routes:
        if path.startswith("/v1") or in_schema:
            assert method.lower() in openapi["paths"].get(path, {}), (method, path)


def test_openapi_documents_errors_as_problem_json(openapi: dict[str, Any]) -> None:
    for path, operations in openapi["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
            assert {"401", "422"} <= set(errors), (method, path)
            for status, response in errors.items():
                assert list(response["content"]) == ["application/problem+json"], (
                    method,
                    path,
                    status,
                )
                schema = response["content"]["application/problem+json"]["schema"]
                assert {"type", "title", "status", "detail", "code"} <= set(schema["required"])


@pytest.mark.parametrize(
    "path",
    [
        "/v1/contacts",
        "/v1/chatrooms",
        "/v1/chatrooms/{chatroom_id}/messages",
        "/v1/chatrooms/{chatroom_id}/template-messages",
        "/v1/templates",
    ],
)
def test_openapi_request_bodies_have_examples(openapi: dict[str, Any], path: str) -> None:
    ref = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = openapi["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]

    examples = [name for name, prop in schema["properties"].items() if prop.get("examples")]

    assert examples, schema


def test_docs_page_is_served(org: Org) -> None:
    response = org.client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
