"""The database: engines, transactions, and where they run.

Every use case is a synchronous function of a `Tx` that runs whole inside one transaction.

- **SQLite** has one writer, and its statements take microseconds, so write jobs run right on the
  event loop, with no thread hop, each in its own SAVEPOINT inside a shared transaction: a job
  that fails rolls back alone. The transaction commits as soon as the loop has run the jobs that
  were ready (group commit): the COMMIT and its fsync run on a thread, jobs arriving meanwhile
  wait and go into the next transaction, and every job's caller resumes only once its transaction
  has committed. BEGIN IMMEDIATE runs on the loop when the write lock is free, and on a thread
  when another process (a worker) or `write_sync` holds it. Reads run on the loop too, on their
  own connection, in the driver's own transaction: WAL never blocks them.
- **PostgreSQL** runs each write in its own transaction on a pooled connection, on a thread, and
  retries it on serialization failures, deadlocks and unique races. Reads run on threads too, in
  autocommit: at PostgreSQL's READ COMMITTED each statement sees its own snapshot anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from chatflow.clock import Clock, to_millis
from chatflow.domain.models import Event
from chatflow.storage.sql import Query, Rows

T = TypeVar("T")
log = logging.getLogger(__name__)

_PG_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
_BUSY_TIMEOUT_MS = 30_000
_PG_ATTEMPTS = 4


def _sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL error code, whether the driver's error came raw (hot-path `Query`s run on
    the driver) or wrapped by SQLAlchemy."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig if exc.orig is not None else exc
    return getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None


def is_transient_database_error(exc: BaseException) -> bool:
    """An error that says nothing about the work, only about the moment: a deadlock, a
    serialization failure, a unique race, a lost connection, a locked or full SQLite file. Work
    that meets one must fail whole, to be tried again, never be skipped. Any other database
    error (a value too long, a constraint) would fail again, every time."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, sqlite3.OperationalError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        return True
    state = _sqlstate(exc) or ""
    return state in _PG_RETRYABLE_SQLSTATES or state[:2] in ("08", "53", "57", "58")


