"""Benchmark runs started from the API: `fogcore bench SUITE --json FILE --progress` as a
subprocess in its own process group, its progress lines copied into the store as they
come, its result document stored when it ends.

Progress is kept in the store as per-mille (`total` = 1000) because suites report a
fraction. One run at a time: benchmarks that overlap measure each other.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from fogcore.store import BenchRun, Conflict, NotFound, Store

__all__ = ["BenchManager", "PROGRESS_TOTAL", "failure_report"]

log = logging.getLogger("fogcore.api")

PROGRESS_TOTAL = 1000
#: Seconds a stopped run gets to exit after SIGTERM before SIGKILL.
STOP_GRACE = 5.0
#: Environment variables never passed to a benchmark process.
_SECRET_ENV = ("FOG_ADMIN_PASSWORD",)


def failure_report(code: int, stderr: list[str]) -> str:
    """A failed run's `error`: its first line says what failed in words (the exception a
    Python traceback ends with, else the last line the run printed, and the exit status);
    the last lines of its standard error follow after a blank line, for whoever debugs it.
    At most 2,000 characters."""
    lines = [line for line in stderr if line.strip()]
    # A traceback's own lines are indented or start with "Traceback"; the exception is the
    # last line that is neither.
    cause = next((line.strip() for line in reversed(lines)
                  if not line[:1].isspace() and not line.startswith("Traceback")), "")
    summary = f"{cause} (exit status {code})" if cause else f"exit status {code}"
    tail = "\n".join(lines[-20:])
    report = f"{summary}\n\n{tail}" if tail else summary
    return report if len(report) <= 2000 else report[:1999] + "…"


@dataclass
class _LiveRun:
    process: asyncio.subprocess.Process
    result_path: Path
    watcher: asyncio.Task | None = None
    step: str | None = None
    stopping: bool = False
    stderr_tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20))


class BenchManager:
    """Starts, watches and stops benchmark subprocesses; the store holds their state."""

    def __init__(
        self,
        store: Store,
        *,
        result_dir: Path,
        suites: Sequence[str],
        env: Mapping[str, str] | None = None,
        command: Sequence[str] = (sys.executable, "-P", "-m", "fogcore", "bench"),
    ) -> None:
        self.store = store
        self.result_dir = Path(result_dir)
        self.suites = tuple(suites)
        self.env = dict(env or {})
        self.command = tuple(command)
        self._live: dict[str, _LiveRun] = {}
        self._start_lock = asyncio.Lock()

    async def recover(self) -> int:
        """Mark runs left queued or running by a previous server process as failed (their
        process is gone with it). Returns how many."""
        count = 0
        for status in ("running", "queued"):
            for run in await self.store.bench.list(status=status, limit=1000):
                if run.id in self._live:
                    continue
                with contextlib.suppress(Conflict, NotFound):
                    await self.store.bench.finish(
                        run.id, "failed", error="interrupted: the server stopped during the run"
                    )
                    count += 1
        return count

    def step(self, run_id: str) -> str | None:
        """The last step a live run reported."""
        live = self._live.get(run_id)
        return live.step if live else None

    def running(self) -> list[str]:
        """Ids of runs whose process is alive."""
        return list(self._live)

    async def start(self, suite: str, *, quick: bool) -> BenchRun:
        """Queue and launch a run. `Conflict` if another run is in progress; `ValueError`
        for a suite that is not offered."""
        if suite not in self.suites:
            raise ValueError(f"unknown suite {suite!r}")
        async with self._start_lock:
            if self._live:
                raise Conflict("a benchmark run is already in progress", target="bench_runs")
            run = await self.store.bench.create(
                suite, {"quick": quick}, total=PROGRESS_TOTAL
            )
            self.result_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            result_path = self.result_dir / f"{run.id}.json"
            argv = [*self.command, suite, "--json", str(result_path), "--progress"]
            if quick:
                argv.append("--quick")
            env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
            env.update(self.env)
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=env,
                    start_new_session=True,  # its own group: stop reaches its children too
                )
            except OSError:
                await self.store.bench.finish(run.id, "failed", error="could not start")
                raise
            live = _LiveRun(process=process, result_path=result_path)
            self._live[run.id] = live
            run = await self.store.bench.start(run.id)
            live.watcher = asyncio.create_task(self._watch(run.id, live))
            return run

    async def _watch(self, run_id: str, live: _LiveRun) -> None:
        process = live.process
        assert process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.create_task(self._read_stderr(process.stderr, live))
        done = 0
        try:
            async for line in process.stdout:
                try:
                    report = orjson.loads(line)
                    fraction = float(report["progress"])
                    step = str(report.get("step", ""))[:200]
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # not a progress line
                live.step = step
                target = min(PROGRESS_TOTAL, max(0, round(fraction * PROGRESS_TOTAL)))
                if target > done:
                    with contextlib.suppress(Conflict, NotFound):
                        done = await self.store.bench.advance(run_id, target - done)
            code = await process.wait()
            await stderr_task
            await self._finish(run_id, live, code)
        except Exception:
            log.exception("benchmark watcher failed", extra={"run_id": run_id})
            with contextlib.suppress(Exception):
                await self.store.bench.finish(run_id, "failed", error="internal error")
        finally:
            self._live.pop(run_id, None)

    @staticmethod
    async def _read_stderr(stream: asyncio.StreamReader, live: _LiveRun) -> None:
        async for line in stream:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                live.stderr_tail.append(text[:500])

    async def _finish(self, run_id: str, live: _LiveRun, code: int) -> None:
        if live.stopping:
            await self.store.bench.finish(run_id, "stopped", error="stopped on request")
            return
        if code == 0:
            try:
                result = orjson.loads(live.result_path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                await self.store.bench.finish(
                    run_id, "failed", error="the run ended without a readable result"
                )
                return
            await self.store.bench.finish(run_id, "done", result=result)
            return
        await self.store.bench.finish(run_id, "failed",
                                      error=failure_report(code, list(live.stderr_tail)))

    async def stop(self, run_id: str) -> BenchRun:
        """Stop a live run (SIGTERM to its process group, SIGKILL after a grace period) and
        return its final state. `NotFound` for an unknown run, `Conflict` if it is not
        running in this server."""
        live = self._live.get(run_id)
        if live is None:
            run = await self.store.bench.get(run_id)  # NotFound for an unknown id
            raise Conflict(f"run is {run.status}, not running", target="bench_runs")
        live.stopping = True
        self._signal(live.process, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(live.process.wait()), STOP_GRACE)
        except TimeoutError:
            self._signal(live.process, signal.SIGKILL)
        if live.watcher is not None:
            await live.watcher
        return await self.store.bench.get(run_id)

    @staticmethod
    def _signal(process: asyncio.subprocess.Process, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    async def close(self) -> None:
        """Stop every live run (server shutdown)."""
        for run_id in list(self._live):
            with contextlib.suppress(Conflict, NotFound):
                await self.stop(run_id)
