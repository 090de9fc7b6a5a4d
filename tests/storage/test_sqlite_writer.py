"""The SQLite write pipeline: group commit on the event loop survives cancellation and lost
transactions without wedging the writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chatflow.clock import ManualClock
from chatflow.domain.models import Event, EventId, OrganizationId
from chatflow.storage.database import Database, Tx, _Checkpointer
from chatflow.storage.migrate import upgrade
from chatflow.storage.tables import organizations


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'writer.db'}"
    upgrade(url)
    return Database(url, ManualClock())


def _add_org(org_id: str) -> Callable[[Tx], str]:
    def work(tx: Tx) -> str:
        tx.execute(organizations.insert().values(id=org_id, name=org_id, created_at=tx.now))
        return org_id

    return work


def _org_ids(db: Database) -> list[str]:
    return db.read_sync(
        lambda tx: [r.id for r in tx.execute(sa.select(organizations.c.id).order_by("id"))]
    )


def test_concurrent_writes_commit_together_and_each_caller_gets_its_result(
    sqlite_db: Database,
) -> None:
    async def scenario() -> list[str]:
        sqlite_db.start()
        try:
            return list(
                await asyncio.gather(*(sqlite_db.write(_add_org(f"org_{i}")) for i in range(20)))
            )
        finally:
            sqlite_db.close()

    assert asyncio.run(scenario()) == [f"org_{i}" for i in range(20)]
    assert _org_ids(sqlite_db) == sorted(f"org_{i}" for i in range(20))


def test_a_failing_job_rolls_back_alone(sqlite_db: Database) -> None:
    def failing(tx: Tx) -> None:
        tx.execute(organizations.insert().values(id="org_bad", name="bad", created_at=tx.now))
        raise ValueError("refused")

    async def scenario() -> list[Any]:
        sqlite_db.start()
        try:
            return list(
                await asyncio.gather(
                    sqlite_db.write(_add_org("org_a")),
                    sqlite_db.write(failing),
                    sqlite_db.write(_add_org("org_b")),
                    return_exceptions=True,
                )
            )
        finally:
            sqlite_db.close()

    results = asyncio.run(scenario())
    assert results[0] == "org_a" and results[2] == "org_b"
    assert isinstance(results[1], ValueError)
    assert _org_ids(sqlite_db) == ["org_a", "org_b"]


def test_a_write_cancelled_while_waiting_for_the_write_lock_does_not_block_later_writes(
    sqlite_db: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "writer.db", isolation_level=None)

    async def scenario() -> str:
        sqlite_db.start()
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            waiting = asyncio.create_task(sqlite_db.write(_add_org("org_cancelled")))
            await asyncio.sleep(0.1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            other.execute("COMMIT")
            return await asyncio.wait_for(sqlite_db.write(_add_org("org_after")), 10)
        finally:
            sqlite_db.close()

    assert asyncio.run(scenario()) == "org_after"
    other.close()
    assert "org_after" in _org_ids(sqlite_db)
    sqlite_db.write_sync(_add_org("org_sync"))
    assert "org_sync" in _org_ids(sqlite_db)


def test_a_job_that_loses_the_whole_transaction_fails_its_group_and_the_writer_recovers(
    sqlite_db: Database,
) -> None:
    def loses_transaction(tx: Tx) -> None:
        # What SQLite does on a full disk or an I/O error: the whole transaction is gone.
        driver = tx.conn.connection.driver_connection
        assert driver is not None
        driver.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    async def scenario() -> tuple[list[Any], str]:
        sqlite_db.start()
        try:
            group = list(
                await asyncio.gather(
                    sqlite_db.write(_add_org("org_same_group")),
                    sqlite_db.write(loses_transaction),
                    return_exceptions=True,
                )
            )
            after = await asyncio.wait_for(sqlite_db.write(_add_org("org_next")), 10)
            return group, after
        finally:
            sqlite_db.close()

    group, after = asyncio.run(scenario())
    assert all(isinstance(r, sqlite3.OperationalError) for r in group), group
    assert after == "org_next"
    assert _org_ids(sqlite_db) == ["org_next"]


def test_a_group_commit_is_announced_once_with_its_jobs_events_in_order(
    sqlite_db: Database,
) -> None:
    announced: list[list[Event]] = []
    sqlite_db.on_commit(announced.append)

    def event(n: int) -> Event:
        return Event(
            EventId(f"evt_{n}"), OrganizationId(f"org_{n}"), "test.added", None, None, {}, 0
        )

    def adding(n: int) -> Callable[[Tx], str]:
        def work(tx: Tx) -> str:
            tx.events.append(event(n))
            return _add_org(f"org_{n}")(tx)

        return work

    def failing(tx: Tx) -> None:
        tx.events.append(event(99))
        raise ValueError("refused")

    async def scenario() -> None:
        sqlite_db.start()
        try:
            jobs = [adding(0), adding(1), failing, adding(2)]
            await asyncio.gather(*(sqlite_db.write(job) for job in jobs), return_exceptions=True)
            await sqlite_db.write(adding(3))
        finally:
            sqlite_db.close()

    asyncio.run(scenario())
    # The failed job's event went with its savepoint; the later write is a commit of its own.
    assert announced == [[event(0), event(1), event(2)], [event(3)]]


def test_what_committed_is_announced_even_when_its_caller_was_cancelled(
    sqlite_db: Database,
) -> None:
    announced: list[list[Event]] = []
    sqlite_db.on_commit(announced.append)
    ran = asyncio.Event()
    event = Event(EventId("evt_x"), OrganizationId("org_x"), "test.cancelled", None, None, {}, 0)

    def work(tx: Tx) -> None:
        tx.execute(organizations.insert().values(id="org_x", name="x", created_at=tx.now))
        tx.events.append(event)
        ran.set()

    async def scenario() -> None:
        sqlite_db.start()
        try:
            caller = asyncio.create_task(sqlite_db.write(work))
            await ran.wait()  # the job ran; its caller now waits for the commit
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            for _ in range(100):
                if announced:
                    break
                await asyncio.sleep(0.01)
        finally:
            sqlite_db.close()

    asyncio.run(scenario())
    assert announced == [[event]]
    assert _org_ids(sqlite_db) == ["org_x"]


def test_reads_on_the_loop_see_one_snapshot_and_never_leave_a_transaction_open(
    sqlite_db: Database,
) -> None:
    """Reads on the loop run in the driver's own transaction (no SQLAlchemy begin): a read
    that mixes the driver path and SQLAlchemy's sees one snapshot, a write committed meanwhile
    shows in the next read, and a read that fails leaves nothing open behind it."""

    def ids_twice_around_a_write(tx: Tx) -> tuple[list[str], list[str]]:
        before = [r.id for r in tx.execute(sa.select(organizations.c.id))]
        sqlite_db.write_sync(_add_org("org_meanwhile"))
        driver = tx.conn.connection.driver_connection
        assert driver is not None
        after = [r[0] for r in driver.execute("SELECT id FROM organizations")]
        return before, after

    def failing(tx: Tx) -> None:
        tx.execute(sa.select(organizations.c.id)).all()
        raise ValueError("refused")

    async def scenario() -> tuple[tuple[list[str], list[str]], list[str], bool]:
        sqlite_db.start()
        try:
            await sqlite_db.write(_add_org("org_first"))
            snapshot = await sqlite_db.read(ids_twice_around_a_write)
            with pytest.raises(ValueError, match="refused"):
                await sqlite_db.read(failing)
            later = await sqlite_db.read(_org_ids_of)
            reader = sqlite_db._loop_reader
            assert reader is not None
            driver = reader.connection.driver_connection
            assert driver is not None
            return snapshot, later, bool(reader.in_transaction() or driver.in_transaction)
        finally:
            sqlite_db.close()

    (before, after), later, left_open = asyncio.run(scenario())
    assert before == after == ["org_first"]
    assert later == ["org_first", "org_meanwhile"]
    assert not left_open


def _org_ids_of(tx: Tx) -> list[str]:
    return [r.id for r in tx.execute(sa.select(organizations.c.id).order_by("id"))]


def test_begin_runs_on_the_loop_when_the_write_lock_is_free(sqlite_db: Database) -> None:
    """No thread hop for BEGIN IMMEDIATE when nobody else holds the lock."""
    begun_on: list[int] = []

    def trace(statement: str) -> None:
        if statement.startswith("BEGIN"):
            begun_on.append(threading.get_ident())

    async def scenario() -> int:
        sqlite_db.start()
        try:
            writer = sqlite_db._sqlite
            assert writer is not None
            writer._driver.set_trace_callback(trace)
            await sqlite_db.write(_add_org("org_a"))
            return threading.get_ident()
        finally:
            sqlite_db.close()

    assert begun_on == [asyncio.run(scenario())]


def test_a_write_waits_for_a_lock_another_process_holds_without_stalling_the_loop(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """While another process holds the write lock, BEGIN waits for it on a thread: the loop goes
    on serving, and the write commits once the lock is free."""
    other = sqlite3.connect(tmp_path / "writer.db", isolation_level=None)

    async def scenario() -> tuple[int, str]:
        sqlite_db.start()
        try:
            await sqlite_db.write(_add_org("org_free"))
            other.execute("BEGIN IMMEDIATE")
            waiting = asyncio.create_task(sqlite_db.write(_add_org("org_waited")))
            ticks = 0
            for _ in range(20):
                await asyncio.sleep(0.01)
                ticks += 1
            assert not waiting.done()
            other.execute("COMMIT")
            return ticks, await asyncio.wait_for(waiting, 10)
        finally:
            sqlite_db.close()

    ticks, written = asyncio.run(scenario())
    other.close()
    assert (ticks, written) == (20, "org_waited")
    assert _org_ids(sqlite_db) == ["org_free", "org_waited"]


def test_two_event_loops_writing_at_once_neither_wedges_the_writer(sqlite_db: Database) -> None:
    """The group commit belongs to one loop; another loop's writes go through a thread."""
    sqlite_db.start()
    failures: list[BaseException] = []

    def lane(name: str) -> None:
        async def writes() -> None:
            await asyncio.gather(*(sqlite_db.write(_add_org(f"{name}_{i}")) for i in range(150)))

        try:
            asyncio.run(writes())
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            failures.append(exc)

    lanes = [threading.Thread(target=lane, args=(f"l{k}",), daemon=True) for k in range(2)]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in lanes), "a writer wedged"
    assert failures == []
    assert len(_org_ids(sqlite_db)) == 300
    sqlite_db.close()


