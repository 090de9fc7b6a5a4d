"""Statements written once with SQLAlchemy Core, compiled once per dialect, run through the driver.

SQLAlchemy's full execution path costs about 28 µs a statement on this class of machine, against
about 7 µs for `exec_driver_sql`; the send-message path runs seven or eight statements, so hot-path
queries are kept as `Query` objects: the Core statement stays the single, portable source, and the
compiled string and parameter order are cached per dialect. Only plain values (str, int, bool,
None) are bound, which is why the schema uses no types that need processing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql.base import Executable


class Query:
    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def _compile(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        cached = self._compiled.get(dialect.name)
        if cached is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if compiled.positional else None
            cached = (compiled.string, order, dict(compiled.params))
            self._compiled[dialect.name] = cached
        return cached

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> CursorResult[Any]:
        sql, order, defaults = self._compile(conn.dialect)
        values = {**defaults, **params} if params else defaults
        if order is not None:
            return conn.exec_driver_sql(sql, tuple(values[name] for name in order))
        return conn.exec_driver_sql(sql, values)

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """One statement, many parameter sets (the driver's executemany)."""
        sql, order, defaults = self._compile(conn.dialect)
        if order is not None:
            conn.exec_driver_sql(
                sql, [tuple({**defaults, **row}[name] for name in order) for row in rows]
            )
        else:
            conn.exec_driver_sql(sql, [{**defaults, **row} for row in rows])


def param(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name)
