"""Login sessions: `sessions`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..base import NotFound, Session, SessionGrant, SessionRepository
from ._common import SQLRepository, as_bytes, opt_float
from .users import user_from_row

__all__ = ["SQLSessionRepository"]

_COLUMNS = "token_hash, user_id, created_at, expires_at, revoked_at"
_JOINED = (
    "s.token_hash, s.user_id, s.created_at, s.expires_at, s.revoked_at,"
    " u.id AS u_id, u.username AS u_username, u.password_hash AS u_password_hash,"
    " u.role AS u_role, u.created_at AS u_created_at, u.updated_at AS u_updated_at"
)


def _session(row: Sequence[Any]) -> Session:
    return Session(
        token_hash=bytes(row[0]),
        user_id=row[1],
        created_at=float(row[2]),
        expires_at=float(row[3]),
        revoked_at=opt_float(row[4]),
    )


class SQLSessionRepository(SQLRepository, SessionRepository):
    """`SessionRepository` over SQL."""

    __slots__ = ()

    async def create(self, token_hash: bytes, user_id: int, expires_at: float) -> Session:
        row = await self._db.fetchrow(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)"
            f" VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            as_bytes(token_hash),
            user_id,
            self._now(None),
            float(expires_at),
        )
        return _session(row)

    async def get(self, token_hash: bytes) -> Session:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM sessions WHERE token_hash = $1", as_bytes(token_hash)
        )
        if row is None:
            raise NotFound("session not found")
        return _session(row)

    async def find_active(self, token_hash: bytes, now: float | None = None) -> SessionGrant | None:
        row = await self._db.fetchrow(
            f"SELECT {_JOINED} FROM sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
            as_bytes(token_hash),
            self._now(now),
        )
        if row is None:
            return None
        return SessionGrant(session=_session(row), user=user_from_row(row, 5))

    async def list_for_user(
        self, user_id: int, *, include_inactive: bool = False, now: float | None = None
    ) -> list[Session]:
        if include_inactive:
            rows = await self._db.fetch(
                f"SELECT {_COLUMNS} FROM sessions WHERE user_id = $1"
                " ORDER BY created_at DESC, token_hash",
                user_id,
            )
        else:
            rows = await self._db.fetch(
                f"SELECT {_COLUMNS} FROM sessions WHERE user_id = $1"
                " AND revoked_at IS NULL AND expires_at > $2"
                " ORDER BY created_at DESC, token_hash",
                user_id,
                self._now(now),
            )
        return [_session(row) for row in rows]

    async def revoke(self, token_hash: bytes, now: float | None = None) -> bool:
        changed = await self._db.execute(
            "UPDATE sessions SET revoked_at = $2"
            " WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
            as_bytes(token_hash),
            self._now(now),
        )
        return changed > 0

    async def revoke_all_for_user(self, user_id: int, now: float | None = None) -> int:
        return await self._db.execute(
            "UPDATE sessions SET revoked_at = $2"
            " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            user_id,
            self._now(now),
        )

    async def delete_expired(self, now: float | None = None) -> int:
        return await self._db.execute(
            "DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at <= $1", self._now(now)
        )