def _write_syscalls_of_this_thread() -> int:
    io = Path(f"/proc/self/task/{threading.get_native_id()}/io")
    if not io.exists():
        pytest.skip("needs Linux's per-thread I/O accounting")
    for line in io.read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw line")


def test_jobs_keep_their_savepoint_journals_in_memory(sqlite_db: Database) -> None:
    """Each job of a group runs in a savepoint; what it changes is journaled so it can roll back
    alone. That journal must not go to a temporary file: it was three quarters of a send's
    write syscalls. The loop's thread, where jobs run, writes nothing; the commit writes the WAL
    on its own thread."""
    sqlite_db.write_sync(
        lambda tx: tx.conn.execute(
            organizations.insert(),
            [{"id": f"org_{i:05}", "name": "x" * 200, "created_at": 0} for i in range(2000)],
        )
    )

    def rename_all(tx: Tx) -> None:
        tx.execute(organizations.update().values(name="y" * 200))

    async def scenario() -> int:
        sqlite_db.start()
        try:
            before = _write_syscalls_of_this_thread()
            await asyncio.gather(*(sqlite_db.write(rename_all) for _ in range(3)))
            return _write_syscalls_of_this_thread() - before
        finally:
            sqlite_db.close()

    assert asyncio.run(scenario()) == 0


