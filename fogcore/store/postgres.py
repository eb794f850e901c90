"""PostgreSQL backend (production) through an asyncpg connection pool.

Statements outside a transaction take any pooled connection and autocommit. A transaction
holds one connection for its whole block. Migrations run under a session-level advisory
lock, so any number of processes can open the same database at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from typing import Any

import asyncpg

from .base import (
    Conflict,
    ConstraintViolation,
    InvalidReference,
    StoreError,
    StoreUnavailable,
)
from .db import Database, Row

__all__ = ["PostgresDatabase", "MIGRATION_LOCK_KEY"]

#: The advisory lock key every fogcore process takes while migrating (a fixed 63-bit
#: number derived from a name, so it does not collide with other applications' keys).
MIGRATION_LOCK_KEY = (
    int.from_bytes(hashlib.blake2b(b"fogcore.store.migrations", digest_size=8).digest(), "big") >> 1
)

_KEY_COLUMNS = re.compile(r"^Key \(([^)]*)\)=")
_UNAVAILABLE = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError)


def _conflict_target(exc: asyncpg.UniqueViolationError) -> str | None:
    # Only table and column names are kept: the detail text also holds the values.
    match = _KEY_COLUMNS.match(getattr(exc, "detail", None) or "")
    table = getattr(exc, "table_name", None)
    if match and table:
        return ", ".join(f"{table}.{col.strip()}" for col in match[1].split(","))
    return table


@contextlib.contextmanager
def _translate():
    """Driver errors to the store's typed errors, with short messages and no SQL."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("already exists", _conflict_target(exc)) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise InvalidReference("refers to a row that does not exist") from exc
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
        raise ConstraintViolation("value not allowed") from exc
    except _UNAVAILABLE as exc:
        raise StoreUnavailable("database unavailable") from exc
    except (asyncpg.CannotConnectNowError, asyncpg.InsufficientResourcesError) as exc:
        raise StoreUnavailable("database unavailable") from exc
    except asyncpg.PostgresError as exc:
        if (getattr(exc, "sqlstate", "") or "").startswith("22"):
            raise ConstraintViolation("value not allowed") from exc
        raise StoreError("database operation failed") from exc
    except asyncpg.InterfaceError as exc:
        raise StoreError("database operation failed") from exc


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 3", "INSERT 0 1", "CREATE TABLE".
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresDatabase(Database):
    """A PostgreSQL database behind an asyncpg pool."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._closed = False
        self._tx: ContextVar[asyncpg.Connection | None] = ContextVar(
            f"fogcore_pg_conn_{id(self)}", default=None
        )

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 60.0,
    ) -> PostgresDatabase:
        """Connect a pool to `dsn`. `schema` sets the search path (one schema per test run
        or per tenant)."""
        settings = {"search_path": schema} if schema else None
        with _translate():
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                server_settings=settings,
            )
        return cls(pool)

    def _live(self) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")

    # -- statements -----------------------------------------------------------------------

    def _target(self) -> asyncpg.Connection | asyncpg.Pool:
        self._live()
        conn = self._tx.get()
        return self._pool if conn is None else conn

    async def execute(self, sql: str, *args: Any) -> int:
        target = self._target()
        with _translate():
            return _rowcount(await target.execute(sql, *args))

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        target = self._target()
        with _translate():
            return await target.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        target = self._target()
        with _translate():
            return await target.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        target = self._target()
        with _translate():
            return await target.fetchval(sql, *args)

    async def run_script(self, sql: str) -> None:
        conn = self._tx.get()
        if conn is None:
            raise StoreError("run_script needs a transaction")
        with _translate():
            # Without arguments asyncpg uses the simple protocol: many statements at once.
            await conn.execute(sql)

    # -- transactions ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The task's connection if it holds one, else one from the pool for the block."""
        self._live()
        conn = self._tx.get()
        if conn is not None:
            yield conn
            return
        with _translate():
            conn = await self._pool.acquire()
        token = self._tx.set(conn)
        try:
            yield conn
        finally:
            self._tx.reset(token)
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._connection() as conn:
            # asyncpg nests by itself: a savepoint when a transaction is already open.
            tx = conn.transaction()
            with _translate():
                await tx.start()
            try:
                yield
            except BaseException:
                with contextlib.suppress(Exception):
                    await tx.rollback()
                raise
            else:
                try:
                    with _translate():
                        await tx.commit()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await tx.rollback()
                    raise

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._connection() as conn:
            with _translate():
                await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)

    # -- housekeeping ---------------------------------------------------------------------

    async def ping(self) -> None:
        target = self._target()
        with _translate():
            await target.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), timeout=10)
        except Exception:
            # A connection stuck in a query must not keep the process from shutting down.
            self._pool.terminate()
