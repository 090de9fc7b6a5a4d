"""Real-shaped WhatsApp Cloud API webhook notifications, for tests of the WhatsApp channel.

Every builder returns Meta's envelope, a fresh dict the test may change:

    {"object": "whatsapp_business_account",
     "entry": [{"id": <WABA id>, "changes": [{"value": {...}, "field": "messages"}]}]}

Shapes follow Meta's webhook reference (developers.facebook.com/documentation/business-messaging/
whatsapp/webhooks/reference/...) as summarised in /work/shared/reference/whatsapp-and-saleschat-
facts.md §3. Timestamps are Unix seconds as strings, as Meta sends them. Send one with:

    payload = text_message("hello", wa_id="16505551234")
    body = encode(payload)
    client.post(url, content=body, headers={"X-Hub-Signature-256": sign(body, APP_SECRET)})
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any, Literal, TypeAlias

JSON: TypeAlias = dict[str, Any]  # a JSON object

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "15550783881"
CUSTOMER_WA_ID = "16505551234"
CUSTOMER_NAME = "Sheena Nelson"

StatusName = Literal["sent", "delivered", "read", "failed"]
TemplateEvent = Literal[
    "APPROVED", "REJECTED", "PENDING", "PAUSED", "DISABLED", "FLAGGED", "ARCHIVED", "UNARCHIVED"
]

_wamid_counter = itertools.count(1)


def new_wamid(wa_id: str = CUSTOMER_WA_ID) -> str:
    """A unique message id in the look of Meta's (`wamid.` + base64 of opaque bytes)."""
    # Real wamids are base64 of a small binary record holding the phone number and a random
    # id; the look matters only so that parsers do not depend on a simpler format.
    opaque = b"\x1c\x18" + bytes([len(wa_id)]) + wa_id.encode()
    opaque += b"\x15\x02\x00\x12\x18\x14" + secrets.token_hex(6).upper().encode()
    opaque += next(_wamid_counter).to_bytes(4, "big") + b"\x00"
    return "wamid." + base64.b64encode(opaque).decode("ascii")


