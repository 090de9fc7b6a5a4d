"""What Meta's webhook notifications say, read into plain values (no database, no HTTP).

Meta posts `{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes":
[{"field": ..., "value": ...}]}]}`, batching several messages and statuses into one call. Reading
never raises: what does not have a documented shape becomes an `Unhandled` part, kept with the
stored notification and logged, so that one odd part neither loses the others nor makes Meta
retry forever.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeGuard

MAX_NAME_LENGTH = 128
MAX_TEXT_LENGTH = 4096

_MEDIA = ("image", "video", "audio", "document", "sticker")
_STATUSES = ("sent", "delivered", "read", "failed")


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """A message the customer sent: text, a tap, an interactive reply, or anything else."""

    phone_number_id: str
    wamid: str
    wa_id: str
    profile_name: str | None
    timestamp_ms: int
    type: str
    text: str
    button_payload: str | None = None
    """For a tap on a template quick reply: the payload chatflow set when sending. For an
    interactive reply: the id of the reply button or list row."""
    button_text: str | None = None
    context_id: str | None = None
    """The wamid of the message replied to or tapped on."""


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Delivery progress of a message we sent: sent, delivered, read or failed."""

    phone_number_id: str
    wamid: str
    status: str
    timestamp_ms: int
    recipient_id: str | None
    error: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TemplateReview:
    """Meta's verdict on a template: `message_template_status_update`."""

    event: str
    template_id: str | None
    name: str | None
    language: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Unhandled:
    pointer: str
    """Where in the notification, as a JSON pointer."""
    reason: str


Part = CustomerMessage | StatusReport | TemplateReview | Unhandled


def read_notification(payload: Any) -> list[Part]:
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return [Unhandled("", "not a whatsapp_business_account notification")]
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return [Unhandled("/entry", "no list of entries")]
    parts: list[Part] = []
    for e, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            parts.append(Unhandled(f"/entry/{e}", "no list of changes"))
            continue
        for c, change in enumerate(changes):
            pointer = f"/entry/{e}/changes/{c}"
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                parts.append(Unhandled(pointer, "a change without a value"))
            elif change.get("field") == "messages":
                parts.extend(_messages_change(change["value"], pointer + "/value"))
            elif change.get("field") == "message_template_status_update":
                parts.append(_template_review(change["value"], pointer + "/value"))
            else:
                parts.append(Unhandled(pointer, f"field {str(change.get('field'))[:64]!r}"))
    return parts


def _messages_change(value: dict[str, Any], pointer: str) -> list[Part]:
    metadata = value.get("metadata")
    phone_number_id = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    if not isinstance(phone_number_id, str):
        return [Unhandled(pointer + "/metadata", "no phone_number_id")]
    names: dict[str, str] = {}
    for contact in _list(value.get("contacts")):
        profile = contact.get("profile") if isinstance(contact, dict) else None
        name = profile.get("name") if isinstance(profile, dict) else None
        if isinstance(contact, dict) and isinstance(contact.get("wa_id"), str) and _text(name):
            names[contact["wa_id"]] = name.strip()[:MAX_NAME_LENGTH]
    parts: list[Part] = []
    for i, message in enumerate(_list(value.get("messages"))):
        parts.append(_customer_message(message, phone_number_id, names, f"{pointer}/messages/{i}"))
    for i, status in enumerate(_list(value.get("statuses"))):
        parts.append(_status_report(status, phone_number_id, f"{pointer}/statuses/{i}"))
    for key in ("errors",):
        if value.get(key):
            parts.append(Unhandled(f"{pointer}/{key}", "errors reported by Meta for the change"))
    if not parts:
        parts.append(Unhandled(pointer, "neither messages nor statuses"))
    return parts


