"""The small connection layer the repositories are written against.

Repositories issue SQL once, with PostgreSQL-style numbered placeholders (`$1`, `$2`...),
and both backends run it: the SQLite backend rewrites `$n` to SQLite's own `?n`. That keeps
one text per query, so the two backends cannot drift apart.

A transaction is tied to the running task through a context variable: every call made by
that task inside `async with db.transaction():` uses the transaction's connection.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

__all__ = ["Database", "Row"]

#: A result row: columns by name (`row["id"]`) and by position.
Row = Mapping[str, Any]


class Database(abc.ABC):
    """One database reached through one backend driver."""

    #: "sqlite" or "postgresql"; picks the migration dialect.
    dialect: str

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; returns the number of rows it changed."""

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        """Run one query; returns every row."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row of a query, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    @abc.abstractmethod
    async def run_script(self, sql: str) -> None:
        """Run several `;`-separated statements (a migration) in the current transaction."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Commit everything done inside, or roll back if it raises. Nests as savepoints."""

    @abc.abstractmethod
    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Hold the database-wide migration lock (across processes) for the block; the
        block may open transactions of its own."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Run a trivial query; raises `StoreUnavailable` if the database does not answer."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every connection. Idempotent."""
