"""A local stand-in for Meta's Graph API (WhatsApp Cloud API), a real HTTP server on 127.0.0.1.

It is a `WebhookReceiver` (tests/webhook_receiver.py) with a responder that speaks Graph's
formats: the adapter under test is pointed at `graph.url` instead of https://graph.facebook.com.

    with FakeGraph() as graph:
        ... configure the channel with graph_base_url=graph.url, token ACCESS_TOKEN ...
        graph.fail_next(429, 130429, "Rate limit hit", retry_after=2)
        ... send ...
        [send] = graph.wait_for_sends(1)
        assert send.body["template"]["name"] == "order_update"

Endpoints (any `vNN.N` version; the Authorization header must be `Bearer <access_token>`):
- `POST /{version}/{phone_number_id}/messages`: text and template sends.
- `POST /{version}/{waba_id}/message_templates`: create a template (status PENDING).
- `GET /{version}/{waba_id}/message_templates?limit=&after=`: list templates, cursor paging.
Requests to a phone number or WABA id it was not told about get Graph's "object does not
exist" error. Errors have Graph's shape: {"error": {"message", "type", "code", ...}}.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode

from tests.webhook_receiver import Answer, Received, WebhookReceiver
from tests.whatsapp_payloads import PHONE_NUMBER_ID, WABA_ID, new_wamid

ACCESS_TOKEN = "EAAGfake-graph-token"
API_VERSION = "v21.0"

Endpoint: TypeAlias = Literal["messages", "message_templates"]
TemplateStatus: TypeAlias = Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"]

_VERSION = re.compile(r"v\d+\.\d+")
_TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TEMPLATE_CATEGORIES = ("AUTHENTICATION", "MARKETING", "UTILITY")
_TEXT_BODY_MAX = 4096
_DEFAULT_PAGE_SIZE = 25
_MAX_PAGE_SIZE = 1000
_JSON_HEADERS = {"content-type": "application/json; charset=UTF-8"}


@dataclass(frozen=True, slots=True)
class GraphSend:
    """One accepted `POST .../messages`: the parsed body and the wamid Graph answered."""

    phone_number_id: str
    body: dict[str, Any]
    wamid: str
    api_version: str

    @property
    def to(self) -> str:
        return str(self.body["to"])

    @property
    def type(self) -> str:
        return str(self.body.get("type", "text"))  # Graph defaults the type to text


@dataclass(frozen=True, slots=True)
class GraphTemplate:
    """A message template as it exists on a WABA."""

    waba_id: str
    id: str  # numeric, as a string
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]] = field(default_factory=list)
    parameter_format: str | None = None
    rejected_reason: str | None = None

    def as_graph(self) -> dict[str, Any]:
        """The template as `GET .../message_templates` lists it."""
        listed: dict[str, Any] = {
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
            "components": json.loads(json.dumps(self.components)),
        }
        if self.parameter_format is not None:
            listed["parameter_format"] = self.parameter_format
        if self.rejected_reason is not None:
            listed["rejected_reason"] = self.rejected_reason
        return listed


@dataclass(slots=True)
class _Fault:
    endpoint: Endpoint | None
    answer: Answer | None  # None: the normal answer, only delayed or dropped
    delay_seconds: float
    drop_connection: bool
    remaining: int


def graph_error(
    code: int,
    message: str,
    *,
    error_type: str = "OAuthException",
    error_subcode: int | None = None,
    details: str | None = None,
    error_user_msg: str | None = None,
) -> dict[str, Any]:
    """Graph's error body. `details` adds WhatsApp's `error_data` (WhatsApp-specific codes)."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if error_subcode is not None:
        error["error_subcode"] = error_subcode
    if error_user_msg is not None:
        error["error_user_msg"] = error_user_msg
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)[:22]
    return {"error": error}


