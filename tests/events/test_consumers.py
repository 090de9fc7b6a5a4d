"""The hook other parts (the flow engine's triggers) plug into: a consumer of the event log
handles each committed event exactly once, in commit order, from where it left off."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.factories import Org

from chatflow.api.deps import Runtime
from chatflow.domain.models import Event, EventHead
from chatflow.events.consumers import ConsumerLoop
from chatflow.storage.database import Database, Tx


class Collector:
    def __init__(self, name: str, *, fail_times: int = 0) -> None:
        self.name = name
        self.seen: list[Event] = []
        self.asked: list[EventHead] = []
        self._fail_times = fail_times

    def wants(self, tx: Tx, batch: list[EventHead]) -> bool:
        self.asked.extend(batch)
        return True

    def handle(self, tx: Tx, batch: list[Event]) -> None:
        if self._fail_times:
            self._fail_times -= 1
            raise RuntimeError("the consumer broke")
        self.seen.extend(batch)


def _loop(client: TestClient, database: Database, consumer: Collector) -> ConsumerLoop:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return ConsumerLoop(database, runtime.bus, consumer)


def _catch_up(client: TestClient, loop: ConsumerLoop) -> int:
    assert client.portal is not None
    count: int = client.portal.call(loop.catch_up)
    return count


def test_a_consumer_sees_each_event_once_in_commit_order_from_where_it_left_off(
    org: Org, client: TestClient, database: Database
) -> None:
    name = f"test-{org.id}"
    first = Collector(name)
    _catch_up(client, _loop(client, database, first))  # the log so far
    first.seen.clear()
    first.asked.clear()

    org.contact()
    org.chatroom()
    _catch_up(client, _loop(client, database, first))
    mine = [e for e in first.seen if e.org_id == org.id]
    assert [e.type for e in mine] == [
        "contact.created",
        "contact.created",
        "chatroom.created",
        "chatroom.assigned",
    ]
    positions = [(e.txid, e.position) for e in first.seen]
    assert positions == sorted(positions)
    # It was asked about the same events, by their heads, before it handled them.
    assert [
        (h.org_id, h.type, h.chatroom_id, h.created_at, h.log_position) for h in first.asked
    ] == [(e.org_id, e.type, e.chatroom_id, e.created_at, e.log_position) for e in first.seen]

    # A new process (a new consumer object of the same name) resumes after what was handled.
    again = Collector(name)
    assert _catch_up(client, _loop(client, database, again)) == 0
    org.contact()
    _catch_up(client, _loop(client, database, again))
    assert [e.type for e in again.seen if e.org_id == org.id] == ["contact.created"]


def test_a_batch_that_fails_is_handled_again_and_not_skipped(
    org: Org, client: TestClient, database: Database
) -> None:
    name = f"test-fail-{org.id}"
    _catch_up(client, _loop(client, database, Collector(name)))
    org.contact()
    broken = Collector(name, fail_times=1)
    loop = _loop(client, database, broken)
    with pytest.raises(RuntimeError, match="broke"):
        _catch_up(client, loop)
    assert broken.seen == []
    _catch_up(client, loop)
    assert [e.type for e in broken.seen if e.org_id == org.id] == ["contact.created"]


class Uninterested(Collector):
    def wants(self, tx: Tx, batch: list[EventHead]) -> bool:
        return False


def test_batches_nobody_wants_are_passed_over_without_a_write(
    org: Org, client: TestClient, database: Database
) -> None:
    from chatflow.storage.cursors import read_cursor

    name = f"test-idle-{org.id}"
    consumer = Uninterested(name)
    loop = _loop(client, database, consumer)
    org.contact()
    assert _catch_up(client, loop) > 0
    assert consumer.seen == []
    assert database.read_sync(lambda tx: read_cursor(tx, name)) == (0, 0)  # never written
    assert _catch_up(client, loop) == 0  # but this loop has moved on
