"""Starting runs by hand (manual trigger, incoming webhook) and cancelling them."""

from __future__ import annotations

import hmac
from typing import Any

from chatflow.domain.access import Actor
from chatflow.domain.errors import (
    AuthenticationError,
    FlowNotDeployedError,
    FlowTriggerMismatchError,
    NotFoundError,
    RunNotActiveError,
    ValidationError,
)
from chatflow.domain.flows.catalog import LIMITS
from chatflow.domain.flows.document import check_depth
from chatflow.domain.flows.records import FlowRun, RunStatus
from chatflow.flows.runs import Start, deployed, end_run, start_run
from chatflow.flows.triggers import chatroom_context
from chatflow.flows.worker import DEPTH_HEADER
from chatflow.services import flows as flow_service
from chatflow.services.chatrooms import access_chatroom
from chatflow.storage import contacts as contact_store
from chatflow.storage import flows as store
from chatflow.storage.database import Tx

SECRET_HEADER = "x-chatflow-secret"


class FlowSecretMismatchError(AuthenticationError):
    code = "flow_secret_mismatch"
    title = "The flow's secret is missing or wrong"


def do_start_manual(
    tx: Tx,
    actor: Actor,
    flow_id: str,
    *,
    inputs: dict[str, Any],
    chatroom_id: str | None,
) -> FlowRun:
    flow = flow_service.access_flow(tx, actor, flow_id)
    if flow.version_id is None:
        raise FlowNotDeployedError(f"Flow {flow_id} is not deployed")
    trigger = deployed(tx, flow.version_id).document.trigger
    if trigger.type != "manual":
        raise FlowTriggerMismatchError(
            f"Flow {flow_id} starts on {trigger.type}, not by hand", trigger=trigger.type
        )
    declared = [n for n in trigger.value("inputs") or [] if isinstance(n, str)]
    problems = [
        {"pointer": f"/inputs/{name}", "message": "required"}
        for name in declared
        if name not in inputs
    ] + [
        {"pointer": f"/inputs/{name}", "message": "not an input of this flow"}
        for name in inputs
        if name not in declared
    ]
    wants_chatroom = trigger.value("chatroom") is True
    if wants_chatroom and chatroom_id is None:
        problems.append({"pointer": "/chatroom_id", "message": "this flow runs on a chatroom"})
    if not wants_chatroom and chatroom_id is not None:
        problems.append({"pointer": "/chatroom_id", "message": "this flow takes no chatroom"})
    if problems:
        raise ValidationError("The run's inputs do not fit the flow", errors=problems)
    check_depth(inputs, "/inputs")
    context: dict[str, Any] = {"inputs": inputs}
    if chatroom_id is not None:
        chatroom = access_chatroom(tx, actor, chatroom_id)
        contact = contact_store.get_contact(tx, actor.org_id, chatroom.contact_id)
        context |= chatroom_context(chatroom, contact)
    begin = Start("manual", chatroom_id, context, {"by": f"{actor.kind.value}:{actor.id}"})
    return start_run(tx, actor.org_id, flow.id, flow.version_id, begin)


def do_start_from_webhook(
    tx: Tx,
    flow_id: str,
    *,
    secret: str | None,
    body: Any,
    headers: dict[str, str],
    query: dict[str, str],
) -> FlowRun:
    """An incoming webhook: the caller proves itself with the flow's secret."""
    flow = store.get_flow_any_org(tx, flow_id)
    if flow is None or flow.trigger_type != "incoming_webhook" or flow.version_id is None:
        raise NotFoundError(f"No flow {flow_id} listens for webhooks")
    if secret is None or not hmac.compare_digest(secret.encode(), flow.webhook_secret.encode()):
        raise FlowSecretMismatchError(f"Send flow {flow_id}'s secret in X-Chatflow-Secret")
    check_depth(body, "")
    try:
        depth = max(0, min(int(headers.get(DEPTH_HEADER, "0")), LIMITS.max_chain_depth + 1))
    except ValueError:
        depth = 0
    visible = {k: v for k, v in headers.items() if k != SECRET_HEADER}
    begin = Start(
        "incoming_webhook",
        None,
        {"trigger": {"body": body, "headers": visible, "query": query}},
        {},
        depth,
    )
    return start_run(tx, flow.org_id, flow.id, flow.version_id, begin)


def do_cancel_run(tx: Tx, actor: Actor, run_id: str) -> FlowRun:
    run = flow_service.access_run(tx, actor, run_id, lock=True)
    if not run.status.active:
        raise RunNotActiveError(f"Run {run_id} is {run.status.value}", status=run.status.value)
    return end_run(
        tx,
        run,
        RunStatus.CANCELLED,
        {"code": "cancelled", "message": f"Cancelled by {actor.kind.value}:{actor.id}"},
    )
