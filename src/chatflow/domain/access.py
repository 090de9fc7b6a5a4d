"""Who may do what (SPEC "Who may do what"), decided on values, not on requests."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chatflow.domain.errors import NotFoundError, PermissionDeniedError
from chatflow.domain.models import AgentId, ApiKeyId, Chatroom, OrganizationId, Role


class ActorKind(StrEnum):
    API_KEY = "api_key"
    AGENT = "agent"
    FLOW = "flow"
    """A flow run acting for its organization: it sends as the bot."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller: an API key acting for its organization, or a logged-in agent."""

    org_id: OrganizationId
    kind: ActorKind
    id: str
    role: Role | None = None

    @property
    def agent_id(self) -> AgentId | None:
        return AgentId(self.id) if self.kind is ActorKind.AGENT else None

    @property
    def api_key_id(self) -> ApiKeyId | None:
        return ApiKeyId(self.id) if self.kind is ActorKind.API_KEY else None

    @property
    def sees_whole_organization(self) -> bool:
        """API keys, flows and admin agents see and act on every chatroom of the organization."""
        return self.kind is not ActorKind.AGENT or self.role is Role.ADMIN


def check_administers(actor: Actor) -> None:
    """Admin-only capabilities: agents, API keys, channels, templates, webhook endpoints."""
    if not actor.sees_whole_organization:
        raise PermissionDeniedError("Only an admin agent or an API key may do this")


def check_sees_chatroom(actor: Actor, chatroom: Chatroom) -> None:
    """An agent sees only the chatrooms it participates in; pending agents see nothing yet.

    A chatroom the actor may not see answers as if it did not exist, revealing nothing.
    """
    if actor.sees_whole_organization:
        return
    if chatroom.participant(actor.id) is None:
        raise NotFoundError(f"No chatroom {chatroom.id}")