def _customer_message(
    message: Any, phone_number_id: str, names: dict[str, str], pointer: str
) -> Part:
    if not isinstance(message, dict):
        return Unhandled(pointer, "not an object")
    wamid, sender, kind = message.get("id"), message.get("from"), message.get("type")
    timestamp = _timestamp(message.get("timestamp"))
    if not (_text(wamid) and _text(sender) and _text(kind)) or timestamp is None:
        return Unhandled(pointer, "a message without id, from, type or timestamp")
    context = message.get("context")
    context_id = context.get("id") if isinstance(context, dict) else None
    base = CustomerMessage(
        phone_number_id=phone_number_id,
        wamid=wamid,
        wa_id=sender,
        profile_name=names.get(sender),
        timestamp_ms=timestamp,
        type=kind,
        text="",
        context_id=context_id if isinstance(context_id, str) else None,
    )
    body = message.get(kind)
    if kind == "text":
        text = body.get("body") if isinstance(body, dict) else None
        if not _text(text):
            return Unhandled(pointer, "a text message without a body")
        return replace(base, text=text[:MAX_TEXT_LENGTH])
    if kind == "button":
        # A tap on a quick-reply button of a template: the payload is the one we set.
        payload = body.get("payload") if isinstance(body, dict) else None
        label = body.get("text") if isinstance(body, dict) else None
        if not _text(label):
            return Unhandled(pointer, "a button message without text")
        return replace(
            base,
            text=label[:MAX_TEXT_LENGTH],
            button_payload=payload if isinstance(payload, str) else label,
            button_text=label,
        )
    if kind == "interactive" and isinstance(body, dict):
        reply = body.get(str(body.get("type")))
        if body.get("type") in ("button_reply", "list_reply") and isinstance(reply, dict):
            title, reply_id = reply.get("title"), reply.get("id")
            if _text(title) and isinstance(reply_id, str):
                return replace(
                    base,
                    text=title[:MAX_TEXT_LENGTH],
                    button_payload=reply_id,
                    button_text=title,
                )
        return Unhandled(pointer, f"an interactive {str(body.get('type'))[:32]!r} reply")
    # Media, locations, reactions and the rest are still the customer writing: free-flow
    # (it bumps, hands over and opens the window). Their content is described, not fetched.
    return replace(base, text=_describe(kind, body))


def _describe(kind: str, body: Any) -> str:
    detail = ""
    if isinstance(body, dict):
        if kind in _MEDIA:
            detail = str(body.get("caption") or body.get("filename") or "")
        elif kind == "location":
            detail = " ".join(str(body.get(k)) for k in ("name", "address") if body.get(k))
            if not detail:
                detail = f"{body.get('latitude')}, {body.get('longitude')}"
        elif kind == "reaction":
            detail = str(body.get("emoji") or "")
    label = f"[{kind[:32]}]"
    return (f"{label} {detail}" if detail else label)[:MAX_TEXT_LENGTH]


def _status_report(status: Any, phone_number_id: str, pointer: str) -> Part:
    if not isinstance(status, dict):
        return Unhandled(pointer, "not an object")
    wamid, state = status.get("id"), status.get("status")
    timestamp = _timestamp(status.get("timestamp"))
    if not _text(wamid) or state not in _STATUSES or timestamp is None:
        return Unhandled(pointer, f"a status {str(state)[:32]!r} without id or timestamp")
    error = None
    errors = _list(status.get("errors"))
    if state == "failed" or errors:
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        details = first.get("error_data")
        error = {
            "code": first.get("code"),
            "title": first.get("title"),
            "message": first.get("message"),
            "details": details.get("details") if isinstance(details, dict) else None,
        }
    recipient = status.get("recipient_id")
    return StatusReport(
        phone_number_id=phone_number_id,
        wamid=wamid,
        status=state,
        timestamp_ms=timestamp,
        recipient_id=recipient if isinstance(recipient, str) else None,
        error=error,
    )


def _template_review(value: dict[str, Any], pointer: str) -> Part:
    event = value.get("event")
    if not _text(event):
        return Unhandled(pointer, "a template status update without an event")
    template_id = value.get("message_template_id")
    name, language = value.get("message_template_name"), value.get("message_template_language")
    reason = value.get("reason")
    return TemplateReview(
        event=event.upper(),
        template_id=None if template_id is None else str(template_id),
        name=name if isinstance(name, str) else None,
        language=language if isinstance(language, str) else None,
        reason=reason if isinstance(reason, str) and reason != "NONE" else None,
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _timestamp(value: Any) -> int | None:
    """Meta's timestamps are Unix seconds, as a string."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return seconds * 1000 if seconds > 0 else None
