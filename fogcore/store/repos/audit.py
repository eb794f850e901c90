"""The audit log: `audit_log` (append-only)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from ..base import AuditEntry, AuditRepository
from ._common import SQLRepository, dump_json, load_json

__all__ = ["SQLAuditRepository"]

_COLUMNS = "id, at, actor, action, target, request_id, detail"


def _entry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        id=row[0],
        at=float(row[1]),
        actor=row[2],
        action=row[3],
        target=row[4],
        request_id=row[5],
        detail=load_json(row[6]),
    )


class SQLAuditRepository(SQLRepository, AuditRepository):
    """`AuditRepository` over SQL."""

    __slots__ = ()

    async def record(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> AuditEntry:
        row = await self._db.fetchrow(
            "INSERT INTO audit_log (at, actor, action, target, request_id, detail)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            self._now(now),
            actor,
            action,
            target,
            request_id,
            dump_json({} if detail is None else detail),
        )
        return _entry(row)

    async def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        where: list[str] = []
        args: list[Any] = []
        for column, op, value in (
            ("actor", "=", actor),
            ("action", "=", action),
            ("at", ">=", None if since is None else float(since)),
            ("id", "<", before_id),
        ):
            if value is not None:
                args.append(value)
                where.append(f"{column} {op} ${len(args)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        args.append(limit)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM audit_log{clause} ORDER BY id DESC LIMIT ${len(args)}",
            *args,
        )
        return [_entry(row) for row in rows]

    async def count(self) -> int:
        return await self._db.fetchval("SELECT COUNT(*) FROM audit_log")
