"""Dashboard aggregates: what exists, from the store and the running services, and the
testnet's packet rates over the last hour (kept here, so that the dashboard draws its
chart at once instead of starting from one point on every visit)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque

import orjson
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.mixnet.descriptor import LAYERS
from fogcore.store import BENCH_STATUSES

from ..context import ApiContext, context
from ..errors import ApiError, JSONResponse
from ..models import DashboardStats
from ..openapi import operation

__all__ = ["ROUTES", "ThroughputHistory", "throughput_history"]

#: One point of the throughput history every this many seconds...
HISTORY_INTERVAL_S = 5.0
#: ...for the last hour.
HISTORY_SPAN_S = 3600.0
_RATES = ("packets_in_per_s", "packets_out_per_s", "drops_per_s")


class ThroughputPoint(Struct, kw_only=True):
    """The testnet's totals at time `t` (seconds since the epoch)."""

    t: float
    packets_in_per_s: float
    packets_out_per_s: float
    drops_per_s: float


class ThroughputDocument(Struct, kw_only=True):
    """The last hour of the testnet's totals, oldest first, one point every `interval_s`."""

    interval_s: float
    span_s: float
    points: list[ThroughputPoint]


class ThroughputHistory:
    """The testnet's totals (packets in, out and drops per second) every
    `HISTORY_INTERVAL_S` over the last `HISTORY_SPAN_S`, sampled by a task of its own.

    At its start it is seeded from the nodes' own histories (the supervisor keeps a few
    minutes of each), so that a fresh API already has the last minutes to show."""

    def __init__(self, control) -> None:
        self.control = control
        self.points: deque[dict] = deque(maxlen=int(HISTORY_SPAN_S / HISTORY_INTERVAL_S) + 1)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Seed from the nodes' histories and start sampling (once)."""
        if self._task is not None:
            return
        self._seed()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _seed(self) -> None:
        buckets: dict[int, dict[str, float]] = {}
        for node in self.control.status().get("nodes", []):
            view = self.control.node_view(node["node_id"]) or {}
            per_bucket: dict[int, list[dict]] = {}
            for point in view.get("history", []):
                per_bucket.setdefault(int(point["t"] // HISTORY_INTERVAL_S), []).append(point)
            # A node's mean over the bucket, summed across nodes: the testnet's total.
            for bucket, points in per_bucket.items():
                total = buckets.setdefault(bucket, dict.fromkeys(_RATES, 0.0))
                for key in _RATES:
                    total[key] += sum(p.get(key, 0.0) for p in points) / len(points)
        now = time.time()
        for bucket in sorted(buckets)[:-1]:  # the newest bucket is still filling
            t = (bucket + 1) * HISTORY_INTERVAL_S
            if now - t <= HISTORY_SPAN_S:
                self.points.append({"t": t, **{k: round(v, 3) for k, v in buckets[bucket].items()}})

    def sample(self) -> None:
        """Append the testnet's current totals."""
        totals = self.control.status().get("totals", {})
        self.points.append({"t": time.time(),
                            **{key: float(totals.get(key, 0.0)) for key in _RATES}})

    async def _run(self) -> None:
        while True:
            # A failing supervisor read skips one point; it never ends the history.
            with contextlib.suppress(Exception):
                self.sample()
            await asyncio.sleep(HISTORY_INTERVAL_S)

    def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()

    def document(self) -> dict:
        """The `GET /api/dashboard/throughput` document."""
        cutoff = time.time() - HISTORY_SPAN_S
        return {"interval_s": HISTORY_INTERVAL_S, "span_s": HISTORY_SPAN_S,
                "points": [p for p in self.points if p["t"] >= cutoff]}


def throughput_history(request: Request) -> ThroughputHistory | None:
    """The app's throughput history, started on first use; None without a testnet."""
    control = getattr(request.app.state, "betanet", None)
    if control is None:
        return None
    history = getattr(request.app.state, "throughput_history", None)
    if history is None or history.control is not control:
        if history is not None:
            history.stop()
        history = ThroughputHistory(control)
        request.app.state.throughput_history = history
        history.start()
    return history


async def _compute(ctx: ApiContext) -> bytes:
    store = ctx.require_store()
    per_layer = await store.directory.count()
    runs = await store.bench.count()
    users = await store.users.count()
    audit_entries = await store.audit.count()
    now = time.time()
    by_layer = {name: per_layer.get(number, 0) for number, name in LAYERS.items()}
    return orjson.dumps(
        {
            "nodes": {"total": sum(per_layer.values()), "by_layer": by_layer},
            "bench_runs": {status: runs.get(status, 0) for status in BENCH_STATUSES},
            "users": users,
            "audit_entries": audit_entries,
            "database": store.backend,
            "uptime_s": round(now - ctx.started_at, 3),
            "generated_at": now,
        }
    )


@operation(summary="Aggregates for the dashboard (refreshed at most once per cache period)",
           tag="dashboard", role="viewer", response=DashboardStats)
async def stats(request: Request) -> Response:
    ctx = context(request)
    body = ctx.read_cache.cached("dashboard")
    if body is None:
        body = await ctx.read_cache.get("dashboard", functools.partial(_compute, ctx))
    return Response(body, media_type="application/json")


@operation(summary="The testnet's packets in, out and drops per second over the last hour",
           tag="dashboard", role="viewer", response=ThroughputDocument, errors=(404,))
async def throughput(request: Request) -> Response:
    history = throughput_history(request)
    if history is None:
        raise ApiError(404, "no_testnet", "no testnet supervisor is attached to this API: "
                                          "start a local testnet with `fogcore up`")
    return JSONResponse(history.document())


ROUTES = [
    Route("/api/dashboard/stats", stats, methods=["GET"], name="dashboard_stats"),
    Route("/api/dashboard/throughput", throughput, methods=["GET"], name="dashboard_throughput"),
]