class FakeGraph:
    def __init__(
        self,
        *,
        access_token: str = ACCESS_TOKEN,
        phone_number_ids: Iterable[str] = (PHONE_NUMBER_ID,),
        waba_ids: Iterable[str] = (WABA_ID,),
        check_templates: bool = False,
    ) -> None:
        """Serve at once, on a free port.

        `check_templates`: a template send must name a template added or created here (any
        WABA) with that language and status APPROVED, else Graph's 132001/132015/132016 errors.
        """
        self.access_token = access_token
        self.phone_number_ids = frozenset(phone_number_ids)
        self.waba_ids = frozenset(waba_ids)
        self.check_templates = check_templates
        self._changed = threading.Condition()
        self._sends: list[GraphSend] = []
        self._faults: list[_Fault] = []
        self._templates: dict[str, list[GraphTemplate]] = {waba: [] for waba in self.waba_ids}
        self._template_ids = itertools.count(1_384_250_000_000_001)
        self._receiver = WebhookReceiver(responder=self._respond)
        self.port = self._receiver.port
        self.url = self._receiver.url

    # Inspecting what arrived.

    @property
    def sends(self) -> list[GraphSend]:
        """Accepted sends so far, oldest first (a copy). Refused sends are not in it."""
        with self._changed:
            return list(self._sends)

    @property
    def received(self) -> list[Received]:
        """Every request that arrived, refused or not, with method, path, query and headers."""
        return self._receiver.received

    def wait_for_sends(self, count: int, timeout: float = 5.0) -> list[GraphSend]:
        """Block until at least `count` sends were accepted; return them all (a copy)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._sends) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} send(s) to the fake Graph within {timeout} s, got "
                        f"{len(self._sends)}; requests: {self._describe_requests()}"
                    )
                self._changed.wait(remaining)
            return list(self._sends)

    async def wait_for_sends_async(self, count: int, timeout: float = 5.0) -> list[GraphSend]:
        """`wait_for_sends` for a test running its own event loop."""
        return await asyncio.to_thread(self.wait_for_sends, count, timeout)

    def clear(self) -> None:
        """Forget sends and requests; templates and scripted failures stay."""
        with self._changed:
            self._sends.clear()
        self._receiver.clear()

    # Scripting failures.

    def fail_next(
        self,
        status: int,
        code: int,
        title: str,
        *,
        times: int = 1,
        details: str | None = None,
        error_subcode: int | None = None,
        error_type: str = "OAuthException",
        retry_after: int | None = None,
        endpoint: Endpoint | None = "messages",
        delay_seconds: float = 0.0,
    ) -> None:
        """Answer the next `times` requests to `endpoint` (None: any) with a Graph error.

        The message reads "(#code) title", as Graph's do; `details` (default: `title`) goes in
        `error_data.details`. E.g. (429, 130429, "Rate limit hit"), (500, 131000, "Something
        went wrong"), (400, 131026, "Message undeliverable"), (400, 100, "Invalid parameter").
        Scripted failures are used first in, first out, before the token is checked.
        """
        body = graph_error(
            code,
            f"(#{code}) {title}",
            error_type=error_type,
            error_subcode=error_subcode,
            details=title if details is None else details,
        )
        headers = dict(_JSON_HEADERS)
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        answer = Answer(status, _encode(body), headers)
        self._add_fault(_Fault(endpoint, answer, delay_seconds, False, times))

    def delay_next(
        self, seconds: float, *, times: int = 1, endpoint: Endpoint | None = "messages"
    ) -> None:
        """Hold back the normal answer to the next `times` requests to `endpoint` (timeouts).

        The request is still handled: a delayed send is recorded in `sends` when it arrives.
        """
        self._add_fault(_Fault(endpoint, None, seconds, False, times))

    def drop_next(
        self,
        *,
        times: int = 1,
        endpoint: Endpoint | None = "messages",
        delay_seconds: float = 0.0,
    ) -> None:
        """Close the connection without answering the next `times` requests to `endpoint`.

        The request is not handled: a dropped send is not in `sends`.
        """
        self._add_fault(_Fault(endpoint, None, delay_seconds, True, times))

    # Templates on the WABA.

    def add_template(
        self,
        name: str,
        language: str = "en_US",
        *,
        category: str = "UTILITY",
        status: TemplateStatus = "APPROVED",
        components: list[dict[str, Any]] | None = None,
        parameter_format: str | None = None,
        waba_id: str = WABA_ID,
        template_id: str | None = None,
    ) -> GraphTemplate:
        """Put a template on the WABA directly, as if made in WhatsApp Manager."""
        template = GraphTemplate(
            waba_id=waba_id,
            id=template_id or str(next(self._template_ids)),
            name=name,
            language=language,
            category=category,
            status=status,
            components=_copy_json(components or [{"type": "BODY", "text": f"{name} body"}]),
            parameter_format=parameter_format,
        )
        with self._changed:
            if self._find(waba_id, name, language) is not None:
                raise ValueError(f"{name}/{language} is already on WABA {waba_id}")
            self._templates.setdefault(waba_id, []).append(template)
        return template

    def set_template_status(
        self,
        name: str,
        language: str,
        status: TemplateStatus,
        reason: str | None = None,
        *,
        waba_id: str = WABA_ID,
    ) -> GraphTemplate:
        """Finish (or redo) a template's review; `reason` is listed as `rejected_reason`.

        Returns the template, whose `id` a `template_status_update` webhook needs.
        """
        with self._changed:
            found = self._find(waba_id, name, language)
            if found is None:
                raise KeyError(f"no template {name}/{language} on WABA {waba_id}")
            index, template = found
            updated = replace(template, status=status, rejected_reason=reason)
            self._templates[waba_id][index] = updated
            return updated

    def templates(self, waba_id: str = WABA_ID) -> list[GraphTemplate]:
        """The WABA's templates, oldest first."""
        with self._changed:
            return list(self._templates.get(waba_id, []))

    def template(self, name: str, language: str = "en_US", waba_id: str = WABA_ID) -> GraphTemplate:
        with self._changed:
            found = self._find(waba_id, name, language)
        if found is None:
            raise KeyError(f"no template {name}/{language} on WABA {waba_id}")
        return found[1]

    # Lifetime.

    def close(self) -> None:
        self._receiver.close()

    def __enter__(self) -> FakeGraph:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # The responder, on the receiver's thread.

    def _respond(self, request: Received) -> Answer:
        parts = request.path.split("/")
        if len(parts) != 4 or parts[0] or not _VERSION.fullmatch(parts[1]):
            return _error(
                400, 100, f"Unknown path components: {request.path}", details=None, subcode=None
            )
        _, version, object_id, edge = parts
        if edge not in ("messages", "message_templates"):
            return _error(400, 100, f"Unknown path components: /{edge}", details=None, subcode=None)
        endpoint: Endpoint = "messages" if edge == "messages" else "message_templates"

        fault = self._take_fault(endpoint)
        if fault is not None and fault.answer is not None:
            return fault.answer._replace(delay_seconds=fault.delay_seconds)
        if fault is not None and fault.drop_connection:
            return Answer(0, delay_seconds=fault.delay_seconds, drop_connection=True)
        answer = self._handle(request, version, object_id, endpoint)
        if fault is not None:
            return answer._replace(delay_seconds=fault.delay_seconds)
        return answer

    def _handle(
        self, request: Received, version: str, object_id: str, endpoint: Endpoint
    ) -> Answer:
        refused = self._check_token(request.headers.get("authorization"))
        if refused is not None:
            return refused
        known = self.phone_number_ids if endpoint == "messages" else self.waba_ids
        allowed_methods = ("POST",) if endpoint == "messages" else ("POST", "GET")
        if object_id not in known or request.method not in allowed_methods:
            return _error(
                400,
                100,
                f"Unsupported {request.method.lower()} request. Object with ID '{object_id}' "
                "does not exist, cannot be loaded due to missing permissions, or does not "
                "support this operation. Please read the Graph API documentation at "
                "https://developers.facebook.com/docs/graph-api",
                details=None,
                subcode=33,
                error_type="GraphMethodException",
            )
        if endpoint == "message_templates" and request.method == "GET":
            return self._list_templates(request, object_id)
        body = _parse_json_object(request.body)
        if body is None:
            return _error(400, 100, "(#100) Invalid parameter", details="Body is not a JSON object")
        if endpoint == "messages":
            return self._send(body, object_id, version)
        return self._create_template(body, object_id)

    def _check_token(self, authorization: str | None) -> Answer | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), self.access_token.encode()
        ):
            return None
        message = (
            "Invalid OAuth access token - Cannot parse access token"
            if authorization
            else "An access token is required to request this resource."
        )
        answer = _error(401, 190, message, details=None, subcode=None)
        headers = {
            **answer.headers,
            "www-authenticate": f'OAuth "Facebook Platform" "invalid_token" "{message}"',
        }
        return answer._replace(headers=headers)

    def _send(self, body: dict[str, Any], phone_number_id: str, version: str) -> Answer:
        problem = _send_problem(body)
        if problem is not None:
            return _error(400, 100, f"(#100) {problem}", details=problem)
        kind = body.get("type", "text")
        if kind == "template" and self.check_templates:
            refused = self._check_template_send(body["template"])
            if refused is not None:
                return refused
        to = str(body["to"])
        digits = "".join(character for character in to if character.isdigit())
        wamid = new_wamid(digits)
        with self._changed:
            self._sends.append(GraphSend(phone_number_id, _copy_json(body), wamid, version))
            self._changed.notify_all()
        message: dict[str, str] = {"id": wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": digits}],
            "messages": [message],
        }
        return Answer(200, _encode(answer), _JSON_HEADERS)

    def _check_template_send(self, template: dict[str, Any]) -> Answer | None:
        name, language = template["name"], template["language"]["code"]
        with self._changed:
            candidates = [
                found
                for waba_id in self._templates
                if (found := self._find(waba_id, name, language)) is not None
            ]
        statuses = {found[1].status for found in candidates}
        if "APPROVED" in statuses:
            return None
        if "PAUSED" in statuses:
            return _error(400, 132015, "(#132015) Template is Paused", details=f"{name} is paused")
        if "DISABLED" in statuses:
            return _error(
                400, 132016, "(#132016) Template is disabled", details=f"{name} is disabled"
            )
        return _error(
            404,
            132001,
            "(#132001) Template name does not exist in the translation",
            details=f"template name ({name}) does not exist in {language}",
        )

    def _create_template(self, body: dict[str, Any], waba_id: str) -> Answer:
        name, language = body.get("name"), body.get("language")
        category, components = body.get("category"), body.get("components")
        problem: str | None = None
        if not isinstance(name, str) or not _TEMPLATE_NAME.fullmatch(name) or len(name) > 512:
            problem = "name must match ^[a-z][a-z0-9_]*$ and be at most 512 characters"
        elif not isinstance(language, str) or not language:
            problem = "language is required"
        elif category not in _TEMPLATE_CATEGORIES:
            problem = f"category must be one of {', '.join(_TEMPLATE_CATEGORIES)}"
        elif not isinstance(components, list) or not any(
            isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY"
            for component in components
        ):
            problem = "components must include a BODY component"
        if problem is not None:
            return _error(
                400, 100, "Invalid parameter", details=None, subcode=None, user_message=problem
            )
        assert isinstance(name, str) and isinstance(language, str) and isinstance(category, str)
        assert isinstance(components, list)
        format_ = body.get("parameter_format")
        with self._changed:
            if self._find(waba_id, name, language) is not None:
                return _error(
                    400,
                    100,
                    "Invalid parameter",
                    details=None,
                    subcode=2388024,
                    user_message=f"Content in this language already exists for {name}",
                )
            template = GraphTemplate(
                waba_id=waba_id,
                id=str(next(self._template_ids)),
                name=name,
                language=language,
                category=category,
                status="PENDING",
                components=_copy_json(components),
                parameter_format=format_ if isinstance(format_, str) else None,
            )
            self._templates.setdefault(waba_id, []).append(template)
        created = {"id": template.id, "status": template.status, "category": template.category}
        return Answer(200, _encode(created), _JSON_HEADERS)

    def _list_templates(self, request: Received, waba_id: str) -> Answer:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        limit_text = params.get("limit", str(_DEFAULT_PAGE_SIZE))
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= _MAX_PAGE_SIZE:
            return _error(400, 100, "(#100) Param limit must be a positive integer", details=None)
        limit = int(limit_text)
        start = 0
        if "after" in params:
            position = _cursor_position(params["after"])
            if position is None:
                return _error(400, 100, "(#100) Invalid cursor: after", details=None)
            start = position + 1
        with self._changed:
            templates = list(self._templates.get(waba_id, []))
        page = templates[start : start + limit]
        listed: dict[str, Any] = {"data": [template.as_graph() for template in page]}
        if page:
            last = start + len(page) - 1
            paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(last)}}
            if last + 1 < len(templates):
                following = {**params, "limit": str(limit), "after": _cursor(last)}
                paging["next"] = f"{self.url}{request.path}?{urlencode(following)}"
            if start > 0:
                preceding = {key: value for key, value in params.items() if key != "after"}
                preceding["before"] = _cursor(start)
                paging["previous"] = f"{self.url}{request.path}?{urlencode(preceding)}"
            listed["paging"] = paging
        return Answer(200, _encode(listed), _JSON_HEADERS)

    # Helpers under the lock.

    def _find(self, waba_id: str, name: str, language: str) -> tuple[int, GraphTemplate] | None:
        for index, template in enumerate(self._templates.get(waba_id, [])):
            if (template.name, template.language) == (name, language):
                return index, template
        return None

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        with self._changed:
            self._faults.append(fault)

    def _take_fault(self, endpoint: Endpoint) -> _Fault | None:
        with self._changed:
            for index, fault in enumerate(self._faults):
                if fault.endpoint is None or fault.endpoint == endpoint:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        del self._faults[index]
                    return fault
            return None

    def _describe_requests(self) -> str:
        return (
            ", ".join(f"{request.method} {request.path}" for request in self._receiver.received)
            or "none"
        )


