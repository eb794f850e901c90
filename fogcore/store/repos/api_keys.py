"""API keys: `api_keys`."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from typing import Any

from ..base import ApiKey, ApiKeyGrant, ApiKeyRepository, NotFound
from ._common import SQLRepository, as_bytes, opt_float
from .users import user_from_row

__all__ = ["SQLApiKeyRepository", "LAST_USED_RESOLUTION"]

#: `last_used_at` is rewritten at most this often (seconds), so that authenticating with a
#: key is a read nearly every time.
LAST_USED_RESOLUTION = 60.0

_FIELDS = (
    "id", "key_hash", "prefix", "name", "user_id", "role",
    "created_at", "expires_at", "revoked_at", "last_used_at",
)  # fmt: skip
_COLUMNS = ", ".join(_FIELDS)
_JOINED = (
    ", ".join(f"k.{name}" for name in _FIELDS)
    + ", u.id AS u_id, u.username AS u_username, u.password_hash AS u_password_hash,"
    " u.role AS u_role, u.created_at AS u_created_at, u.updated_at AS u_updated_at"
)


def _key(row: Sequence[Any]) -> ApiKey:
    return ApiKey(
        id=row[0],
        key_hash=bytes(row[1]),
        prefix=row[2],
        name=row[3],
        user_id=row[4],
        role=row[5],
        created_at=float(row[6]),
        expires_at=opt_float(row[7]),
        revoked_at=opt_float(row[8]),
        last_used_at=opt_float(row[9]),
    )


class SQLApiKeyRepository(SQLRepository, ApiKeyRepository):
    """`ApiKeyRepository` over SQL."""

    __slots__ = ()

    async def create(
        self,
        key_hash: bytes,
        name: str,
        user_id: int,
        role: str,
        *,
        prefix: str = "",
        expires_at: float | None = None,
    ) -> ApiKey:
        row = await self._db.fetchrow(
            "INSERT INTO api_keys (key_hash, prefix, name, user_id, role, created_at, expires_at)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
            as_bytes(key_hash),
            prefix,
            name,
            user_id,
            role,
            self._now(None),
            opt_float(expires_at),
        )
        return _key(row)

    async def get(self, key_id: int) -> ApiKey:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        if row is None:
            raise NotFound("API key not found")
        return _key(row)

    async def list(
        self,
        *,
        user_id: int | None = None,
        include_inactive: bool = False,
        now: float | None = None,
    ) -> builtins.list[ApiKey]:
        where: list[str] = []
        args: list[Any] = []
        if user_id is not None:
            args.append(user_id)
            where.append(f"user_id = ${len(args)}")
        if not include_inactive:
            args.append(self._now(now))
            n = len(args)
            where.append(f"revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${n})")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self._db.fetch(f"SELECT {_COLUMNS} FROM api_keys{clause} ORDER BY id", *args)
        return [_key(row) for row in rows]

    async def find_active(self, key_hash: bytes, now: float | None = None) -> ApiKeyGrant | None:
        now = self._now(now)
        row = await self._db.fetchrow(
            f"SELECT {_JOINED} FROM api_keys k JOIN users u ON u.id = k.user_id"
            " WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
            " AND (k.expires_at IS NULL OR k.expires_at > $2)",
            as_bytes(key_hash),
            now,
        )
        if row is None:
            return None
        key = _key(row)
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            await self._db.execute(
                "UPDATE api_keys SET last_used_at = $2 WHERE id = $1", key.id, now
            )
            key = dataclasses.replace(key, last_used_at=now)
        return ApiKeyGrant(key=key, user=user_from_row(row, 10))

    async def revoke(self, key_id: int, now: float | None = None) -> ApiKey:
        row = await self._db.fetchrow(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2)"
            f" WHERE id = $1 RETURNING {_COLUMNS}",
            key_id,
            self._now(now),
        )
        if row is None:
            raise NotFound("API key not found")
        return _key(row)
