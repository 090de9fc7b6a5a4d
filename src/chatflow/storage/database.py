"""The database: engines, transactions, and the threads that run them.

Every use case is a synchronous function of a `Tx` that runs whole inside one transaction, in a
worker thread; the event loop awaits its result. On SQLite one writer thread runs write
transactions in small batches (group commit): each job gets a SAVEPOINT, so a failing job rolls
back alone while the others commit together with one fsync. On PostgreSQL each write runs in its own
transaction on a pooled connection and is retried on serialization failures, deadlocks and unique
races. Reads run on a small pool of read-only transactions.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from chatflow.clock import Clock, to_millis
from chatflow.domain.models import Event
from chatflow.storage.sql import Query

T = TypeVar("T")
log = logging.getLogger(__name__)

_BATCH_LIMIT = 64
_PG_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
_PG_ATTEMPTS = 4


class Tx:
    """One open transaction: its connection, its moment, and what to do once it commits.

    `now` is read once from the clock when the transaction starts, so every row a use case
    writes carries the same time.
    """

    __slots__ = ("_after_commit", "_database", "conn", "events", "now", "writable")

    def __init__(self, database: Database, conn: Connection, now: int, writable: bool) -> None:
        self._database = database
        self.conn = conn
        self.now = now
        self.writable = writable
        self.events: list[Event] = []
        self._after_commit: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self._database.dialect

    def run(self, query: Query, params: dict[str, Any] | None = None) -> CursorResult[Any]:
        return query.run(self.conn, params)

    def run_many(self, query: Query, rows: list[dict[str, Any]]) -> None:
        query.run_many(self.conn, rows)

    def execute(self, statement: sa.Executable) -> CursorResult[Any]:
        """The general path, for statements off the hot path (dynamic filters, IN lists)."""
        return self.conn.execute(statement)

    def next_bump_key(self) -> int:
        return self._database.next_bump_key(self.now)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


@dataclass
class _Job:
    work: Callable[[Tx], Any]
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None
    done: threading.Event | None = None
    result: Any = None
    error: BaseException | None = None
    tx: Tx | None = None
    hooks: list[Callable[[], None]] = field(default_factory=list)


CommitListener = Callable[[list[Event]], None]


class Database:
    def __init__(self, url: str, clock: Clock, *, pool_size: int = 8) -> None:
        self.url = url
        self.clock = clock
        self.dialect = sa.make_url(url).get_backend_name()
        self._commit_listeners: list[CommitListener] = []
        self._bump_lock = threading.Lock()
        self._last_bump_key = 0
        self._started = False
        if self.dialect == "sqlite":
            self._writer_engine = _sqlite_engine(url, writer=True)
            self._reader_engine = _sqlite_engine(url, writer=False)
            self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
            self._writer_thread: threading.Thread | None = None
            self._write_pool: ThreadPoolExecutor | None = None
        elif self.dialect == "postgresql":
            engine = sa.create_engine(
                _psycopg_url(url), pool_size=pool_size, max_overflow=0, pool_pre_ping=False
            )
            self._writer_engine = engine
            self._reader_engine = engine
            self._write_pool = ThreadPoolExecutor(pool_size, thread_name_prefix="db-write")
        else:
            raise ValueError(f"Unsupported database {self.dialect!r}: use sqlite or postgresql")
        self._read_pool = ThreadPoolExecutor(4, thread_name_prefix="db-read")

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self._writer_engine

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        with self._reader_engine.connect() as conn:
            found = conn.execute(sa.text("SELECT max(bump_key) FROM chatrooms")).scalar()
        self._last_bump_key = max(self._last_bump_key, int(found or 0))
        if self.dialect == "sqlite":
            self._writer_thread = threading.Thread(
                target=self._sqlite_writer, name="db-writer", daemon=True
            )
            self._writer_thread.start()

    def close(self) -> None:
        if self.dialect == "sqlite" and self._writer_thread is not None:
            self._queue.put(None)
            self._writer_thread.join()
            self._writer_thread = None
        if self._write_pool is not None:
            self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        self._writer_engine.dispose()
        self._reader_engine.dispose()
        self._started = False

    def on_commit(self, listener: CommitListener) -> None:
        """Call `listener` with the events of every committed write, on the caller's loop."""
        self._commit_listeners.append(listener)

    def next_bump_key(self, now: int) -> int:
        """R3 order keys: the bump time in microseconds, strictly increasing in this process.

        Strictly increasing so that two bumps in the same instant (or under a frozen test clock)
        still order the later one first.
        """
        with self._bump_lock:
            key = max(now * 1000, self._last_bump_key + 1)
            self._last_bump_key = key
            return key

    # -- running work -----------------------------------------------------------------------

    async def write(self, work: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        if self.dialect == "sqlite":
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.put(_Job(work, loop, future))
            result, hooks, events = await future
        else:
            assert self._write_pool is not None
            result, hooks, events = await loop.run_in_executor(
                self._write_pool, self._postgres_write, work
            )
        self._after_commit(hooks, events)
        return result  # type: ignore[no-any-return]

    def write_sync(self, work: Callable[[Tx], T]) -> T:
        """Run a write from a thread with no event loop (the CLI, start-up, tests)."""
        if self.dialect == "sqlite":
            done = threading.Event()
            job = _Job(work, None, None, done=done)
            if self._writer_thread is None:
                self._run_sqlite_batch([job])
            else:
                self._queue.put(job)
                done.wait()
            if job.error is not None:
                raise job.error
            result, hooks, events = job.result
        else:
            result, hooks, events = self._postgres_write(work)
        self._after_commit(hooks, events)
        return result  # type: ignore[no-any-return]

    async def read(self, work: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self.read_sync, work)

    def read_sync(self, work: Callable[[Tx], T]) -> T:
        with self._reader_engine.connect() as conn, conn.begin():
            return work(Tx(self, conn, to_millis(self.clock.now()), writable=False))

    def _after_commit(self, hooks: list[Callable[[], None]], events: list[Event]) -> None:
        for hook in hooks:
            hook()
        if events:
            for listener in self._commit_listeners:
                try:
                    listener(events)
                except Exception:
                    log.exception("A commit listener failed; the events stay in the outbox")

    # -- PostgreSQL -------------------------------------------------------------------------

    def _postgres_write(
        self, work: Callable[[Tx], T]
    ) -> tuple[T, list[Callable[[], None]], list[Event]]:
        for attempt in range(1, _PG_ATTEMPTS + 1):
            try:
                with self._writer_engine.connect() as conn, conn.begin():
                    tx = Tx(self, conn, to_millis(self.clock.now()), writable=True)
                    result = work(tx)
                return result, tx._after_commit, tx.events
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate not in _PG_RETRYABLE_SQLSTATES or attempt == _PG_ATTEMPTS:
                    raise
                log.info("Retrying a write after %s (attempt %d)", sqlstate, attempt)
        raise AssertionError("unreachable")

    # -- SQLite -----------------------------------------------------------------------------

    def _sqlite_writer(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _BATCH_LIMIT:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)
                    break
                batch.append(job)
            self._run_sqlite_batch(batch)

    def _run_sqlite_batch(self, batch: list[_Job]) -> None:
        try:
            with self._writer_engine.connect() as conn:
                with conn.begin():
                    for job in batch:
                        savepoint = conn.begin_nested()
                        tx = Tx(self, conn, to_millis(self.clock.now()), writable=True)
                        try:
                            job.result = job.work(tx)
                        except BaseException as exc:
                            savepoint.rollback()
                            job.error = exc
                        else:
                            savepoint.commit()
                            job.tx = tx
                for job in batch:
                    if job.error is None and job.tx is not None:
                        job.result = (job.result, job.tx._after_commit, job.tx.events)
        except BaseException as exc:
            # The commit itself failed: nothing of this batch is stored.
            for job in batch:
                if job.error is None:
                    job.error = exc
        for job in batch:
            _resolve(job)


def _resolve(job: _Job) -> None:
    if job.done is not None:
        job.done.set()
        return
    assert job.loop is not None and job.future is not None
    future = job.future
    if job.error is not None:
        error = job.error
        job.loop.call_soon_threadsafe(_set_exception, future, error)
    else:
        job.loop.call_soon_threadsafe(_set_result, future, job.result)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _psycopg_url(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_engine(url: str, *, writer: bool) -> Engine:
    parsed = sa.make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        parsed,
        pool_size=1 if writer else 4,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE and
        # SAVEPOINTs behave as written.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: a commit survives power loss; group commit keeps its fsync cheap per request.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front, so a transaction never fails half-way on
        # SQLITE_BUSY when it upgrades from reading to writing.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, IntegrityError) and "unique" in str(exc.orig).lower()


__all__ = ["Database", "OperationalError", "Query", "Tx", "is_unique_violation"]
