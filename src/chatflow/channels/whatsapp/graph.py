"""Meta's Graph API, as the WhatsApp channel uses it: send messages, submit and list templates.

The base URL is the operator's setting (`CHATFLOW_WHATSAPP_GRAPH_BASE_URL`, Meta's by default; the
tests point it at a local stand-in), the API version and ids are each channel's. Not a channel
setting: an organization admin must not be able to send the channel's access token elsewhere.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from chatflow.channels.base import Refused, SendOutcome, Sent, TryAgain
from chatflow.domain.models import Channel, Contact, JsonObject, Message, MessageKind

log = logging.getLogger(__name__)

DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com"

# Graph error codes that mean "not now" rather than "never": throttling and transient errors.
_TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131056, 133004})
_MAX_ERROR_TEXT = 500


class GraphError(Exception):
    """The Graph API refused a request; `error` is its reason, as chatflow records it."""

    def __init__(self, error: JsonObject, *, transient: bool) -> None:
        super().__init__(error.get("title") or error.get("message") or "Graph API error")
        self.error = error
        self.transient = transient


class GraphClient:
    def __init__(self, base_url: str, *, timeout_seconds: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=64)
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        version: str,
        path: str,
        token: str,
        *,
        body: JsonObject | None = None,
        params: dict[str, str] | None = None,
        url: str | None = None,
    ) -> tuple[JsonObject, dict[str, str]]:
        """One Graph request; returns the JSON answer and its headers, or raises `GraphError`."""
        target = url or f"{self._base_url}/{version}/{path}"
        if not target.startswith(self._base_url + "/"):
            # A paging link is followed with the access token: only to the Graph API itself.
            raise GraphError(
                {"code": "foreign_link", "title": "A link outside the Graph API was not followed"},
                transient=False,
            )
        try:
            async with self._client().request(
                method,
                target,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                allow_redirects=False,
            ) as response:
                text = await response.text()
                headers = dict(response.headers)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphError(
                {"code": "network", "title": "Graph API unreachable", "message": str(exc)[:200]},
                transient=True,
            ) from exc
        try:
            answer: Any = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if 200 <= status < 300 and isinstance(answer, dict):
            return answer, headers
        raise _graph_error(status, answer, headers)


def _graph_error(status: int, answer: Any, headers: dict[str, str]) -> GraphError:
    raw = answer.get("error") if isinstance(answer, dict) else None
    raw = raw if isinstance(raw, dict) else {}
    details = raw.get("error_data")
    code = raw.get("code")
    error: JsonObject = {
        "code": code,
        "title": str(raw.get("error_user_title") or raw.get("type") or f"HTTP {status}")[
            :_MAX_ERROR_TEXT
        ],
        "message": str(raw.get("message") or "")[:_MAX_ERROR_TEXT],
        "details": details.get("details") if isinstance(details, dict) else None,
        "http_status": status,
    }
    if raw.get("error_subcode") is not None:
        error["subcode"] = raw["error_subcode"]
    if headers.get("Retry-After", "").isdigit():
        error["retry_after_seconds"] = int(headers["Retry-After"])
    transient = status == 429 or status >= 500 or code in _TRANSIENT_CODES
    return GraphError(error, transient=transient)


class WhatsAppTransport:
    """Sends chatflow's outbound messages as Cloud API messages."""

    def __init__(self, client: GraphClient) -> None:
        self._client = client

    async def send(
        self, channel: Channel, secrets: JsonObject, contact: Contact, message: Message
    ) -> SendOutcome:
        if contact.phone is None:
            return Refused({"code": "no_phone", "title": "The contact has no phone number"})
        try:
            answer, _ = await self._client.call(
                "POST",
                str(channel.config["graph_api_version"]),
                f"{channel.config['phone_number_id']}/messages",
                str(secrets.get("access_token", "")),
                body=message_body(contact.phone, message),
            )
        except GraphError as exc:
            if exc.transient:
                retry_after = exc.error.get("retry_after_seconds")
                return TryAgain(exc.error, None if retry_after is None else retry_after * 1000)
            return Refused(exc.error)
        messages = answer.get("messages")
        wamid = messages[0].get("id") if isinstance(messages, list) and messages else None
        if not isinstance(wamid, str) or not wamid:
            return TryAgain({"code": "bad_answer", "title": "Graph API answered without an id"})
        return Sent(wamid)

    async def aclose(self) -> None:
        await self._client.aclose()


def message_body(phone: str, message: Message) -> JsonObject:
    """The Cloud API request for `message` to the customer at `phone` (E.164)."""
    to = phone.removeprefix("+")
    base: JsonObject = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if message.kind is not MessageKind.TEMPLATE or message.template is None:
        return {**base, "type": "text", "text": {"preview_url": False, "body": message.text}}
    template = message.template
    variables = template.get("variables") or {}
    components: list[JsonObject] = []
    if variables.get("header"):
        components.append({"type": "header", "parameters": _texts(variables["header"])})
    if variables.get("body"):
        components.append({"type": "body", "parameters": _texts(variables["body"])})
    button_values = variables.get("buttons") or {}
    for button in template.get("buttons") or []:
        index = button["index"]
        if button["type"] == "QUICK_REPLY":
            # The payload names this message and the button: a tap comes back with it (R6).
            parameters = [{"type": "payload", "payload": button["payload"]}]
            components.append(_button("quick_reply", index, parameters))
        elif button["type"] == "URL" and button_values.get(str(index)):
            components.append(_button("url", index, _texts(button_values[str(index)])))
        elif button["type"] == "COPY_CODE" and button_values.get(str(index)):
            code = button_values[str(index)][0]
            components.append(
                _button("copy_code", index, [{"type": "coupon_code", "coupon_code": code}])
            )
    return {
        **base,
        "type": "template",
        "template": {
            "name": template["name"],
            "language": {"policy": "deterministic", "code": template["language"]},
            "components": components,
        },
    }


def _texts(values: list[str]) -> list[JsonObject]:
    return [{"type": "text", "text": value} for value in values]


def _button(sub_type: str, index: int, parameters: list[JsonObject]) -> JsonObject:
    return {"type": "button", "sub_type": sub_type, "index": str(index), "parameters": parameters}