class Tx:
    """One open transaction: its connection, its moment, and the events it records.

    `now` is read once from the clock when the transaction starts, so every row a use case
    writes carries the same time.
    """

    __slots__ = (
        "_database",
        "_dialect",
        "_driver",
        "cause",
        "conn",
        "events",
        "now",
    )

    def __init__(self, database: Database, conn: Connection, now: int) -> None:
        self._database = database
        self.conn = conn
        self._driver = conn.connection.driver_connection
        self._dialect = conn.dialect
        self.now = now
        self.events: list[Event] = []
        self.cause: dict[str, Any] | None = None
        """Set while a flow run's step acts: the events it makes carry it (`Event.cause`)."""

    @property
    def dialect(self) -> str:
        return self._database.dialect

    def run(self, query: Query, params: dict[str, Any] | None = None) -> Rows:
        return query.run_on(self._driver, self._dialect, params)

    def run_many(self, query: Query, rows: list[dict[str, Any]]) -> None:
        query.run_many_on(self._driver, self._dialect, rows)

    def execute(self, statement: sa.Executable) -> CursorResult[Any]:
        """The general path, for statements off the hot path (dynamic filters, IN lists)."""
        return self.conn.execute(statement)

    def next_bump_key(self) -> int:
        return self._database.next_bump_key(self.now)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that, if it raises, rolls back alone: its rows and its
        events; the rest of the transaction goes on."""
        driver = self.conn.connection.driver_connection
        assert driver is not None
        events = len(self.events)
        driver.execute("SAVEPOINT part")
        try:
            yield
        except BaseException:
            driver.execute("ROLLBACK TO SAVEPOINT part")
            driver.execute("RELEASE SAVEPOINT part")
            del self.events[events:]
            raise
        driver.execute("RELEASE SAVEPOINT part")


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
        self._sqlite: _SqliteWriter | None = None
        self._checkpointer: _Checkpointer
        self._loop_reader: Connection | None = None
        self._loop_reader_thread: int | None = None
        if self.dialect == "sqlite":
            self._writer_engine = _sqlite_engine(url, writer=True)
            self._reader_engine = _sqlite_engine(url, writer=False)
            self._write_pool: ThreadPoolExecutor | None = None
        elif self.dialect == "postgresql":
            self._writer_engine = sa.create_engine(
                driver_url(url), pool_size=pool_size, max_overflow=0, pool_pre_ping=False
            )
            # Reads in autocommit: at READ COMMITTED every statement takes its own snapshot
            # whether or not a transaction wraps it, so a BEGIN and a COMMIT around a read
            # only cost two round trips. Read-only, so a write slipped into a read fails
            # instead of committing statement by statement.
            self._reader_engine = sa.create_engine(
                driver_url(url),
                pool_size=pool_size,
                max_overflow=0,
                pool_pre_ping=False,
                isolation_level="AUTOCOMMIT",
                connect_args={"options": "-c default_transaction_read_only=on"},
            )
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
            writing = threading.Lock()
            self._sqlite = _SqliteWriter(self, self._writer_engine.connect(), writing)
            self._checkpointer = _Checkpointer(self._reader_engine, writing)

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
            self._checkpointer.stop()
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        if self._write_pool is not None:
            self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        self._writer_engine.dispose()
        self._reader_engine.dispose()
        self._started = False

    def on_commit(self, listener: CommitListener) -> None:
        """Call `listener` with the events of every commit, on the caller's loop: once for a
        group commit, with all its jobs' events in their order."""
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
        """Run `work` in a write transaction; after it commits, hand its events to the listeners.

        The listeners are called even if the caller is cancelled while the commit is under way:
        what committed is always announced.
        """
        if self._sqlite is not None:
            return await self._sqlite.write(work)
        loop = asyncio.get_running_loop()
        assert self._write_pool is not None
        running = self._write_pool.submit(self._pooled_write, work)

        def announce(done: Future[tuple[T, list[Event]]]) -> None:
            if not done.cancelled() and done.exception() is None:
                loop.call_soon_threadsafe(self._announce, done.result()[1])

        running.add_done_callback(announce)
        result, _ = await asyncio.wrap_future(running)
        return result

    def write_sync(self, work: Callable[[Tx], T]) -> T:
        """Run a write from a thread with no event loop (the CLI, start-up, tests)."""
        if self.dialect == "sqlite":
            if self._sqlite is not None:
                result, events = self._sqlite.write_sync(work)
            else:
                with self._writer_engine.connect() as conn:
                    result, events = _transaction(self, conn, work)
        else:
            result, events = self._pooled_write(work)
        self._announce(events)
        return result

    async def read(self, work: Callable[[Tx], T]) -> T:
        if self.dialect == "sqlite" and self._started:
            # On the loop: a WAL read takes microseconds and never waits for the writer.
            if self._loop_reader is None:
                self._loop_reader = self._reader_engine.connect()
                self._loop_reader_thread = threading.get_ident()
            if self._loop_reader_thread == threading.get_ident():
                return self._read_on_loop(self._loop_reader, work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self.read_sync, work)

    def _read_on_loop(self, conn: Connection, work: Callable[[Tx], T]) -> T:
        # The driver's own BEGIN and COMMIT: SQLAlchemy's begin and commit around them cost
        # twenty times as much (20 µs), on every read of every request. A statement run
        # through SQLAlchemy (`Tx.execute`) makes it begin too: the reader's begin hook finds
        # the transaction open, and SQLAlchemy then ends it.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN")
        try:
            result = work(Tx(self, conn, to_millis(self.clock.now())))
        except BaseException:
            _end_read(conn, driver, commit=False)
            raise
        _end_read(conn, driver, commit=True)
        return result

    def read_sync(self, work: Callable[[Tx], T]) -> T:
        with self._reader_engine.connect() as conn, conn.begin():
            return work(Tx(self, conn, to_millis(self.clock.now())))

    def _announce(self, events: list[Event]) -> None:
        if events:
            for listener in self._commit_listeners:
                try:
                    listener(events)
                except Exception:
                    log.exception("A commit listener failed; the events stay in the outbox")

    # -- PostgreSQL -------------------------------------------------------------------------

    def _pooled_write(self, work: Callable[[Tx], T]) -> tuple[T, list[Event]]:
        for attempt in range(1, _PG_ATTEMPTS + 1):
            try:
                with self._writer_engine.connect() as conn:
                    return _transaction(self, conn, work)
            except (DBAPIError, psycopg.Error) as exc:
                sqlstate = _sqlstate(exc)
                if sqlstate not in _PG_RETRYABLE_SQLSTATES or attempt == _PG_ATTEMPTS:
                    raise
                log.info("Retrying a write after %s (attempt %d)", sqlstate, attempt)
        raise AssertionError("unreachable")


