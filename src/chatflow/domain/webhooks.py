"""The rules of webhook delivery, as values: what may be subscribed to, when to try again, when
to give up on an endpoint. Standard Webhooks, with Stripe's and Svix's horizons."""

from __future__ import annotations

import random

from chatflow.domain.errors import ValidationError

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

RETRY_DELAYS_MS: tuple[int, ...] = (
    5 * SECOND,
    5 * MINUTE,
    30 * MINUTE,
    2 * HOUR,
    5 * HOUR,
    10 * HOUR,
    14 * HOUR,
    20 * HOUR,
    24 * HOUR,
)
"""The wait after each failed attempt: Standard Webhooks' example schedule, ten attempts whose
last comes 75 h 35 min after the first, so a receiver can be down for three days and lose
nothing."""

JITTER = 0.2
"""Each wait is stretched by up to 20 %, so receivers coming back are not hit by every retry at
once. Only stretched, never shortened: the schedule's horizon stays above 72 hours."""

MAX_RETRY_AFTER_MS = DAY
"""A receiver's Retry-After is honoured up to a day."""

DISABLE_AFTER_FAILING_MS = 5 * DAY
"""An endpoint whose every attempt failed for five days is disabled (Svix)."""

SECRET_OVERLAP_MS = DAY
"""After a rotation the old secret keeps signing for a day, so receivers can switch at leisure."""

DEFAULT_EVENT_TYPES = ("template.response",)
"""The seed's relay (R6): an endpoint made without a list gets the template responses."""


def retry_delay_ms(
    failed_attempts: int, *, retry_after_ms: int | None = None, rng: random.Random | None = None
) -> int | None:
    """How long to wait after the `failed_attempts`-th failure; None once the schedule is spent."""
    if failed_attempts < 1 or failed_attempts > len(RETRY_DELAYS_MS):
        return None
    base = RETRY_DELAYS_MS[failed_attempts - 1]
    delay = int(base * (1 + (rng or random).random() * JITTER))
    if retry_after_ms is not None:
        delay = max(delay, min(retry_after_ms, MAX_RETRY_AFTER_MS))
    return delay


def check_event_types(requested: list[str], known: frozenset[str]) -> list[str]:
    """Subscribed types, deduplicated in the order given; `*` means every type."""
    if not requested:
        raise ValidationError(
            "Subscribe to at least one event type",
            errors=[{"pointer": "/event_types", "message": "must not be empty"}],
        )
    unknown = [
        {"pointer": f"/event_types/{i}", "message": f"unknown event type {name!r}"}
        for i, name in enumerate(requested)
        if name != "*" and name not in known
    ]
    if unknown:
        raise ValidationError("Unknown event types", errors=unknown)
    return list(dict.fromkeys(requested))


def subscribes_to(event_types: list[str], event_type: str) -> bool:
    return "*" in event_types or event_type in event_types