def _send_problem(body: dict[str, Any]) -> str | None:
    """What Graph would refuse in a send body, in its words; None if it is acceptable."""
    product = body.get("messaging_product")
    if product is None:
        return "The parameter messaging_product is required."
    if product != "whatsapp":
        return f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".'
    to = body.get("to")
    if not isinstance(to, str) or not to:
        return "The parameter to is required."
    kind = body.get("type", "text")  # Graph defaults type to text
    if kind == "text":
        text = body.get("text")
        text_body = text.get("body") if isinstance(text, dict) else None
        if not isinstance(text_body, str) or not text_body:
            return "The parameter text['body'] is required."
        if len(text_body) > _TEXT_BODY_MAX:
            return f"Param text['body'] must be at most {_TEXT_BODY_MAX} characters long."
        return None
    if kind == "template":
        template = body.get("template")
        if not isinstance(template, dict) or not template.get("name"):
            return "The parameter template['name'] is required."
        language = template.get("language")
        if not isinstance(language, dict) or not language.get("code"):
            return "The parameter template['language']['code'] is required."
        return None
    # The fake accepts only the types chatflow sends; Graph itself knows many more.
    return f'Param type must be one of {{TEXT, TEMPLATE}} - got "{kind}".'


def _error(
    status: int,
    code: int,
    message: str,
    *,
    details: str | None,
    subcode: int | None = None,
    error_type: str = "OAuthException",
    user_message: str | None = None,
) -> Answer:
    body = graph_error(
        code,
        message,
        error_type=error_type,
        error_subcode=subcode,
        details=details,
        error_user_msg=user_message,
    )
    return Answer(status, _encode(body), _JSON_HEADERS)


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"tpl:{position}".encode()).decode("ascii")


def _cursor_position(cursor: str) -> int | None:
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    prefix, _, number = decoded.partition(":")
    return int(number) if prefix == "tpl" and number.isdigit() else None


def _parse_json_object(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _copy_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _encode(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
