"""SQLite backend (the embedded default) through aiosqlite.

Set-up per connection: WAL journal (readers never block the writer, and a killed process
leaves a database that opens with every committed transaction), foreign keys on, a busy
timeout so concurrent processes wait for the write lock instead of failing, and
`synchronous=NORMAL` (in WAL mode this survives any process crash; only a power cut or OS
crash may lose the last commits; `?synchronous=full` in the URL syncs every commit).

SQLite allows one writer at a time, so writes from this process go through one connection
(aiosqlite's worker thread) guarded by an asyncio lock; a transaction holds that lock until
it ends and starts with BEGIN IMMEDIATE, taking the file's write lock up front (so two
processes never deadlock upgrading a read lock).

Reads outside a transaction run on a second, read-only connection directly on the event
loop thread: in WAL mode they never wait for a writer, and an indexed lookup takes a few
microseconds, far less than a hop to a worker thread and back (about 60-100 us here). The
rare read that finds the file busy (WAL recovery after a crash) is retried through the
worker thread instead of blocking the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import aiosqlite

from .base import (
    Conflict,
    ConstraintViolation,
    InvalidReference,
    StoreError,
    StoreUnavailable,
)
from .db import Database, Row

__all__ = ["SQLiteDatabase", "MEMORY"]

#: The path that selects a private in-memory database (tests, throw-away runs).
MEMORY = ":memory:"

_PLACEHOLDER = re.compile(r"\$(\d+)")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")


@lru_cache(maxsize=1024)
def _qmark(sql: str) -> str:
    """`$n` placeholders (the repositories' style) to SQLite's `?n`."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


def _check_args(args: Sequence[Any]) -> None:
    # PostgreSQL refuses NUL in text; refusing it here too keeps the backends' contract equal.
    for arg in args:
        if isinstance(arg, str) and "\x00" in arg:
            raise ConstraintViolation("text must not contain NUL characters")


def _split_script(script: str) -> list[str]:
    """Statements of a migration script, cut where SQLite says a statement is complete
    (so semicolons inside strings or trigger bodies do not split)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            text = pending.strip()
            if text.strip(";").strip() and not _only_comments(text):
                statements.append(text)
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise StoreError("migration script ends with an incomplete statement")
    return statements


def _only_comments(text: str) -> bool:
    return all(
        not line.strip() or line.strip().startswith("--") or line.strip() == ";"
        for line in text.splitlines()
    )


@contextlib.contextmanager
def _translate():
    """Driver errors to the store's typed errors, with short messages and no SQL."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        code = getattr(exc, "sqlite_errorname", "")
        text = str(exc)
        if code in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            target = text.split(":", 1)[1].strip() if ":" in text else None
            raise Conflict("already exists", target) from exc
        if code == "SQLITE_CONSTRAINT_FOREIGNKEY":
            raise InvalidReference("refers to a row that does not exist") from exc
        raise ConstraintViolation("value not allowed") from exc
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") in _BUSY:
            raise StoreUnavailable("database is busy") from exc
        raise StoreError("database operation failed") from exc
    except ValueError as exc:
        # aiosqlite raises ValueError once its connection is closed.
        raise StoreUnavailable("database connection is closed") from exc
    except OverflowError as exc:
        raise ConstraintViolation("integer out of range") from exc
    except sqlite3.Error as exc:
        raise StoreError("database operation failed") from exc


async def _enable_wal(conn: aiosqlite.Connection, busy_timeout: float) -> None:
    """Switch the file to WAL (a persistent setting). Switching needs a moment with no other
    connection inside a transaction, and SQLite reports "busy" for it without waiting, so
    retry until the busy timeout."""
    deadline = asyncio.get_running_loop().time() + busy_timeout
    delay = 0.005
    while True:
        try:
            rows = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY":
                raise
        else:
            if rows and str(rows[0][0]).lower() == "wal":
                return
        if asyncio.get_running_loop().time() >= deadline:
            raise StoreUnavailable("database is busy: cannot enable WAL")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


def _connect_reader(path: str) -> sqlite3.Connection:
    """The read-only connection used on the loop thread. No busy wait: a busy read falls
    back to the worker thread rather than stalling the loop."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(slots=True)
class _Tx:
    conn: aiosqlite.Connection
    depth: int = 0


class SQLiteDatabase(Database):
    """One SQLite file (or a private in-memory database)."""

    dialect = "sqlite"

    def __init__(
        self, writer: aiosqlite.Connection, reader: sqlite3.Connection | None, path: str
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()
        self._closed = False
        # One variable per database, so two stores used by one task never mix transactions.
        self._tx: ContextVar[_Tx | None] = ContextVar(f"fogcore_sqlite_tx_{id(self)}", default=None)

    @classmethod
    async def open(
        cls, path: str, *, busy_timeout: float = 10.0, synchronous: str = "NORMAL"
    ) -> SQLiteDatabase:
        """Open (creating if needed) the database at `path`, or `MEMORY`."""
        synchronous = synchronous.upper()
        if synchronous not in _SYNCHRONOUS:
            raise StoreError("unknown synchronous setting")
        with _translate():
            writer = await cls._connect(path, busy_timeout, synchronous)
            reader = None
            if path != MEMORY:
                # A second connection to ":memory:" would be another database.
                try:
                    reader = _connect_reader(path)
                except BaseException:
                    await writer.close()
                    raise
        return cls(writer, reader, path)

    @staticmethod
    async def _connect(path: str, busy_timeout: float, synchronous: str) -> aiosqlite.Connection:
        # isolation_level=None: the driver never opens transactions behind our back.
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if path != MEMORY:
                await _enable_wal(conn, busy_timeout)
            await conn.execute(f"PRAGMA synchronous = {synchronous}")
            await conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await conn.close()
            raise
        return conn

    def _live(self) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")

    # -- statements -----------------------------------------------------------------------

    async def execute(self, sql: str, *args: Any) -> int:
        self._live()
        _check_args(args)
        sql = _qmark(sql)
        tx = self._tx.get()
        if tx is not None:
            return await self._execute_on(tx.conn, sql, args)
        async with self._lock:
            return await self._execute_on(self._writer, sql, args)

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        self._live()
        _check_args(args)
        sql = _qmark(sql)
        tx = self._tx.get()
        if tx is not None:
            return await self._fetch_on(tx.conn, sql, args)
        if self._reader is not None and _is_read(sql):
            rows = self._read_inline(self._reader, sql, args)
            if rows is not None:
                return rows
        async with self._lock:
            return await self._fetch_on(self._writer, sql, args)

    @staticmethod
    def _read_inline(reader: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row] | None:
        """Rows read on the loop thread, or None if the file is momentarily busy."""
        try:
            return reader.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") in _BUSY:
                return None
            error: Exception = exc
        except (sqlite3.Error, ValueError, OverflowError) as exc:
            error = exc
        with _translate():
            raise error

    @staticmethod
    async def _execute_on(conn: aiosqlite.Connection, sql: str, args: Sequence[Any]) -> int:
        with _translate():
            cursor = await conn.execute(sql, args)
            count = cursor.rowcount
            await cursor.close()
        return max(count, 0)

    @staticmethod
    async def _fetch_on(conn: aiosqlite.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
        with _translate():
            return list(await conn.execute_fetchall(sql, args))

    async def run_script(self, sql: str) -> None:
        tx = self._tx.get()
        if tx is None:
            raise StoreError("run_script needs a transaction")
        for statement in _split_script(sql):
            await self._execute_on(tx.conn, statement, ())

    # -- transactions ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._live()
        tx = self._tx.get()
        if tx is not None:
            async with self._savepoint(tx):
                yield
            return
        async with self._lock:
            await self._execute_on(self._writer, "BEGIN IMMEDIATE", ())
            token = self._tx.set(_Tx(self._writer))
            try:
                yield
            except BaseException:
                await self._quiet(self._writer, "ROLLBACK")
                raise
            else:
                try:
                    await self._execute_on(self._writer, "COMMIT", ())
                except BaseException:
                    await self._quiet(self._writer, "ROLLBACK")
                    raise
            finally:
                self._tx.reset(token)

    @contextlib.asynccontextmanager
    async def _savepoint(self, tx: _Tx) -> AsyncIterator[None]:
        tx.depth += 1
        name = f"fog_sp_{tx.depth}"
        try:
            await self._execute_on(tx.conn, f"SAVEPOINT {name}", ())
            try:
                yield
            except BaseException:
                await self._quiet(tx.conn, f"ROLLBACK TO SAVEPOINT {name}")
                await self._quiet(tx.conn, f"RELEASE SAVEPOINT {name}")
                raise
            else:
                await self._execute_on(tx.conn, f"RELEASE SAVEPOINT {name}", ())
        finally:
            tx.depth -= 1

    async def _quiet(self, conn: aiosqlite.Connection, sql: str) -> None:
        # Cleanup after a failure must not hide the failure itself.
        with contextlib.suppress(Exception):
            await self._execute_on(conn, sql, ())

    def exclusive(self) -> contextlib.AbstractAsyncContextManager[None]:
        # BEGIN IMMEDIATE holds the file's write lock against every other process.
        return self.transaction()

    # -- housekeeping ---------------------------------------------------------------------

    async def ping(self) -> None:
        self._live()
        with _translate():
            await self._writer.execute_fetchall("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.close()
        with contextlib.suppress(Exception):
            await self._writer.close()