def _end_read(conn: Connection, driver: sqlite3.Connection, *, commit: bool) -> None:
    if conn.in_transaction():
        if commit:
            conn.commit()
        else:
            conn.rollback()
    elif driver.in_transaction:  # SQLite may have ended it already, on an I/O error
        driver.execute("COMMIT" if commit else "ROLLBACK")


def _transaction(
    database: Database, conn: Connection, work: Callable[[Tx], T]
) -> tuple[T, list[Event]]:
    with conn.begin():
        tx = Tx(database, conn, to_millis(database.clock.now()))
        result = work(tx)
    return result, tx.events


class _SqliteWriter:
    """Group commit on the event loop (see the module's docstring).

    `_owner` guards the one writer connection: the loop holds it from BEGIN to COMMIT, and
    `write_sync` (another thread) takes it for a transaction of its own in between. BEGIN and
    COMMIT run as tasks that no caller can cancel, so a request cancelled while it waits never
    leaves a transaction open, or the lock held, with nobody to finish it.

    The group-commit state belongs to one event loop (the server has one). A write from another
    loop (tests drive one database from several) runs as `write_sync` on a thread: two loops
    sharing the open transaction and its futures wedged the writer.
    """

    def __init__(self, database: Database, conn: Connection, owner: threading.Lock) -> None:
        self._database = database
        self._conn = conn
        driver = conn.connection.driver_connection
        assert driver is not None
        self._driver = driver
        self._owner = owner
        self._transaction: RootTransaction | None = None
        self._committed: asyncio.Future[None] | None = None
        """What the jobs of the open transaction wait for."""
        self._events: list[Event] = []
        """The events of the open transaction's jobs, announced once it commits."""
        self._generation = 0
        """Counts transactions, so a commit scheduled for one never touches the next."""
        self._commit_scheduled_for = -1
        self._turn: asyncio.Future[None] | None = None
        """Set while BEGIN or COMMIT runs on a thread: new jobs wait for it."""
        self._waiting = 0
        """Callers waiting for a transaction to run their job in."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop whose writes are grouped; taken by the first, or the next once it closed."""

    async def write(self, work: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            home = self._loop
            idle = self._transaction is None and self._turn is None and not self._tasks
            if home is None or (home.is_closed() and idle):
                self._loop = loop
            else:
                result, events = await loop.run_in_executor(None, self.write_sync, work)
                self._database._announce(events)
                return result
        self._waiting += 1
        try:
            while self._transaction is None or self._turn is not None:
                if self._turn is None:
                    self._turn = self._spawn(loop, self._begin(loop))
                await asyncio.shield(self._turn)
        except BaseException:
            # Cancelled (or BEGIN failed): if nobody else will run a job in an open
            # transaction, commit it, so the write lock is not held by an idle transaction.
            if self._waiting == 1 and self._transaction is not None and self._turn is None:
                self._schedule_commit(loop)
            raise
        finally:
            self._waiting -= 1
        committed = self._committed
        assert committed is not None
        tx = Tx(self._database, self._conn, to_millis(self._database.clock.now()))
        self._driver.execute("SAVEPOINT job")
        try:
            result = work(tx)
        except BaseException as exc:
            if self._rolled_back_job():
                self._schedule_commit(loop)
            else:
                self._abort(exc)
            raise
        self._driver.execute("RELEASE SAVEPOINT job")
        self._events += tx.events
        self._schedule_commit(loop)
        await asyncio.shield(committed)
        return result

    def _spawn(
        self, loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        task = loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _begin(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            transaction = self._begin_if_free()
            if transaction is None:
                transaction = await loop.run_in_executor(None, self._begin_on_thread)
            self._transaction = transaction
            self._committed = loop.create_future()
            self._generation += 1
            if self._waiting == 0:
                # Every caller that waited for this BEGIN has gone: commit the empty
                # transaction, so the write lock is never held by an idle one. (A caller still
                # waiting runs its job first and schedules the commit after it.)
                self._schedule_commit(loop)
        finally:
            self._turn = None

    def _begin_if_free(self) -> RootTransaction | None:
        """BEGIN IMMEDIATE right here when nobody holds the write lock: no thread hop, no GIL
        hand-over. None when `write_sync` or another process holds it: waiting for it is a
        thread's job, so the loop never sleeps in SQLite's busy handler."""
        if not self._owner.acquire(blocking=False):
            return None
        try:
            self._driver.execute("PRAGMA busy_timeout=0")
            try:
                self._driver.execute("BEGIN IMMEDIATE")
            finally:
                self._driver.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            return self._conn.begin()  # the begin hook finds the transaction open
        except BaseException as exc:
            if self._driver.in_transaction:
                self._driver.execute("ROLLBACK")
            self._owner.release()
            busy = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode in busy:
                return None
            raise

    def _begin_on_thread(self) -> RootTransaction:
        self._owner.acquire()
        try:
            return self._conn.begin()
        except BaseException:
            self._owner.release()
            raise

    def _rolled_back_job(self) -> bool:
        """Undo the failed job's savepoint; False when SQLite has already rolled back the whole
        transaction (a full disk, an I/O error), taking the other jobs of the group with it."""
        try:
            self._driver.execute("ROLLBACK TO SAVEPOINT job")
            self._driver.execute("RELEASE SAVEPOINT job")
        except Exception:
            log.exception("Could not roll back a failed job's savepoint")
        return bool(self._driver.in_transaction)

    def _abort(self, error: BaseException) -> None:
        """The transaction is lost: every job of the group fails, and the next job begins anew."""
        transaction, committed = self._transaction, self._committed
        self._transaction = None
        self._committed = None
        self._events = []
        try:
            if transaction is not None and transaction.is_active:
                transaction.rollback()
        except Exception:
            log.exception("Could not roll back a lost transaction")
        finally:
            self._owner.release()
        if committed is not None and not committed.done():
            committed.set_exception(error)
            committed.exception()  # retrieved here: each waiting job raises it

    def _schedule_commit(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._commit_scheduled_for != self._generation:
            self._commit_scheduled_for = self._generation
            # After the callbacks already ready: requests the loop is about to resume join this
            # transaction.
            loop.call_soon(self._start_commit, loop, self._generation)

    def _start_commit(self, loop: asyncio.AbstractEventLoop, generation: int) -> None:
        self._spawn(loop, self._commit(loop, generation))

    async def _commit(self, loop: asyncio.AbstractEventLoop, generation: int) -> None:
        transaction, committed = self._transaction, self._committed
        if generation != self._generation or transaction is None or committed is None:
            return  # that transaction was aborted
        turn = loop.create_future()
        self._turn = turn
        # No job joins the transaction from here: they wait for the turn.
        events, self._events = self._events, []
        try:
            await loop.run_in_executor(None, self._commit_on_thread, transaction)
        except BaseException as exc:
            # The commit itself failed: nothing of this transaction is stored.
            committed.set_exception(exc)
            committed.exception()  # retrieved here: each waiting job raises it
        else:
            # Announced before any job's caller resumes, and whether or not it is still there.
            try:
                self._database._announce(events)
            finally:
                committed.set_result(None)
        finally:
            self._transaction = None
            self._committed = None
            self._turn = None
            turn.set_result(None)

    def _commit_on_thread(self, transaction: RootTransaction) -> None:
        try:
            transaction.commit()
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise
        finally:
            self._owner.release()

    def write_sync(self, work: Callable[[Tx], T]) -> tuple[T, list[Event]]:
        """For threads without the loop; never call it on the loop's own thread."""
        with self._owner:
            return _transaction(self._database, self._conn, work)

    def close(self) -> None:
        with self._owner:
            self._conn.close()


class _Checkpointer:
    """Copies the WAL into the database file in the background, and keeps the WAL bounded.

    The writer connection does not checkpoint (`wal_autocheckpoint=0`): done at commit, as SQLite
    does by default, a checkpoint and its fsync would stall the commit, and every request waiting
    for it, for tens of milliseconds. A PASSIVE checkpoint never blocks the writer or readers.

    SQLite writes the WAL from its start again when a write transaction begins with every frame
    already copied, and no reader still on an older snapshot. The group commit begins the next
    transaction as soon as one commits, so under sustained writes that moment never came, and
    the WAL grew by the whole write rate (37 MB a second at 1,700 sends a second) for as long
    as the load lasted. So once the WAL holds `RESTART_FRAMES`, the checkpointer makes that
    moment: it takes `writing`, the lock the writer holds from BEGIN to COMMIT, between two of
    its transactions, and copies the frames committed since its last pass; the next write
    transaction then starts the WAL afresh. Writers wait for that copy only (2–12 ms under the
    heaviest load here; passes without the lock first leave it little to copy), never for
    readers: a reader on an old snapshot leaves frames uncopied, and the checkpointer tries
    again on its next round.
    """

    INTERVAL_SECONDS = 0.5
    RESTART_FRAMES = 8_192
    """32 MiB of 4 KiB pages: about a second of the heaviest write load."""
    LOCKED_COPY_FRAMES = 512
    """At most about this many frames are left for the copy writers wait for."""

    def __init__(self, engine: Engine, writing: threading.Lock) -> None:
        self._engine = engine
        self._writing = writing
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="db-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            while not self._stopping.wait(self.INTERVAL_SECONDS):
                try:
                    frames, copied = _passive_checkpoint(driver)
                    if frames < self.RESTART_FRAMES:
                        continue
                    # Each pass copies what came during the one before: writers wait only for
                    # the last, short one (unless a reader holds frames back, and then the
                    # restart waits for the next round).
                    for _ in range(3):
                        if frames - copied <= self.LOCKED_COPY_FRAMES:
                            break
                        frames, copied = _passive_checkpoint(driver)
                    with self._writing:
                        _passive_checkpoint(driver)
                except Exception:
                    log.exception("A WAL checkpoint failed; the next one tries again")

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def _passive_checkpoint(driver: sqlite3.Connection) -> tuple[int, int]:
    """Frames in the WAL, and frames copied into the database (-1 each when another connection
    was checkpointing)."""
    _, frames, copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames), int(copied)


def driver_url(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def ensure_sqlite_directory(url: str) -> None:
    """A SQLite file's folder is made on first use (the default is ./data/chatflow.db)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_engine(url: str, *, writer: bool) -> Engine:
    ensure_sqlite_directory(url)
    parsed = sa.make_url(url)
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
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit survives power loss; group commit keeps its fsync cheap per request.
        cursor.execute("PRAGMA synchronous=FULL")
        # Savepoints' and statements' journals in memory, not in temporary files: every job of
        # a group commit runs in a savepoint, and its journal written to a file was three
        # quarters of a send's write syscalls (41 a send against 11) and 13 % of its CPU.
        cursor.execute("PRAGMA temp_store=MEMORY")
        if writer:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # see _Checkpointer
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front, so a transaction never fails half-way on
        # SQLITE_BUSY when it upgrades from reading to writing.
        driver = conn.connection.driver_connection
        assert driver is not None
        # Begun already, on the driver: by `_SqliteWriter._begin_if_free` (a writer) or by
        # `Database._read_on_loop` (a reader).
        if driver.in_transaction:
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


__all__ = ["Database", "Query", "Tx"]
