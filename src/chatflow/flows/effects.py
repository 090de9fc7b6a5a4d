"""What a real run's actions do: the services' use cases, in the step's own transaction.

Each action runs in a savepoint: a refusal (a closed window, an unknown template) rolls back
whatever the action had written and becomes the step's outcome, while the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable

from chatflow.domain.access import Actor, ActorKind
from chatflow.domain.errors import DomainError, ValidationError, WindowClosedError
from chatflow.domain.flows.interpreter import ActionResult, JsonObject
from chatflow.domain.models import MessageFlags, OrganizationId
from chatflow.domain.templates import TemplateVariables
from chatflow.services import chatrooms as chatroom_service
from chatflow.services import contacts as contact_service
from chatflow.services import messages as message_service
from chatflow.services.phones import normalise_phone
from chatflow.storage import chatrooms as chatroom_store
from chatflow.storage import contacts as contact_store
from chatflow.storage.database import Tx


def flow_actor(org_id: OrganizationId) -> Actor:
    """Flows act for their organization and send as the bot."""
    return Actor(org_id, ActorKind.FLOW, "flow")


MAX_NAME_LENGTH = 128


def check_contact_names(first_name: str | None, last_name: str | None) -> None:
    """A contact's names fit its record: a variable may have made them longer than the
    parameter's own limit."""
    for pointer, value in (("/first_name", first_name), ("/last_name", last_name)):
        if value is not None and len(value) > MAX_NAME_LENGTH:
            raise ValidationError(
                f"A contact's name is at most {MAX_NAME_LENGTH} characters",
                errors=[{"pointer": pointer, "message": f"at most {MAX_NAME_LENGTH} characters"}],
            )


def error_of(exc: DomainError) -> JsonObject:
    error: JsonObject = {"code": exc.code, "message": exc.detail}
    errors = getattr(exc, "errors", None)
    if errors:
        error["errors"] = errors
    return error


class DatabaseEffects:
    def __init__(self, tx: Tx, org_id: OrganizationId) -> None:
        self._tx = tx
        self._actor = flow_actor(org_id)

    def _attempt(self, action: Callable[[], ActionResult]) -> ActionResult:
        try:
            with self._tx.savepoint():
                return action()
        except WindowClosedError as exc:
            return ActionResult("window_closed", {}, error_of(exc))
        except DomainError as exc:
            return ActionResult("failed", {}, error_of(exc))

    def send_message(self, chatroom_id: str, text: str) -> ActionResult:
        def send() -> ActionResult:
            message = message_service.do_send_message(self._tx, self._actor, chatroom_id, text=text)
            return ActionResult("sent", {"message_id": message.id})

        return self._attempt(send)

    def send_template(
        self,
        chatroom_id: str,
        template: str,
        language: str,
        variables: TemplateVariables,
        flags: MessageFlags,
    ) -> ActionResult:
        def send() -> ActionResult:
            message = message_service.do_send_template(
                self._tx,
                self._actor,
                chatroom_id,
                name=template,
                language=language,
                variables=variables,
                flags=flags,
            )
            return ActionResult("sent", {"message_id": message.id})

        return self._attempt(send)

    def create_contact(
        self, phone: str, first_name: str | None, last_name: str | None, opted_in: bool
    ) -> ActionResult:
        def create() -> ActionResult:
            check_contact_names(first_name, last_name)
            normalised = normalise_phone(phone)
            existing = contact_store.get_contact_by_phone(self._tx, self._actor.org_id, normalised)
            if existing is not None:
                return ActionResult("existing", {"contact_id": existing.id})
            contact = contact_service.do_create_contact(
                self._tx,
                self._actor,
                contact_service.ContactFields(
                    phone=normalised,
                    first_name=first_name,
                    last_name=last_name,
                    opted_in=opted_in,
                ),
            )
            return ActionResult("created", {"contact_id": contact.id})

        return self._attempt(create)

    def create_chatroom(
        self,
        contact_id: str,
        channel_id: str,
        participants: list[str],
        assign_on_handover: bool,
    ) -> ActionResult:
        def create() -> ActionResult:
            chatroom, created = chatroom_service.do_create_chatroom(
                self._tx,
                self._actor,
                contact_id=contact_id,
                channel_id=channel_id,
                participant_ids=participants,
                assign_on_handover=assign_on_handover,
            )
            return ActionResult("created" if created else "existing", {"chatroom_id": chatroom.id})

        return self._attempt(create)

    def reassign_chatroom(self, chatroom_id: str, agents: list[str]) -> ActionResult:
        def reassign() -> ActionResult:
            chatroom_service.do_reassign(self._tx, self._actor, chatroom_id, agents)
            return ActionResult("done")

        return self._attempt(reassign)

    def has_chatroom(self, chatroom_id: str) -> bool:
        return chatroom_store.load_chatroom(self._tx, self._actor.org_id, chatroom_id) is not None