def _wal_bytes(db: Database) -> int:
    wal = Path(str(sa.make_url(db.url).database) + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _blob_row(tx: Tx) -> None:
    tx.execute(sa.text("INSERT INTO scratch VALUES (randomblob(3000))"))


def test_the_wal_stays_bounded_under_writes_that_never_pause(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit begins the next transaction as soon as one commits, so SQLite never finds
    the moment to write the WAL from its start again by itself: unless the checkpointer makes
    that moment, the WAL grew by every byte written for as long as writes went on."""
    monkeypatch.setattr(_Checkpointer, "INTERVAL_SECONDS", 0.01)
    monkeypatch.setattr(_Checkpointer, "RESTART_FRAMES", 64)
    sqlite_db.write_sync(lambda tx: tx.execute(sa.text("CREATE TABLE scratch (data BLOB)")))

    async def scenario() -> int:
        sqlite_db.start()
        try:
            largest = 0
            for _ in range(400):  # 6,400 rows of 3 KB: about 25 MB through the WAL
                await asyncio.gather(*(sqlite_db.write(_blob_row) for _ in range(16)))
                largest = max(largest, _wal_bytes(sqlite_db))
            return largest
        finally:
            sqlite_db.close()

    largest = asyncio.run(scenario())
    assert largest < 4_000_000
    assert (
        sqlite_db.read_sync(lambda tx: tx.execute(sa.text("SELECT count(*) FROM scratch")).scalar())
        == 6_400
    )


def test_a_long_read_delays_the_wal_restart_but_never_the_writers(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader on an old snapshot keeps frames from being copied, so the WAL cannot start
    afresh while it reads: the checkpointer tries again later instead of holding writes up."""
    monkeypatch.setattr(_Checkpointer, "INTERVAL_SECONDS", 0.01)
    monkeypatch.setattr(_Checkpointer, "RESTART_FRAMES", 64)
    sqlite_db.write_sync(lambda tx: tx.execute(sa.text("CREATE TABLE scratch (data BLOB)")))
    reading = threading.Event()
    done = threading.Event()

    def long_read() -> None:
        def work(tx: Tx) -> None:
            tx.execute(sa.text("SELECT count(*) FROM scratch")).scalar()
            reading.set()
            done.wait(10)

        sqlite_db.read_sync(work)

    async def writes(rounds: int) -> float:
        slowest = 0.0
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            started = loop.time()
            await asyncio.gather(*(sqlite_db.write(_blob_row) for _ in range(16)))
            slowest = max(slowest, loop.time() - started)
        return slowest

    async def scenario() -> tuple[float, int, int]:
        sqlite_db.start()
        reader = threading.Thread(target=long_read)
        try:
            await writes(10)
            reader.start()
            reading.wait(5)
            slowest = await writes(100)
            grown = _wal_bytes(sqlite_db)
            done.set()
            reader.join()
            await asyncio.sleep(0.1)  # the checkpointer's next pass copies what the read held
            await writes(200)
            return slowest, grown, _wal_bytes(sqlite_db)
        finally:
            done.set()
            sqlite_db.close()

    slowest, grown, after = asyncio.run(scenario())
    # Held behind the reader, a round of writes would wait for the whole read (10 s); a round
    # takes milliseconds, so the bound is loose on purpose, for a busy machine.
    assert slowest < 2.0, f"writes waited {slowest:.2f} s"
    assert grown > 4_000_000  # 1,600 rows of 3 KB written while the WAL could not restart
    # Then it restarted and was overwritten from its start: of the 10 MB written after the
    # read ended, little extended the file (without the restart, all of it did).
    assert after - grown < 5_000_000