def sign(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends: `sha256=` + hex HMAC-SHA256 of the raw body."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def encode(payload: JSON) -> bytes:
    """Compact JSON with non-ASCII escaped as `\\uXXXX` (lower-case hex), as Meta sends it.

    Meta signs these escaped bytes, so an adapter that re-serialises the parsed body before
    checking the signature fails on any non-ASCII text: sign the result of this, not a dict.
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# Inbound messages (field "messages", value.messages[]).


def text_message(
    body: str = "Does it come in another color?",
    *,
    context_id: str | None = None,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    wa_id: str = CUSTOMER_WA_ID,
    profile_name: str = CUSTOMER_NAME,
    wamid: str | None = None,
    timestamp: int | str | None = None,
) -> JSON:
    """A customer's text: Meta's messages webhook, `type: "text"` (reference/messages/text).

    `context_id` makes it a reply to that message (a quoted reply).
    """
    return _inbound(
        {"type": "text", "text": {"body": body}},
        context_id=context_id,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        wa_id=wa_id,
        profile_name=profile_name,
        wamid=wamid,
        timestamp=timestamp,
    )


def button_tap(
    payload: str,
    text: str,
    *,
    context_id: str,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    wa_id: str = CUSTOMER_WA_ID,
    profile_name: str = CUSTOMER_NAME,
    wamid: str | None = None,
    timestamp: int | str | None = None,
) -> JSON:
    """A tap on a template's quick-reply button: `type: "button"` (reference/messages/button).

    `context_id` is the wamid of the template message tapped; `payload` is the one set when the
    template was sent, `text` the button's label.
    """
    return _inbound(
        {"type": "button", "button": {"payload": payload, "text": text}},
        context_id=context_id,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        wa_id=wa_id,
        profile_name=profile_name,
        wamid=wamid,
        timestamp=timestamp,
    )


def interactive_button_reply(
    button_id: str,
    title: str,
    *,
    context_id: str,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    wa_id: str = CUSTOMER_WA_ID,
    profile_name: str = CUSTOMER_NAME,
    wamid: str | None = None,
    timestamp: int | str | None = None,
) -> JSON:
    """A tap on a reply button of an interactive (non-template) message.

    Mirrors reference/messages/interactive, `interactive.type: "button_reply"`.
    """
    return _inbound(
        {
            "type": "interactive",
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": button_id, "title": title},
            },
        },
        context_id=context_id,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        wa_id=wa_id,
        profile_name=profile_name,
        wamid=wamid,
        timestamp=timestamp,
    )


def interactive_list_reply(
    row_id: str,
    title: str,
    description: str | None = None,
    *,
    context_id: str,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    wa_id: str = CUSTOMER_WA_ID,
    profile_name: str = CUSTOMER_NAME,
    wamid: str | None = None,
    timestamp: int | str | None = None,
) -> JSON:
    """A choice from a list message: reference/messages/interactive, `type: "list_reply"`.

    `description` is left out when None, as Meta does for a row without one.
    """
    reply: dict[str, str] = {"id": row_id, "title": title}
    if description is not None:
        reply["description"] = description
    return _inbound(
        {"type": "interactive", "interactive": {"type": "list_reply", "list_reply": reply}},
        context_id=context_id,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        wa_id=wa_id,
        profile_name=profile_name,
        wamid=wamid,
        timestamp=timestamp,
    )


def image_message(
    *,
    caption: str | None = None,
    media_id: str = "1479537139650973",
    mime_type: str = "image/jpeg",
    sha256: str | None = None,
    context_id: str | None = None,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    wa_id: str = CUSTOMER_WA_ID,
    profile_name: str = CUSTOMER_NAME,
    wamid: str | None = None,
    timestamp: int | str | None = None,
) -> JSON:
    """A customer's image: reference/messages/image. The media is fetched by `id` later.

    `sha256` defaults to a base64 SHA-256 as Meta gives; `caption` is left out when None.
    """
    image: dict[str, str] = {}
    if caption is not None:
        image["caption"] = caption
    image["mime_type"] = mime_type
    image["sha256"] = (
        sha256 or base64.b64encode(hashlib.sha256(media_id.encode()).digest()).decode()
    )
    image["id"] = media_id
    return _inbound(
        {"type": "image", "image": image},
        context_id=context_id,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        wa_id=wa_id,
        profile_name=profile_name,
        wamid=wamid,
        timestamp=timestamp,
    )


def reaction_message(
    message_id: str,
    emoji: str | None = "\N{THUMBS UP SIGN}",
    *,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    wa_id: str = CUSTOMER_WA_ID,
    profile_name: str = CUSTOMER_NAME,
    wamid: str | None = None,
    timestamp: int | str | None = None,
) -> JSON:
    """A reaction to the business's message `message_id`: reference/messages/reaction.

    `emoji=None` is a removed reaction: Meta then sends the reaction without an `emoji` field.
    """
    reaction: dict[str, str] = {"message_id": message_id}
    if emoji is not None:
        reaction["emoji"] = emoji
    return _inbound(
        {"type": "reaction", "reaction": reaction},
        context_id=None,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        wa_id=wa_id,
        profile_name=profile_name,
        wamid=wamid,
        timestamp=timestamp,
    )


def unsupported_message(
    *,
    unsupported_type: str | None = None,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    wa_id: str = CUSTOMER_WA_ID,
    profile_name: str = CUSTOMER_NAME,
    wamid: str | None = None,
    timestamp: int | str | None = None,
) -> JSON:
    """A message the Cloud API cannot pass on: reference/messages/unsupported.

    `type: "unsupported"` with error 131051; newer versions add `unsupported.type` (e.g.
    "edit", "poll"), set by `unsupported_type`.
    """
    fields: dict[str, Any] = {
        "type": "unsupported",
        "errors": [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }
        ],
    }
    if unsupported_type is not None:
        fields["unsupported"] = {"type": unsupported_type}
    return _inbound(
        fields,
        context_id=None,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        wa_id=wa_id,
        profile_name=profile_name,
        wamid=wamid,
        timestamp=timestamp,
    )


# Statuses of the business's messages (field "messages", value.statuses[]).

UNDELIVERABLE_ERROR: JSON = {
    "code": 131026,
    "title": "Message undeliverable",
    "message": "Message undeliverable",
    "error_data": {"details": "Message Undeliverable."},
    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
}


def status_update(
    wamid: str,
    status: StatusName,
    *,
    recipient_id: str = CUSTOMER_WA_ID,
    timestamp: int | str | None = None,
    errors: list[JSON] | None = None,
    pricing_category: str = "utility",
    conversation_id: str | None = None,
    waba_id: str = WABA_ID,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
) -> JSON:
    """A sent/delivered/read/failed status of the business's message `wamid`.

    Mirrors reference/messages/status: `sent` and `delivered` carry `conversation` (with
    `expiration_timestamp` on `sent` only) and `pricing`; `failed` carries `errors`, by default
    131026 "Message undeliverable".
    """
    stamp = _timestamp(timestamp)
    entry: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": stamp,
        "recipient_id": recipient_id,
    }
    if status in ("sent", "delivered"):
        conversation: dict[str, Any] = {"id": conversation_id or secrets.token_hex(16)}
        if status == "sent":
            conversation["expiration_timestamp"] = str(int(stamp) + 24 * 60 * 60)
        conversation["origin"] = {"type": pricing_category}
        entry["conversation"] = conversation
        entry["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": pricing_category,
        }
    if status == "failed" or errors is not None:
        entry["errors"] = copy.deepcopy(errors if errors is not None else [UNDELIVERABLE_ERROR])
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(display_phone_number, phone_number_id),
        "statuses": [entry],
    }
    return _envelope(waba_id, "messages", value)


# Other fields.


def template_status_update(
    event: TemplateEvent,
    message_template_id: int | str,
    name: str,
    language: str = "en_US",
    reason: str | None = "NONE",
    *,
    category: str | None = None,
    waba_id: str = WABA_ID,
    time_seconds: int | None = None,
) -> JSON:
    """A template's review result: field `message_template_status_update`.

    Mirrors reference/message_template_status_update. Meta sends the template id as a number;
    a numeric string given here is sent as a number too. `reason` is "NONE" when there is none;
    a rejection gives e.g. "INCORRECT_CATEGORY". `category` adds `message_template_category`.
    """
    template_id: int | str = (
        int(message_template_id)
        if isinstance(message_template_id, str) and message_template_id.isdigit()
        else message_template_id
    )
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
    }
    if category is not None:
        value["message_template_category"] = category
    payload = _envelope(waba_id, "message_template_status_update", value)
    payload["entry"][0]["time"] = time_seconds if time_seconds is not None else int(time.time())
    return payload


def unknown_field(field_name: str, value: Any, *, waba_id: str = WABA_ID) -> JSON:
    """A change of a field the adapter does not handle (e.g. `account_update`), as Meta wraps it."""
    return _envelope(waba_id, field_name, copy.deepcopy(value))


def batch(*notifications: JSON) -> JSON:
    """Several notifications in one envelope, as Meta batches them.

    Entries of the same WABA become one entry; within it, `messages` changes for the same phone
    number become one change whose `messages`, `statuses` and `errors` are concatenated and whose
    `contacts` are merged by `wa_id`. Other changes are kept as they are, in order.
    """
    entries: dict[str, dict[str, Any]] = {}
    for notification in notifications:
        if notification.get("object") != "whatsapp_business_account":
            raise ValueError("not a WhatsApp Business Account notification")
        for entry in copy.deepcopy(notification["entry"]):
            merged = entries.setdefault(entry["id"], {"id": entry["id"], "changes": []})
            if "time" in entry:
                merged["time"] = entry["time"]
            for change in entry["changes"]:
                _merge_change(merged["changes"], change)
    return {"object": "whatsapp_business_account", "entry": list(entries.values())}


def _merge_change(changes: list[dict[str, Any]], change: dict[str, Any]) -> None:
    value = change["value"]
    if change["field"] == "messages":
        for existing in changes:
            existing_value = existing["value"]
            if existing["field"] == "messages" and existing_value.get("metadata") == value.get(
                "metadata"
            ):
                for key in ("messages", "statuses", "errors"):
                    if key in value:
                        existing_value.setdefault(key, []).extend(value[key])
                if "contacts" in value:
                    contacts = existing_value.setdefault("contacts", [])
                    known = {contact["wa_id"] for contact in contacts}
                    contacts.extend(c for c in value["contacts"] if c["wa_id"] not in known)
                return
    changes.append(change)


def _inbound(
    fields: dict[str, Any],
    *,
    context_id: str | None,
    waba_id: str,
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    profile_name: str,
    wamid: str | None,
    timestamp: int | str | None,
) -> JSON:
    message: dict[str, Any] = {}
    if context_id is not None:
        message["context"] = {"from": display_phone_number, "id": context_id}
    message["from"] = wa_id
    message["id"] = wamid or new_wamid(wa_id)
    message["timestamp"] = _timestamp(timestamp)
    message.update(copy.deepcopy(fields))
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(display_phone_number, phone_number_id),
        "contacts": [{"profile": {"name": profile_name}, "wa_id": wa_id}],
        "messages": [message],
    }
    return _envelope(waba_id, "messages", value)


def _metadata(display_phone_number: str, phone_number_id: str) -> dict[str, str]:
    return {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}


def _envelope(waba_id: str, field: str, value: Any) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": value, "field": field}]}],
    }


def _timestamp(timestamp: int | str | None) -> str:
    if timestamp is None:
        return str(int(time.time()))
    text = str(timestamp)
    if not text.isdigit():
        raise ValueError(f"timestamp {timestamp!r} is not Unix seconds")
    return text
