"""Statements written once with SQLAlchemy Core, compiled once per dialect, run by the driver.

The send-message path runs about ten statements. Through SQLAlchemy's execution machinery a
statement costs 25–30 µs on this class of machine (most of it building result metadata), through
the driver 2–5 µs. So hot-path queries are `Query` objects: the Core statement stays the single,
portable source; its SQL string and parameter order are compiled once per dialect and executed on
the transaction's own DBAPI connection. Only plain values (str, int, bool, None) are bound and
read, which is why the schema uses no types that need processing.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.base import Executable


class Rows:
    """The result of a `Query`: rows with attribute access by column name."""

    __slots__ = ("_cursor", "_make")

    def __init__(self, cursor: Any, make: Callable[[Sequence[Any]], Any] | None) -> None:
        self._cursor = cursor
        self._make = make

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def first(self) -> Any:
        row = self._cursor.fetchone()
        return None if row is None or self._make is None else self._make(row)

    def one(self) -> Any:
        row = self.first()
        if row is None:
            raise LookupError("The query returned no row")
        return row

    def all(self) -> list[Any]:
        make = self._make
        if make is None:
            return []
        return [make(row) for row in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.all())


class _Compiled:
    """A statement's SQL for one dialect, and how to bind a call's parameters to it."""

    __slots__ = ("_defaults", "_ordered", "sql")

    def __init__(self, sql: str, order: Sequence[str] | None, defaults: dict[str, Any]) -> None:
        self.sql = sql
        self._defaults = defaults
        self._ordered: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None = None
        if order is not None:
            names = tuple(order)
            # itemgetter returns a tuple for two names or more only.
            self._ordered = (
                itemgetter(*names) if len(names) > 1 else lambda v: tuple(v[n] for n in names)
            )

    def arguments(self, params: Mapping[str, Any] | None) -> Any:
        """The driver's arguments: a tuple in the statement's order (SQLite), or a mapping."""
        values = params if params else self._defaults
        if self._ordered is None:
            return values if values is self._defaults else {**self._defaults, **values}
        try:
            return self._ordered(values)
        except KeyError:  # a parameter left to its default
            return self._ordered({**self._defaults, **values})


class Query:
    __slots__ = ("_compiled", "_row_types", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        self._row_types: dict[str, Callable[[Sequence[Any]], Any] | None] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        cached = self._compiled.get(dialect.name)
        if cached is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if compiled.positional else None
            cached = _Compiled(compiled.string, order, dict(compiled.params))
            self._compiled[dialect.name] = cached
        return cached

    def _row_type(self, dialect: str, cursor: Any) -> Callable[[Sequence[Any]], Any] | None:
        # A statement's columns never change, and psycopg builds its `description` afresh on
        # each read (a tenth of a flow start's CPU on PostgreSQL): read it once per dialect.
        try:
            return self._row_types[dialect]
        except KeyError:
            pass
        description = cursor.description
        make = (
            None
            if description is None
            else namedtuple("Row", [column[0] for column in description])._make  # type: ignore[attr-defined]
        )
        self._row_types[dialect] = make
        return make

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Rows:
        driver = conn.connection.driver_connection
        assert driver is not None
        return self.run_on(driver, conn.dialect, params)

    def run_on(
        self, driver: Any, dialect: Dialect, params: Mapping[str, Any] | None = None
    ) -> Rows:
        """`run` with the transaction's driver connection and dialect already at hand."""
        compiled = self._compile(dialect)
        cursor = driver.execute(compiled.sql, compiled.arguments(params))
        return Rows(cursor, self._row_type(dialect.name, cursor))

    def run_many_on(self, driver: Any, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> None:
        """One statement, many parameter sets (the driver's executemany)."""
        compiled = self._compile(dialect)
        cursor = driver.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.arguments(row) for row in rows])
        finally:
            cursor.close()


Among = Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]
"""Whether a column's value is one of the list's: what an `InQuery` builds its condition with."""


class InQuery:
    """A `Query` with one list of values, written with `among(column)` where SQL has `IN`.

    On PostgreSQL the list is bound as one array (`column = ANY(%s)`): one statement for every
    length, which psycopg prepares once. SQLite has no arrays: there it is `IN (?, ?, …)`,
    compiled once per length.
    """

    __slots__ = ("_array", "_build", "_by_length")

    def __init__(self, build: Callable[[Among], Executable]) -> None:
        self._build = build
        self._array: Query | None = None
        self._by_length: dict[int, Query] = {}

    def run(
        self, conn: Connection, values: Sequence[Any], params: Mapping[str, Any] | None = None
    ) -> Rows:
        if conn.dialect.name == "postgresql":
            if self._array is None:
                self._array = Query(self._build(_among_array))
            query, bound = self._array, {"in_values": list(values)}
        else:
            found = self._by_length.get(len(values))
            if found is None:
                found = Query(self._build(_among_list(len(values))))
                self._by_length[len(values)] = found
            query, bound = found, {f"in_{i}": value for i, value in enumerate(values)}
        return query.run(conn, {**bound, **params} if params else bound)


def _among_array(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return column == sa.any_(sa.bindparam("in_values"))


def _among_list(length: int) -> Among:
    def among(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return column.in_([sa.bindparam(f"in_{i}") for i in range(length)])

    return among


def param(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name)


def insert_row(table: sa.Table) -> Query:
    """An insert of one whole row, each column bound as a parameter of its own name."""
    return Query(table.insert().values({c.name: param(c.name) for c in table.columns}))
