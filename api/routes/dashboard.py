"""Dashboard aggregates: what exists, from the store and the running services."""

import functools
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.mixnet.descriptor import LAYERS
from fogcore.store import BENCH_STATUSES

from ..context import ApiContext, context
from ..models import DashboardStats
from ..openapi import operation

__all__ = ["ROUTES"]


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


ROUTES = [Route("/api/dashboard/stats", stats, methods=["GET"], name="dashboard_stats")]
