"""Test runs: the real interpreter against a simulated chatroom, with a frozen clock.

A test run reads the organization's templates, channels and agents (to fail as the real run
would), and writes nothing: its messages, contacts and chatrooms exist only in its answer. The
customer's replies and the HTTP answers are scripted; ids are numbered from the run's seed; time
starts at the given instant and moves only when the flow waits. The same input gives the same
output, byte for byte.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from chatflow.clock import iso
from chatflow.domain.access import Actor
from chatflow.domain.errors import DomainError, ValidationError
from chatflow.domain.flows.document import FlowDocument
from chatflow.domain.flows.interpreter import (
    ActionResult,
    Finished,
    JsonObject,
    Resume,
    RunState,
    Step,
    Waiting,
    advance,
    start,
)
from chatflow.domain.models import MessageFlags, TemplateStatus
from chatflow.domain.rules import window_expiry
from chatflow.domain.templates import TemplateVariables, parse_template, render_template
from chatflow.flows.effects import error_of
from chatflow.flows.worker import answer_of
from chatflow.services.messages import check_text
from chatflow.services.phones import normalise_phone
from chatflow.storage import accounts as account_store
from chatflow.storage import channels as channel_store
from chatflow.storage import templates as template_store
from chatflow.storage.database import Tx

MAX_TEST_ROUNDS = 1000


@dataclass(slots=True)
class _Chatroom:
    id: str
    contact_id: str
    channel_id: str
    window_open: bool
    opted_in: bool


@dataclass(slots=True)
class _World:
    """What the test run has done, as it would look."""

    tx: Tx
    org_id: str
    seed: str
    now: int
    chatrooms: dict[str, _Chatroom] = field(default_factory=dict)
    contacts: dict[str, str] = field(default_factory=dict)
    """phone → contact id"""
    transcript: list[JsonObject] = field(default_factory=list)
    effects: list[JsonObject] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def new_id(self, prefix: str) -> str:
        number = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = number
        return f"{prefix}_{self.seed}{number:04d}"

    def _chatroom(self, chatroom_id: str) -> _Chatroom:
        chatroom = self.chatrooms.get(chatroom_id)
        if chatroom is None:
            raise _RefusalError("not_found", f"No chatroom {chatroom_id} in this test run")
        return chatroom

    def _sent(self, chatroom: _Chatroom, kind: str, text: str, extra: JsonObject) -> ActionResult:
        message_id = self.new_id("msg")
        self.transcript.append(
            {
                "at": iso(self.now),
                "chatroom_id": chatroom.id,
                "direction": "outbound",
                "sender": "bot",
                "kind": kind,
                "message_id": message_id,
                "text": text,
                **extra,
            }
        )
        self.effects.append(
            {"type": "message.sent", "chatroom_id": chatroom.id, "message_id": message_id}
        )
        return ActionResult("sent", {"message_id": message_id})

    # -- Effects ----------------------------------------------------------------------------------

    def send_message(self, chatroom_id: str, text: str) -> ActionResult:
        try:
            check_text(text, "/message")
            chatroom = self._chatroom(chatroom_id)
        except (DomainError, _RefusalError) as exc:
            return _failed(exc)
        if not chatroom.window_open:
            return ActionResult(
                "window_closed",
                {},
                {
                    "code": "customer_window_closed",
                    "message": "The 24-hour customer service window is closed",
                },
            )
        return self._sent(chatroom, "text", text, {})

    def send_template(
        self,
        chatroom_id: str,
        template: str,
        language: str,
        variables: TemplateVariables,
        flags: MessageFlags,
    ) -> ActionResult:
        try:
            chatroom = self._chatroom(chatroom_id)
            if not chatroom.opted_in:
                raise _RefusalError("contact_not_opted_in", "The contact has not opted in")
            found = template_store.get_template_by_name(self.tx, self.org_id, template, language)
            if found is None:
                raise _RefusalError("template_not_found", f"No template {template!r} ({language})")
            if found.status is not TemplateStatus.APPROVED:
                raise _RefusalError(
                    "template_not_approved", f"Template {template!r} is not APPROVED"
                )
            definition = parse_template(
                found.name, found.language, found.category, found.components
            )
            rendered = render_template(definition, variables)
        except (DomainError, _RefusalError) as exc:
            return _failed(exc)
        buttons = [{"index": b.index, "text": b.text} for b in rendered.buttons]
        return self._sent(
            chatroom,
            "template",
            rendered.body,
            {
                "template": {"name": template, "language": language, "buttons": buttons},
                "relay_response": flags.relay_response,
                "bump": flags.bump,
                "bump_response": flags.bump_response,
            },
        )

    def create_contact(
        self, phone: str, first_name: str | None, last_name: str | None, opted_in: bool
    ) -> ActionResult:
        try:
            normalised = normalise_phone(phone)
        except (DomainError, _RefusalError) as exc:
            return _failed(exc)
        existing = self.contacts.get(normalised)
        if existing is not None:
            return ActionResult("existing", {"contact_id": existing})
        contact_id = self.new_id("ct")
        self.contacts[normalised] = contact_id
        self.effects.append(
            {
                "type": "contact.created",
                "contact_id": contact_id,
                "phone": normalised,
                "first_name": first_name,
                "last_name": last_name,
                "opted_in": opted_in,
            }
        )
        return ActionResult("created", {"contact_id": contact_id})

    def create_chatroom(
        self,
        contact_id: str,
        channel_id: str,
        participants: list[str],
        assign_on_handover: bool,
    ) -> ActionResult:
        try:
            if channel_store.get_channel(self.tx, self.org_id, channel_id) is None:
                raise _RefusalError("not_found", f"No channel {channel_id}")
            self._check_agents(participants)
        except (DomainError, _RefusalError) as exc:
            return _failed(exc)
        for chatroom in self.chatrooms.values():
            if chatroom.contact_id == contact_id and chatroom.channel_id == channel_id:
                return ActionResult("existing", {"chatroom_id": chatroom.id})
        chatroom_id = self.new_id("cr")
        self.chatrooms[chatroom_id] = _Chatroom(chatroom_id, contact_id, channel_id, False, True)
        self.effects.append(
            {
                "type": "chatroom.created",
                "chatroom_id": chatroom_id,
                "contact_id": contact_id,
                "channel_id": channel_id,
                "participants": participants,
                "assign_on_handover": assign_on_handover,
            }
        )
        return ActionResult("created", {"chatroom_id": chatroom_id})

    def reassign_chatroom(self, chatroom_id: str, agents: list[str]) -> ActionResult:
        try:
            self._chatroom(chatroom_id)
            self._check_agents(agents)
        except (DomainError, _RefusalError) as exc:
            return _failed(exc)
        self.effects.append(
            {"type": "chatroom.reassigned", "chatroom_id": chatroom_id, "agents": agents}
        )
        return ActionResult("done")

    def has_chatroom(self, chatroom_id: str) -> bool:
        return chatroom_id in self.chatrooms

    def _check_agents(self, agent_ids: list[str]) -> None:
        found = account_store.get_agents(self.tx, self.org_id, agent_ids)
        missing = [a for a in agent_ids if a not in found or not found[a].active]
        if missing:
            raise _RefusalError("not_found", f"No active agent {', '.join(missing)}")


class _RefusalError(Exception):
    """What the real action would have refused, said the way its error would say it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error: JsonObject = {"code": code, "message": message}


