"""The domain's records are values: equal, and hashed, by their fields. (Assigning to a field is
a mypy error: `record` is frozen to the type checker, not at run time.)"""

from __future__ import annotations

import dataclasses

from chatflow.domain.models import AgentId, Participant


def _participant(bump_key: int) -> Participant:
    return Participant(
        agent_id=AgentId("ag_1"), joined_at=1, bump_key=bump_key, unread_count=0, last_read_at=None
    )


def test_records_are_equal_and_hashed_by_their_fields() -> None:
    assert _participant(5) == _participant(5)
    assert hash(_participant(5)) == hash(_participant(5))
    assert len({_participant(5), _participant(5), _participant(6)}) == 2
    assert dataclasses.replace(_participant(5), bump_key=6) == _participant(6)
