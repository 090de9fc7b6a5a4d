"""Channels: sandbox, web chat and WhatsApp settings; secrets are write-only."""

from __future__ import annotations

from typing import Any

import pytest
from tests.factories import Org, call, expect_problem, snapshot

SECRETS = {
    "access_token": "EAAG-access-token-value-123",
    "app_secret": "app-secret-value-456",
    "verify_token": "verify-token-value-789",
}
WHATSAPP = {"phone_number_id": "106540352242922", "waba_id": "102290129340398", **SECRETS}


def _create(org: Org, **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = org.api.ok("POST", "/v1/channels", body, status=201)
    return created


def test_sandbox_channel_emulates_the_window_by_default_r4(org: Org) -> None:
    channel = _create(org, type="sandbox", name="Demo")

    assert channel["id"].startswith("ch_")
    assert (channel["type"], channel["name"], channel["customer_window"]) == (
        "sandbox",
        "Demo",
        True,
    )
    assert channel["config"] == {}


def test_sandbox_window_can_be_turned_off(org: Org) -> None:
    channel = _create(org, type="sandbox", name="No window", customer_window=False)

    assert channel["customer_window"] is False


def test_webchat_channel_has_no_window_r4(org: Org) -> None:
    channel = _create(org, type="webchat", name="Site")

    assert (channel["type"], channel["customer_window"]) == ("webchat", False)


def test_whatsapp_channel_always_has_the_window_and_shows_which_secrets_are_set(org: Org) -> None:
    channel = _create(org, type="whatsapp", name="Support", config=WHATSAPP)

    assert channel["customer_window"] is True
    assert channel["config"] == {
        "phone_number_id": WHATSAPP["phone_number_id"],
        "waba_id": WHATSAPP["waba_id"],
        "graph_api_version": "v21.0",
        "secrets_set": ["access_token", "app_secret", "verify_token"],
    }


def test_whatsapp_without_window_is_422(org: Org) -> None:
    response = call(
        org.api,
        "POST",
        "/v1/channels",
        {"type": "whatsapp", "name": "x", "customer_window": False, "config": WHATSAPP},
    )

    expect_problem(response, 422, "validation_error")


def test_whatsapp_channel_missing_settings_is_422_listing_each(org: Org) -> None:
    before = snapshot(org)

    response = call(
        org.api,
        "POST",
        "/v1/channels",
        {"type": "whatsapp", "name": "x", "config": {"phone_number_id": "1", "app_secret": "s"}},
    )

    problem = expect_problem(response, 422, "validation_error")
    missing = ["waba_id", "access_token", "verify_token"]
    assert [e["pointer"] for e in problem["errors"]] == [f"/config/{m}" for m in missing]
    for name in missing:
        assert name in problem["detail"]
    assert snapshot(org) == before


def test_whatsapp_channel_with_no_config_lists_all_five_settings(org: Org) -> None:
    response = call(org.api, "POST", "/v1/channels", {"type": "whatsapp", "name": "x"})

    problem = expect_problem(response, 422, "validation_error")
    assert {e["pointer"] for e in problem["errors"]} == {
        f"/config/{name}"
        for name in ("phone_number_id", "waba_id", "access_token", "app_secret", "verify_token")
    }


def test_unknown_whatsapp_setting_is_422(org: Org) -> None:
    before = snapshot(org)

    response = call(
        org.api,
        "POST",
        "/v1/channels",
        {"type": "whatsapp", "name": "x", "config": {**WHATSAPP, "webhook_url": "http://x"}},
    )

    problem = expect_problem(response, 422, "validation_error")
    assert problem["errors"] == [{"pointer": "/config/webhook_url", "message": "unknown setting"}]
    assert snapshot(org) == before


def test_non_string_whatsapp_setting_is_422(org: Org) -> None:
    response = call(
        org.api,
        "POST",
        "/v1/channels",
        {"type": "whatsapp", "name": "x", "config": {**WHATSAPP, "phone_number_id": 106540}},
    )

    expect_problem(response, 422, "validation_error")


@pytest.mark.parametrize("kind", ["sandbox", "webchat"])
def test_config_on_a_channel_that_takes_none_is_422(org: Org, kind: str) -> None:
    response = call(
        org.api, "POST", "/v1/channels", {"type": kind, "name": "x", "config": {"a": "b"}}
    )

    expect_problem(response, 422, "validation_error")


def test_whatsapp_secrets_never_appear_in_any_response(org: Org) -> None:
    created = call(
        org.api, "POST", "/v1/channels", {"type": "whatsapp", "name": "WA", "config": WHATSAPP}
    )
    channel_id = created.json()["id"]
    responses = [
        created,
        call(org.api, "GET", f"/v1/channels/{channel_id}"),
        call(org.api, "GET", "/v1/channels"),
        call(org.api, "PATCH", f"/v1/channels/{channel_id}", {"name": "WA 2"}),
        call(
            org.api,
            "PATCH",
            f"/v1/channels/{channel_id}",
            {"config": {"access_token": "EAAG-rotated-token-000"}},
        ),
        call(org.api, "GET", "/v1/events", params={"limit": 100}),
    ]

    for response in responses:
        assert response.status_code in (200, 201), response.text
        for secret in [*SECRETS.values(), "EAAG-rotated-token-000"]:
            assert secret not in response.text
    patched = responses[4].json()
    assert patched["config"]["secrets_set"] == ["access_token", "app_secret", "verify_token"]


def test_patch_renames_a_channel(org: Org) -> None:
    patched = org.api.ok("PATCH", f"/v1/channels/{org.channel_id}", {"name": "Renamed"})

    assert patched["name"] == "Renamed"
    assert patched["customer_window"] is True
    assert org.api.ok("GET", f"/v1/channels/{org.channel_id}")["name"] == "Renamed"


def test_patch_whatsapp_settings_keeps_the_others(org: Org) -> None:
    channel = _create(org, type="whatsapp", name="WA", config=WHATSAPP)

    patched = org.api.ok(
        "PATCH", f"/v1/channels/{channel['id']}", {"config": {"display_phone_number": "+1 555"}}
    )

    assert patched["config"] == {**channel["config"], "display_phone_number": "+1 555"}


def test_patch_with_an_unknown_whatsapp_setting_is_422_and_changes_nothing(org: Org) -> None:
    channel = _create(org, type="whatsapp", name="WA", config=WHATSAPP)
    before = snapshot(org)

    response = call(org.api, "PATCH", f"/v1/channels/{channel['id']}", {"config": {"x": "1"}})

    expect_problem(response, 422, "validation_error")
    assert snapshot(org) == before


def test_list_channels_shows_every_channel_of_the_organization(org: Org) -> None:
    web = _create(org, type="webchat", name="Site")

    listed = org.api.ok("GET", "/v1/channels")["data"]

    assert [c["id"] for c in listed] == [org.channel_id, web["id"]]
