"""The event-driven triggers: a consumer of the event log (see `events.consumers`).

Each batch of events is handled in the transaction that moves the consumer's cursor past it, so
each event starts its flows, resumes its waiting runs and ends its runs exactly once, even when a
process dies half-way. What each event does:

- a customer's message resumes the runs waiting for a reply in its chatroom; a message that
  resumed none starts the flows triggered by `message_received` (free-flow text) or
  `template_response` (a quick-reply tap);
- an agent's message ends the waits that asked to be cancelled when an agent replies;
- `chatroom.created` starts `chatroom_created` flows;
- a handover (R8) ends the runs of flows that end on handover.

A flow is never started by its own effects, and a chain of flows stops at a depth
(`Event.cause`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chatflow.domain.flows.document import Trigger
from chatflow.domain.flows.interpreter import JsonObject, Resume
from chatflow.domain.flows.records import FlowRun, RunStatus
from chatflow.domain.models import Chatroom, Contact, Event, EventHead, OrganizationId
from chatflow.events.types import EventType
from chatflow.flows.runs import Start, deployed, end_run, resume_run, start_run
from chatflow.storage import chatrooms as chatroom_store
from chatflow.storage import contacts as contact_store
from chatflow.storage import events as event_store
from chatflow.storage import flows as store
from chatflow.storage import messages as message_store
from chatflow.storage.database import Tx, is_transient_database_error

log = logging.getLogger(__name__)

_CHATROOM_TRIGGERS = ["message_received", "template_response", "chatroom_created"]
_WATCHED = frozenset(
    {EventType.MESSAGE_CREATED, EventType.CHATROOM_CREATED, EventType.CHATROOM_ASSIGNED}
)


def chatroom_context(chatroom: Chatroom, contact: Contact | None) -> JsonObject:
    """The variables of a trigger about a chatroom (see the catalog)."""
    context: JsonObject = {
        "chatInstanceId": chatroom.id,
        "chatroom": {"id": chatroom.id, "channel_id": chatroom.channel_id},
    }
    if contact is not None:
        context["contact"] = {
            "id": contact.id,
            "first_name": contact.first_name or "",
            "last_name": contact.last_name or "",
            "name": contact.display_name,
            "phone": contact.phone or "",
            "email": contact.email or "",
            "external_id": contact.external_id or "",
            "custom_attributes": contact.custom_attributes,
        }
    return context


class FlowTriggers:
    name = "flows"

    def wants(self, tx: Tx, batch: list[EventHead]) -> bool:
        watched = [e for e in batch if e.type in _WATCHED and e.chatroom_id is not None]
        if not watched:
            return False
        for org_id in {e.org_id for e in watched}:
            if store.deployed_flows(tx, org_id, _CHATROOM_TRIGGERS):
                return True
        chatroom_ids = sorted({str(e.chatroom_id) for e in watched})
        return store.any_waiting_in(tx, chatroom_ids) or store.any_active_about(tx, chatroom_ids)

    def handle(self, tx: Tx, batch: list[Event]) -> None:
        # A customer message that hands the chatroom over (R8) commits with its handover: runs
        # that end on handover end before the message could answer their wait.
        handovers = {
            (e.chatroom_id, e.created_at)
            for e in batch
            if e.type == EventType.CHATROOM_ASSIGNED and e.data.get("reason") == "handover"
        }
        for event in batch:
            if event.type not in _WATCHED or event.chatroom_id is None:
                continue
            moment = (event.chatroom_id, event.created_at)
            try:
                with tx.savepoint():
                    if event.type == EventType.MESSAGE_CREATED and moment in handovers:
                        _end_on_handover(tx, event)
                        handovers.discard(moment)  # done: its own event must not end more
                        self._handle(tx, event)
                    elif event.type == EventType.CHATROOM_ASSIGNED and moment not in handovers:
                        pass  # handled with the message that caused it
                    else:
                        self._handle(tx, event)
            except Exception as exc:
                if is_transient_database_error(exc):
                    raise  # the whole batch is handled again
                # A bug met on one event must not hold back every flow behind it.
                log.exception("Flow triggers failed on event %s; it is skipped", event.id)

    def _handle(self, tx: Tx, event: Event) -> None:
        data = event.data
        if event.type == EventType.MESSAGE_CREATED:
            message = data["message"]
            if message["direction"] == "inbound":
                if not _resume_waiting(tx, event, message):
                    _start_for_customer_message(tx, event, message)
            elif message["sender"]["type"] == "agent":
                _cancel_on_agent_reply(tx, event)
        elif event.type == EventType.CHATROOM_CREATED:
            _start_flows(
                tx,
                event,
                "chatroom_created",
                lambda trigger, chatroom: (
                    trigger.value("channel_id") in (None, chatroom.channel_id)
                ),
                {},
                {"event_id": event.id},
            )
        elif event.type == EventType.CHATROOM_ASSIGNED and data.get("reason") == "handover":
            _end_on_handover(tx, event)


def _resume_waiting(tx: Tx, event: Event, message: dict[str, Any]) -> bool:
    """The customer answered: every run waiting for a reply in the chatroom goes on."""
    assert event.chatroom_id is not None
    resumed = False
    button = message.get("button")
    reply = {
        "text": message["text"],
        "message_id": message["id"],
        "button": None if button is None else {"index": button["index"], "text": button["text"]},
    }
    outcome = "reply" if button is None or button["index"] < 0 else f"button_{button['index']}"
    for run in store.lock_waiting_for_reply(tx, event.org_id, [event.chatroom_id]):
        if _began_after(tx, run, event):
            continue  # written before the run began to wait: not an answer to it
        resume_run(tx, run, Resume(outcome, {"reply": reply}))
        resumed = True
    return resumed


def _began_after(tx: Tx, run: FlowRun, event: Event) -> bool:
    """Whether the run began its wait after `event` in the log: a consumer that lags behind
    may meet a message written before a wait only once the wait has begun."""
    wait_event = run.state.get("wait_event")
    position = None if wait_event is None else event_store.position_of(tx, wait_event)
    return position is not None and position > event.log_position


def _start_for_customer_message(tx: Tx, event: Event, message: dict[str, Any]) -> None:
    assert event.chatroom_id is not None
    chatroom_id = event.chatroom_id
    button = message.get("button")
    summary = {"event_id": event.id, "message_id": message["id"]}
    if message["kind"] == "button_reply" and button is not None:
        template_message_id = button.get("template_message_id")
        if template_message_id is None:
            return
        tapped = message_store.get_message(tx, chatroom_id, template_message_id)
        template = (tapped.template if tapped is not None else None) or {}
        extra = {
            "message": {"id": message["id"], "text": message["text"]},
            "button": {
                "index": button["index"],
                "text": button["text"],
                "payload": button["payload"],
            },
            "template": {
                "name": template.get("name", ""),
                "language": template.get("language", ""),
                "message_id": template_message_id,
            },
        }

        def tapped_matches(trigger: Trigger, chatroom: Chatroom) -> bool:
            wanted_name = trigger.value("template")
            wanted_index = trigger.value("button_index")
            wanted_text = trigger.value("button_text")
            return (
                (wanted_name is None or wanted_name == template.get("name"))
                and (wanted_index is None or wanted_index == button["index"])
                and (wanted_text is None or wanted_text.casefold() == button["text"].casefold())
            )

        _start_flows(tx, event, "template_response", tapped_matches, extra, summary)
        return

    text = message["text"]
    first: list[bool] = []

    def is_first() -> bool:
        if not first:
            first.append(not message_store.has_earlier_inbound(tx, chatroom_id, message["id"]))
        return first[0]

    def text_matches(trigger: Trigger, chatroom: Chatroom) -> bool:
        if trigger.value("channel_id") not in (None, chatroom.channel_id):
            return False
        if trigger.value("first_message_only") and not is_first():
            return False
        operator, wanted = trigger.value("text_operator"), trigger.value("text")
        if operator in (None, "any") or not wanted:
            return True
        have, want = text.casefold().strip(), wanted.casefold().strip()
        if operator == "equals":
            return bool(have == want)
        if operator == "contains":
            return bool(want in have)
        return bool(have.startswith(want))

    _start_flows(
        tx,
        event,
        "message_received",
        text_matches,
        {"message": {"id": message["id"], "text": text}},
        summary,
    )


def _start_flows(
    tx: Tx,
    event: Event,
    trigger_type: str,
    matches: Callable[[Trigger, Chatroom], bool],
    extra: JsonObject,
    summary: JsonObject,
) -> list[FlowRun]:
    """Start every deployed flow of the organization with this trigger whose filters match."""
    assert event.chatroom_id is not None
    org_id = OrganizationId(event.org_id)
    cause = event.cause
    depth = 0 if cause is None else int(cause.get("depth", 0)) + 1
    chatroom: Chatroom | None = None
    context: JsonObject | None = None
    started: list[FlowRun] = []
    for flow_id, version_id, _ in store.deployed_flows(tx, org_id, [trigger_type]):
        if cause is not None and cause.get("flow") == flow_id:
            continue  # a flow's own effects never start it again
        target = deployed(tx, version_id)
        if chatroom is None:
            chatroom = chatroom_store.load_chatroom(tx, org_id, event.chatroom_id)
            if chatroom is None:
                return started
        if not matches(target.document.trigger, chatroom):
            continue
        if context is None:
            contact = contact_store.get_contact(tx, org_id, chatroom.contact_id)
            context = {**chatroom_context(chatroom, contact), **extra}
        started.append(
            start_run(
                tx,
                org_id,
                flow_id,
                version_id,
                Start(trigger_type, event.chatroom_id, context, summary, depth),
            )
        )
    return started


def _cancel_on_agent_reply(tx: Tx, event: Event) -> None:
    assert event.chatroom_id is not None
    for run in store.lock_waiting_for_reply(tx, event.org_id, [event.chatroom_id]):
        if run.cancel_on_agent_reply and not _began_after(tx, run, event):
            end_run(
                tx,
                run,
                RunStatus.CANCELLED,
                {"code": "agent_replied", "message": "An agent replied while the run waited"},
            )


def _end_on_handover(tx: Tx, event: Event) -> None:
    assert event.chatroom_id is not None
    for run in store.lock_active_in(tx, [event.chatroom_id]):
        if deployed(tx, run.version_id).document.settings.end_on_handover:
            end_run(
                tx,
                run,
                RunStatus.CANCELLED,
                {"code": "handed_over", "message": "The chatroom was handed over to an agent"},
            )