def _failed(exc: DomainError | _RefusalError) -> ActionResult:
    return ActionResult(
        "failed", {}, exc.error if isinstance(exc, _RefusalError) else error_of(exc)
    )


@dataclass(frozen=True, slots=True)
class TestScript:
    trigger: JsonObject
    replies: list[JsonObject]
    http: list[JsonObject]
    now: int
    seed: str


def run_test(
    tx: Tx, actor: Actor, flow_id: str, document: FlowDocument, script: TestScript
) -> JsonObject:
    """Run `document` to its end, or until it waits for a reply the script does not have."""
    world = _World(tx, actor.org_id, script.seed, script.now)
    run_id = world.new_id("run")
    context = _context(world, document, script.trigger)
    context = {**context, "run": {"id": run_id}, "flow": {"id": flow_id}}
    state = start(document, run_id, copy.deepcopy(context), world.now)
    replies = list(script.replies)
    answers = list(script.http)
    steps: list[Step] = []
    requests: list[JsonObject] = []
    result = advance(document, state, world, world.now)
    for _ in range(MAX_TEST_ROUNDS):
        steps += result.steps
        stop = result.stop
        if isinstance(stop, Finished):
            return _report(world, run_id, stop.status, stop.error, steps, requests, state)
        assert isinstance(stop, Waiting)
        resume: Resume
        if stop.kind == "delay":
            world.now = stop.until or world.now
            resume = Resume("next")
        elif stop.kind == "http":
            call = stop.call
            assert call is not None
            requests.append(
                {
                    "at": iso(world.now),
                    "node": state.node,
                    "method": call.method,
                    "url": call.url,
                    "headers": call.headers,
                    "body": call.body,
                    "idempotency_key": call.idempotency_key,
                }
            )
            resume = _scripted_answer(answers, state.node)
        else:
            if not replies:
                waiting = {
                    "kind": "reply",
                    "node": state.node,
                    "until": None if stop.until is None else iso(stop.until),
                }
                return _report(world, run_id, "waiting", None, steps, requests, state, waiting)
            resume = _reply(world, stop, replies.pop(0))
        result = advance(document, state, world, world.now, resume)
    raise ValidationError("The test run did not end: it went round too many times")


