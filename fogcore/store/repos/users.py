"""Accounts: `users`."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from ..base import NotFound, User, UserRepository
from ._common import SQLRepository

__all__ = ["SQLUserRepository", "USER_COLUMNS", "user_from_row"]

USER_COLUMNS = "id, username, password_hash, role, created_at, updated_at"


def user_from_row(row: Sequence[Any], at: int = 0) -> User:
    """A `User` from the `USER_COLUMNS` of a row, starting at column `at` (for joins)."""
    return User(
        id=row[at],
        username=row[at + 1],
        password_hash=row[at + 2],
        role=row[at + 3],
        created_at=float(row[at + 4]),
        updated_at=float(row[at + 5]),
    )


class SQLUserRepository(SQLRepository, UserRepository):
    """`UserRepository` over SQL."""

    __slots__ = ()

    async def create(self, username: str, password_hash: str, role: str) -> User:
        row = await self._db.fetchrow(
            "INSERT INTO users (username, password_hash, role, created_at, updated_at)"
            f" VALUES ($1, $2, $3, $4, $4) RETURNING {USER_COLUMNS}",
            username,
            password_hash,
            role,
            self._now(None),
        )
        return user_from_row(row)

    async def get(self, user_id: int) -> User:
        row = await self._db.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
        if row is None:
            raise NotFound("user not found")
        return user_from_row(row)

    async def get_by_username(self, username: str) -> User:
        row = await self._db.fetchrow(
            f"SELECT {USER_COLUMNS} FROM users WHERE username = $1", username
        )
        if row is None:
            raise NotFound("user not found")
        return user_from_row(row)

    async def list(self, *, limit: int = 100, offset: int = 0) -> builtins.list[User]:
        rows = await self._db.fetch(
            f"SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2", limit, offset
        )
        return [user_from_row(row) for row in rows]

    async def count(self, *, role: str | None = None) -> int:
        if role is None:
            return await self._db.fetchval("SELECT COUNT(*) FROM users")
        return await self._db.fetchval("SELECT COUNT(*) FROM users WHERE role = $1", role)

    async def update(
        self, user_id: int, *, password_hash: str | None = None, role: str | None = None
    ) -> User:
        row = await self._db.fetchrow(
            "UPDATE users SET password_hash = COALESCE($2, password_hash),"
            " role = COALESCE($3, role), updated_at = $4"
            f" WHERE id = $1 RETURNING {USER_COLUMNS}",
            user_id,
            password_hash,
            role,
            self._now(None),
        )
        if row is None:
            raise NotFound("user not found")
        return user_from_row(row)

    async def delete(self, user_id: int) -> None:
        if not await self._db.execute("DELETE FROM users WHERE id = $1", user_id):
            raise NotFound("user not found")
