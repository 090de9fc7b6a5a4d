"""The retry schedule and subscriptions of webhooks, as pure rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatflow.domain.errors import ValidationError
from chatflow.domain.webhooks import (
    HOUR,
    JITTER,
    MAX_RETRY_AFTER_MS,
    RETRY_DELAYS_MS,
    check_event_types,
    retry_delay_ms,
    subscribes_to,
)


@given(st.integers(min_value=0, max_value=2**32))
def test_the_schedule_spans_at_least_72_hours_whatever_the_jitter(seed: int) -> None:
    rng = random.Random(seed)
    delays = [retry_delay_ms(n, rng=rng) for n in range(1, len(RETRY_DELAYS_MS) + 1)]
    assert all(d is not None for d in delays)
    total = sum(d for d in delays if d is not None)
    assert total >= 72 * HOUR
    assert total <= sum(RETRY_DELAYS_MS) * (1 + JITTER)


def test_delays_grow_and_the_schedule_ends() -> None:
    assert list(RETRY_DELAYS_MS) == sorted(RETRY_DELAYS_MS)
    assert retry_delay_ms(len(RETRY_DELAYS_MS) + 1) is None
    assert retry_delay_ms(0) is None


@pytest.mark.parametrize("attempt", [1, 5, 9])
def test_jitter_only_stretches_a_delay(attempt: int) -> None:
    base = RETRY_DELAYS_MS[attempt - 1]
    for seed in range(50):
        delay = retry_delay_ms(attempt, rng=random.Random(seed))
        assert delay is not None
        assert base <= delay <= base * (1 + JITTER)


def test_retry_after_is_honoured_up_to_a_day() -> None:
    assert retry_delay_ms(1, retry_after_ms=600_000, rng=random.Random(1)) == 600_000
    huge = retry_delay_ms(1, retry_after_ms=10 * MAX_RETRY_AFTER_MS, rng=random.Random(1))
    assert huge == MAX_RETRY_AFTER_MS
    # A short Retry-After never makes the wait shorter than the schedule's.
    assert (retry_delay_ms(3, retry_after_ms=1, rng=random.Random(1)) or 0) >= RETRY_DELAYS_MS[2]


def test_event_types_are_checked_and_deduplicated() -> None:
    known = frozenset({"a.b", "c.d"})
    assert check_event_types(["c.d", "a.b", "c.d"], known) == ["c.d", "a.b"]
    assert check_event_types(["*"], known) == ["*"]
    with pytest.raises(ValidationError) as raised:
        check_event_types(["a.b", "x.y"], known)
    assert raised.value.errors[0]["pointer"] == "/event_types/1"
    with pytest.raises(ValidationError):
        check_event_types([], known)
    assert subscribes_to(["*"], "anything")
    assert not subscribes_to(["a.b"], "c.d")
