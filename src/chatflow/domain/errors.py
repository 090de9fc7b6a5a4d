"""Typed errors of the core. `api/problems.py` maps each class to an HTTP status once.

Every error has a stable `code` that clients can switch on; the message is for humans.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"
    title: ClassVar[str] = "The request could not be processed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationError(DomainError):
    code = "validation_error"
    title = "The request is not valid"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail, **extra)
        self.errors = errors or []


class InvalidPhoneError(ValidationError):
    code = "invalid_phone"
    title = "The phone number is not valid"


class InvalidCursorError(ValidationError):
    code = "invalid_cursor"
    title = "The cursor is not valid"


class TemplateInvalidError(ValidationError):
    code = "template_invalid"
    title = "The template does not follow WhatsApp's rules"


class TemplateVariablesError(ValidationError):
    code = "template_variables_invalid"
    title = "The template variables do not fit the template"


class NotATemplateMessageError(ValidationError):
    code = "not_a_template_message"
    title = "The message tapped is not a template with that button"


class AuthenticationError(DomainError):
    code = "unauthenticated"
    title = "Authentication is required"


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"
    title = "The email or password is wrong"


class PermissionDeniedError(DomainError):
    code = "forbidden"
    title = "You may not do this"


class NotFoundError(DomainError):
    code = "not_found"
    title = "Not found"


class TemplateNotFoundError(NotFoundError):
    code = "template_not_found"
    title = "No template with this name and language"


class ConflictError(DomainError):
    code = "conflict"
    title = "The request conflicts with the current state"


class PhoneTakenError(ConflictError):
    code = "contact_phone_taken"
    title = "A contact with this phone number already exists"


class EmailTakenError(ConflictError):
    code = "agent_email_taken"
    title = "An agent with this email already exists"


class TemplateExistsError(ConflictError):
    code = "template_exists"
    title = "A template with this name and language already exists"


class TemplateNotApprovedError(ConflictError):
    code = "template_not_approved"
    title = "Only APPROVED templates can be sent"


class TemplateStatusError(ConflictError):
    code = "template_status_conflict"
    title = "The template's status does not allow this"


class WindowClosedError(ConflictError):
    code = "customer_window_closed"
    title = "The 24-hour customer service window is closed"


class ContactNotOptedInError(ConflictError):
    code = "contact_not_opted_in"
    title = "The contact has not opted in to template messages"


class ChatroomClosedError(ConflictError):
    code = "chatroom_closed"
    title = "The chatroom is closed"


class ChatroomStateError(ConflictError):
    code = "chatroom_state_conflict"
    title = "The chatroom's state does not allow this"


class AgentInactiveError(ConflictError):
    code = "agent_inactive"
    title = "The agent is deactivated"


class ChannelMismatchError(ConflictError):
    code = "channel_mismatch"
    title = "The channel cannot do this"


class IdempotencyKeyReusedError(DomainError):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyKeyInUseError(ConflictError):
    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is still being processed"


class WebhookUrlForbiddenError(ValidationError):
    code = "webhook_url_forbidden"
    title = "The webhook URL is not allowed"


class WebhookEndpointDisabledError(ConflictError):
    code = "webhook_endpoint_disabled"
    title = "The webhook endpoint is disabled"


class SignatureMismatchError(AuthenticationError):
    code = "signature_mismatch"
    title = "The request's signature does not match its body"


class VerifyTokenMismatchError(PermissionDeniedError):
    code = "verify_token_mismatch"
    title = "The verify token does not match the channel's"


class ProviderError(DomainError):
    """The channel's provider (Meta's Graph API) refused or failed a request made for the caller."""

    code = "provider_error"
    title = "The channel's provider refused the request"


class FlowRevisionConflictError(ConflictError):
    code = "flow_revision_conflict"
    title = "The draft was saved by someone else since this revision"


class FlowNotDeployedError(ConflictError):
    code = "flow_not_deployed"
    title = "The flow has no deployed version"


class FlowTriggerMismatchError(ConflictError):
    code = "flow_trigger_mismatch"
    title = "The flow's deployed trigger does not start runs this way"


class RunNotActiveError(ConflictError):
    code = "run_not_active"
    title = "The run has already ended"
