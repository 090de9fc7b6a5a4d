"""Templates through the API: review, sending rules (R4), Send Template Message flags (R5)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2 as httpx
from tests.factories import Org, snapshot

BODY_AND_QUICK_REPLIES = [
    {
        "type": "BODY",
        "text": "Hi {{1}}, your order {{2}} is ready.",
        "example": {"body_text": [["Ada", "#1"]]},
    },
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Yes"},
            {"type": "QUICK_REPLY", "text": "No"},
        ],
    },
]


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _name() -> str:
    return f"t_{uuid.uuid4().hex[:8]}"


def _create(org: Org, **fields: Any) -> httpx.Response:
    body = {
        "name": _name(),
        "language": "en_US",
        "category": "UTILITY",
        "components": BODY_AND_QUICK_REPLIES,
        **fields,
    }
    return org.api.post("/v1/templates", body)


def _send(
    org: Org,
    chatroom_id: str,
    template: dict[str, Any],
    variables: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    return org.api.post(
        f"/v1/chatrooms/{chatroom_id}/template-messages",
        {
            "template": template["name"],
            "language": template["language"],
            "variables": variables if variables is not None else {"body": ["Ada", "#1"]},
        },
        params=params,
    )


def _pointers(problem: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in problem["errors"]]


def test_created_template_is_pending_r4(org: Org) -> None:
    response = _create(org, name="order_ready")

    assert response.status_code == 201, response.text
    template = response.json()
    assert template["status"] == "PENDING"
    assert template["rejection_reason"] is None
    assert (template["name"], template["language"]) == ("order_ready", "en_US")
    assert org.api.ok("GET", f"/v1/templates/{template['id']}")["status"] == "PENDING"


def test_pending_template_cannot_be_sent_r4(org: Org) -> None:
    template = org.template(approve=False)
    chatroom = org.chatroom()
    before = snapshot(org)

    problem = _problem(_send(org, chatroom["id"], template), 409, "template_not_approved")

    assert "PENDING" in problem["detail"]
    assert problem["template_status"] == "PENDING"
    assert snapshot(org) == before


def test_approved_template_is_approved_and_can_be_sent_r4(org: Org) -> None:
    template = org.template(approve=False)

    approved = org.api.ok("POST", f"/v1/templates/{template['id']}/approve")

    assert approved["status"] == "APPROVED"
    assert org.api.ok("GET", f"/v1/templates/{template['id']}")["status"] == "APPROVED"
    chatroom = org.chatroom()
    assert _send(org, chatroom["id"], template).status_code == 201


def test_rejected_template_records_the_reason_and_cannot_be_sent_r4(org: Org) -> None:
    template = org.template(approve=False)

    rejected = org.api.ok(
        "POST", f"/v1/templates/{template['id']}/reject", {"reason": "Looks like spam"}
    )

    assert rejected["status"] == "REJECTED"
    assert rejected["rejection_reason"] == "Looks like spam"
    chatroom = org.chatroom()
    before = snapshot(org)
    _problem(_send(org, chatroom["id"], template), 409, "template_not_approved")
    assert snapshot(org) == before


def test_approving_an_approved_template_is_a_status_conflict(org: Org) -> None:
    template = org.template()
    before = snapshot(org)

    response = org.api.post(f"/v1/templates/{template['id']}/approve")

    problem = _problem(response, 409, "template_status_conflict")
    assert problem["status"] == 409
    assert problem["template_status"] == "APPROVED"
    assert snapshot(org) == before


def test_editing_an_approved_template_sends_it_back_to_pending_with_an_event_r4(
    org: Org,
) -> None:
    template = org.template()
    components = [
        {"type": "BODY", "text": "Hello {{1}}, order {{2}} shipped.", **_example("Ada", "#1")}
    ]

    edited = org.api.ok("PATCH", f"/v1/templates/{template['id']}", {"components": components})

    assert edited["status"] == "PENDING"
    assert edited["components"][0]["text"] == "Hello {{1}}, order {{2}} shipped."
    events = org.events(type="template.status_updated")
    assert [(e["data"]["previous_status"], e["data"]["template"]["status"]) for e in events] == [
        ("PENDING", "APPROVED"),
        ("APPROVED", "PENDING"),
    ]
    assert events[-1]["data"]["template"]["id"] == template["id"]
    chatroom = org.chatroom()
    _problem(_send(org, chatroom["id"], template), 409, "template_not_approved")


def _example(*values: str) -> dict[str, Any]:
    return {"example": {"body_text": [list(values)]}}


def test_duplicate_name_and_language_is_refused(org: Org) -> None:
    org.template(name="order_ready", approve=False)
    before = snapshot(org)

    problem = _problem(_create(org, name="order_ready"), 409, "template_exists")

    assert "order_ready" in problem["detail"]
    assert snapshot(org) == before


def test_same_name_in_another_language_is_a_new_template(org: Org) -> None:
    english = org.template(name="order_ready", approve=False)

    response = _create(org, name="order_ready", language="pt_BR")

    assert response.status_code == 201, response.text
    portuguese = response.json()
    assert portuguese["id"] != english["id"]
    listed = org.api.ok("GET", "/v1/templates", params={"name": "order_ready"})["data"]
    assert sorted(t["language"] for t in listed) == ["en_US", "pt_BR"]


def test_invalid_definition_lists_every_problem_with_pointers(org: Org) -> None:
    before = snapshot(org)

    response = _create(
        org,
        name="Bad Name",
        components=[
            {"type": "BODY", "text": "Hi {{1}}"},
            {"type": "FOOTER", "text": "x" * 61},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "y" * 26}]},
        ],
    )

    problem = _problem(response, 422, "template_invalid")
    assert _pointers(problem) == [
        "/name",
        "/components/0/text",
        "/components/0/example/body_text",
        "/components/1/text",
        "/components/2/buttons/0/text",
    ]
    assert all(error["message"] for error in problem["errors"])
    assert snapshot(org) == before


def test_unknown_template_name_is_not_found(org: Org) -> None:
    chatroom = org.chatroom()
    before = snapshot(org)

    response = _send(org, chatroom["id"], {"name": "no_such_template", "language": "en_US"})

    _problem(response, 404, "template_not_found")
    assert snapshot(org) == before


def test_known_template_in_an_unknown_language_is_not_found(org: Org) -> None:
    template = org.template()
    chatroom = org.chatroom()

    response = _send(org, chatroom["id"], {"name": template["name"], "language": "de"})

    _problem(response, 404, "template_not_found")


def test_too_few_body_variables_are_refused_r4(org: Org) -> None:
    template = org.template()
    chatroom = org.chatroom()
    before = snapshot(org)

    response = _send(org, chatroom["id"], template, {"body": ["Ada"]})

    problem = _problem(response, 422, "template_variables_invalid")
    assert _pointers(problem) == ["/variables/body"]
    assert snapshot(org) == before


def test_too_many_body_variables_are_refused_r4(org: Org) -> None:
    template = org.template()
    chatroom = org.chatroom()

    response = _send(org, chatroom["id"], template, {"body": ["Ada", "#1", "extra"]})

    problem = _problem(response, 422, "template_variables_invalid")
    assert _pointers(problem) == ["/variables/body"]


def test_empty_body_variable_is_refused_r4(org: Org) -> None:
    template = org.template()
    chatroom = org.chatroom()
    before = snapshot(org)

    response = _send(org, chatroom["id"], template, {"body": ["Ada", "  "]})

    problem = _problem(response, 422, "template_variables_invalid")
    assert _pointers(problem) == ["/variables/body/1"]
    assert snapshot(org) == before


def test_template_to_a_contact_who_has_not_opted_in_is_refused_until_opt_in_r4(
    org: Org,
) -> None:
    template = org.template()
    contact = org.contact(opted_in=False)
    chatroom = org.chatroom(contact=contact)
    before = snapshot(org)

    problem = _problem(_send(org, chatroom["id"], template), 409, "contact_not_opted_in")
    assert problem["contact_id"] == contact["id"]
    assert snapshot(org) == before

    updated = org.api.ok("PATCH", f"/v1/contacts/{contact['id']}", {"opted_in": True})
    assert updated["opted_in"] is True
    assert _send(org, chatroom["id"], template).status_code == 201


def test_template_is_sent_while_the_window_is_closed_r4(org: Org) -> None:
    template = org.template()
    chatroom = org.chatroom()
    free_form = org.api.post(f"/v1/chatrooms/{chatroom['id']}/messages", {"text": "Hi"})
    _problem(free_form, 409, "customer_window_closed")

    response = _send(org, chatroom["id"], template)

    assert response.status_code == 201, response.text
    message = response.json()
    assert message["kind"] == "template"
    assert message["text"] == "Hi Ada, your order #1 is ready."


def test_template_to_a_closed_chatroom_is_refused(org: Org) -> None:
    template = org.template()
    chatroom = org.chatroom()
    org.api.ok("POST", f"/v1/chatrooms/{chatroom['id']}/close")
    before = snapshot(org)

    _problem(_send(org, chatroom["id"], template), 409, "chatroom_closed")

    assert snapshot(org) == before


def test_url_button_template_renders_its_url_with_the_suffix_variable(org: Org) -> None:
    template = org.template(
        components=[
            {"type": "BODY", "text": "Your order {{1}} shipped.", **_example("#1")},
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Track it",
                        "url": "https://shop.example/track/{{1}}",
                        "example": ["abc"],
                    },
                    {"type": "QUICK_REPLY", "text": "Talk to us"},
                ],
            },
        ]
    )
    chatroom = org.chatroom()

    response = _send(org, chatroom["id"], template, {"body": ["#42"], "buttons": {"0": ["A42"]}})

    assert response.status_code == 201, response.text
    message = response.json()
    url_button, quick_reply = message["template"]["buttons"]
    assert url_button == {
        "index": 0,
        "type": "URL",
        "text": "Track it",
        "url": "https://shop.example/track/A42",
    }
    assert quick_reply["payload"] == f"cf1:{message['id']}:1"


def test_url_button_without_its_suffix_variable_is_refused(org: Org) -> None:
    template = org.template(
        components=[
            {"type": "BODY", "text": "Your order shipped."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Track it",
                        "url": "https://shop.example/track/{{1}}",
                        "example": ["abc"],
                    }
                ],
            },
        ]
    )
    chatroom = org.chatroom()

    response = _send(org, chatroom["id"], template, {})

    problem = _problem(response, 422, "template_variables_invalid")
    assert _pointers(problem) == ["/variables/buttons/0"]


def test_template_message_records_default_flags_r5(org: Org) -> None:
    chatroom = org.chatroom()

    message = org.send_template(chatroom["id"], org.template())

    expected = {"relay_response": False, "bump": True, "bump_response": True}
    assert message["flags"] == expected
    stored = org.api.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages/{message['id']}")
    assert stored["flags"] == expected


def test_template_message_records_the_flags_given_in_the_query_string_r5(org: Org) -> None:
    chatroom = org.chatroom()
    template = org.template()

    message = org.send_template(
        chatroom["id"], template, relay_response=True, bump=False, bump_response=False
    )

    expected = {"relay_response": True, "bump": False, "bump_response": False}
    assert message["flags"] == expected
    stored = org.api.ok("GET", f"/v1/chatrooms/{chatroom['id']}/messages/{message['id']}")
    assert stored["flags"] == expected


def test_each_flag_is_recorded_on_its_own_r5(org: Org) -> None:
    chatroom = org.chatroom()
    template = org.template()

    relayed = org.send_template(chatroom["id"], template, relay_response=True)
    silent = org.send_template(chatroom["id"], template, bump=False)
    quiet_taps = org.send_template(chatroom["id"], template, bump_response=False)

    assert relayed["flags"] == {"relay_response": True, "bump": True, "bump_response": True}
    assert silent["flags"] == {"relay_response": False, "bump": False, "bump_response": True}
    assert quiet_taps["flags"] == {"relay_response": False, "bump": True, "bump_response": False}


def test_each_quick_reply_button_carries_a_payload_naming_the_message_and_index_r6(
    org: Org,
) -> None:
    chatroom = org.chatroom()

    message = org.send_template(chatroom["id"], org.template())

    assert message["template"]["buttons"] == [
        {"index": 0, "type": "QUICK_REPLY", "text": "Yes", "payload": f"cf1:{message['id']}:0"},
        {"index": 1, "type": "QUICK_REPLY", "text": "No", "payload": f"cf1:{message['id']}:1"},
    ]
