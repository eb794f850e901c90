"""Benchmark runs: `bench_runs`."""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Sequence
from typing import Any

from ..base import (
    BENCH_STATUSES,
    BENCH_TERMINAL,
    BenchRepository,
    BenchRun,
    Conflict,
    ConstraintViolation,
    NotFound,
)
from ._common import SQLRepository, dump_json, load_json, opt_float

__all__ = ["SQLBenchRepository"]

_COLUMNS = (
    "id, suite, status, progress, total, params, result, error, created_at, started_at, finished_at"
)
_OPEN = "status IN ('queued', 'running')"


def _run(row: Sequence[Any]) -> BenchRun:
    return BenchRun(
        id=row[0],
        suite=row[1],
        status=row[2],
        progress=row[3],
        total=row[4],
        params=load_json(row[5]),
        result=load_json(row[6]),
        error=row[7],
        created_at=float(row[8]),
        started_at=opt_float(row[9]),
        finished_at=opt_float(row[10]),
    )


class SQLBenchRepository(SQLRepository, BenchRepository):
    """`BenchRepository` over SQL."""

    __slots__ = ()

    async def create(
        self,
        suite: str,
        params: dict[str, Any],
        *,
        total: int = 0,
        run_id: str | None = None,
        now: float | None = None,
    ) -> BenchRun:
        row = await self._db.fetchrow(
            "INSERT INTO bench_runs (id, suite, status, total, params, created_at)"
            f" VALUES ($1, $2, 'queued', $3, $4, $5) RETURNING {_COLUMNS}",
            run_id if run_id is not None else secrets.token_hex(12),
            suite,
            int(total),
            dump_json(params),
            self._now(now),
        )
        return _run(row)

    async def get(self, run_id: str) -> BenchRun:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM bench_runs WHERE id = $1", run_id)
        if row is None:
            raise NotFound("benchmark run not found")
        return _run(row)

    async def list(
        self,
        *,
        status: str | None = None,
        suite: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[BenchRun]:
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        if suite is not None:
            args.append(suite)
            where.append(f"suite = ${len(args)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        args += [limit, offset]
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM bench_runs{clause} ORDER BY created_at DESC, id"
            f" LIMIT ${len(args) - 1} OFFSET ${len(args)}",
            *args,
        )
        return [_run(row) for row in rows]

    async def count(self) -> dict[str, int]:
        rows = await self._db.fetch("SELECT status, COUNT(*) AS n FROM bench_runs GROUP BY status")
        counts = dict.fromkeys(BENCH_STATUSES, 0)
        counts.update({row["status"]: row["n"] for row in rows})
        return counts

    async def start(self, run_id: str, now: float | None = None) -> BenchRun:
        row = await self._db.fetchrow(
            "UPDATE bench_runs SET status = 'running', started_at = $2"
            f" WHERE id = $1 AND status = 'queued' RETURNING {_COLUMNS}",
            run_id,
            self._now(now),
        )
        if row is None:
            await self._refuse(run_id, "run is not queued")
        return _run(row)

    async def advance(self, run_id: str, steps: int = 1, *, total: int | None = None) -> int:
        # One UPDATE does the read and the write, so concurrent callers never lose a step.
        progress = await self._db.fetchval(
            "UPDATE bench_runs SET progress = progress + $2, total = COALESCE($3, total)"
            f" WHERE id = $1 AND {_OPEN} RETURNING progress",
            run_id,
            int(steps),
            None if total is None else int(total),
        )
        if progress is None:
            await self._refuse(run_id, "run is finished")
        return progress

    async def finish(
        self,
        run_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> BenchRun:
        if status not in BENCH_TERMINAL:
            raise ConstraintViolation("a run finishes as done, failed or stopped")
        row = await self._db.fetchrow(
            "UPDATE bench_runs SET status = $2, result = $3, error = $4, finished_at = $5"
            f" WHERE id = $1 AND {_OPEN} RETURNING {_COLUMNS}",
            run_id,
            status,
            None if result is None else dump_json(result),
            error,
            self._now(now),
        )
        if row is None:
            await self._refuse(run_id, "run is already finished")
        return _run(row)

    async def _refuse(self, run_id: str, reason: str) -> None:
        """Raise `NotFound` for a missing run, else `Conflict` with `reason`."""
        exists = await self._db.fetchval("SELECT 1 FROM bench_runs WHERE id = $1", run_id)
        if exists is None:
            raise NotFound("benchmark run not found")
        raise Conflict(reason, "bench_runs.status")