def _context(world: _World, document: FlowDocument, given: JsonObject) -> JsonObject:
    trigger = document.trigger
    about_chatroom = trigger.spec.about_chatroom or (
        trigger.type == "manual" and trigger.value("chatroom") is True
    )
    context: JsonObject = {}
    if about_chatroom:
        contact = dict(given.get("contact") or {})
        contact_id = world.new_id("ct")
        chatroom_id = world.new_id("cr")
        channel_id = str(given.get("channel_id") or "ch_test")
        phone = str(contact.get("phone") or "")
        if phone:
            world.contacts[phone] = contact_id
        first, last = str(contact.get("first_name") or ""), str(contact.get("last_name") or "")
        world.chatrooms[chatroom_id] = _Chatroom(
            chatroom_id,
            contact_id,
            channel_id,
            window_open=bool(given.get("window_open", True)),
            opted_in=bool(contact.get("opted_in", True)),
        )
        context = {
            "chatInstanceId": chatroom_id,
            "chatroom": {"id": chatroom_id, "channel_id": channel_id},
            "contact": {
                "id": contact_id,
                "first_name": first,
                "last_name": last,
                "name": " ".join(p for p in (first, last) if p) or phone,
                "phone": phone,
                "email": str(contact.get("email") or ""),
                "external_id": str(contact.get("external_id") or ""),
                "custom_attributes": contact.get("custom_attributes") or {},
            },
        }
    if trigger.type in ("message_received", "template_response"):
        message = given.get("message") or {}
        text = str(message.get("text", ""))
        message_id = world.new_id("msg")
        context["message"] = {"id": message_id, "text": text}
        world.transcript.append(
            {
                "at": iso(world.now),
                "chatroom_id": context["chatInstanceId"],
                "direction": "inbound",
                "sender": "contact",
                "kind": "text" if trigger.type == "message_received" else "button_reply",
                "message_id": message_id,
                "text": text,
            }
        )
    if trigger.type == "template_response":
        context["button"] = {"index": 0, "text": "", "payload": "", **(given.get("button") or {})}
        context["template"] = {
            "name": "",
            "language": "",
            "message_id": world.new_id("msg"),
            **(given.get("template") or {}),
        }
    if trigger.type == "incoming_webhook":
        context["trigger"] = {
            "body": given.get("body"),
            "headers": given.get("headers") or {},
            "query": given.get("query") or {},
        }
    if trigger.type == "schedule":
        context["trigger"] = {"scheduled_at": iso(world.now)}
    if trigger.type == "manual":
        context["inputs"] = given.get("inputs") or {}
    return context


def _reply(world: _World, stop: Waiting, reply: JsonObject) -> Resume:
    after = int(reply.get("after_seconds", 1)) * 1000
    if reply.get("timeout") or (stop.until is not None and world.now + after > stop.until):
        world.now = stop.until or world.now
        return Resume("timeout", {"reply": None})
    world.now += after
    chatroom = world.chatrooms.get(stop.chatroom_id or "")
    if chatroom is not None:
        chatroom.window_open = window_expiry(world.now) > world.now
    message_id = world.new_id("msg")
    button = reply.get("button")
    if button is not None:
        index = int(button)
        text = str(reply.get("text", f"Button {index}"))
        world.transcript.append(
            {
                "at": iso(world.now),
                "chatroom_id": stop.chatroom_id,
                "direction": "inbound",
                "sender": "contact",
                "kind": "button_reply",
                "message_id": message_id,
                "text": text,
                "button": index,
            }
        )
        return Resume(
            f"button_{index}",
            {
                "reply": {
                    "text": text,
                    "message_id": message_id,
                    "button": {"index": index, "text": text},
                }
            },
        )
    text = str(reply.get("text", ""))
    world.transcript.append(
        {
            "at": iso(world.now),
            "chatroom_id": stop.chatroom_id,
            "direction": "inbound",
            "sender": "contact",
            "kind": "text",
            "message_id": message_id,
            "text": text,
        }
    )
    return Resume("reply", {"reply": {"text": text, "message_id": message_id, "button": None}})


def _scripted_answer(answers: list[JsonObject], node: str | None) -> Resume:
    """The first scripted answer for this node (or for any node), used up."""
    for index, answer in enumerate(answers):
        if answer.get("node") in (None, node):
            del answers[index]
            headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
            body = answer.get("body")
            raw = body.encode() if isinstance(body, str) else b""
            resume = answer_of(int(answer.get("status", 200)), headers, raw, None)
            if isinstance(body, str):
                return resume
            return Resume(resume.outcome, {**resume.output, "body": body}, resume.error)
    return answer_of(None, {}, b"", f"no scripted HTTP answer for node {node!r}")


def _report(
    world: _World,
    run_id: str,
    status: str,
    error: JsonObject | None,
    steps: list[Step],
    requests: list[JsonObject],
    state: RunState,
    waiting: JsonObject | None = None,
) -> JsonObject:
    return {
        "run_id": run_id,
        "status": status,
        "error": error,
        "waiting": waiting,
        "steps": [
            {
                "number": s.number,
                "node": s.node,
                "action": s.action,
                "params": s.params,
                "outcome": s.outcome,
                "output": s.output,
                "error": s.error,
                "started_at": iso(s.started_at),
                "ended_at": iso(s.ended_at),
            }
            for s in steps
        ],
        "transcript": world.transcript,
        "side_effects": world.effects,
        "http_requests": requests,
        "variables": {k: v for k, v in state.namespace.items() if k != "steps"},
    }
