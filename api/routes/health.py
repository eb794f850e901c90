"""Liveness, readiness, metrics and the OpenAPI document."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import context
from ..errors import JSONResponse
from ..metrics import CONTENT_TYPE
from ..models import HealthResponse, ReadyResponse
from ..openapi import operation

__all__ = ["ROUTES"]

_OK = b'{"status":"ok"}'


@operation(summary="Liveness: the process serves requests", tag="health",
           response=HealthResponse, rate_limited=False)
async def health(request: Request) -> Response:
    return Response(_OK, media_type="application/json")


@operation(summary="Readiness: the store answers and its migrations are current",
           tag="health", response=ReadyResponse, other_responses={503: ReadyResponse},
           rate_limited=False)
async def ready(request: Request) -> Response:
    store = context(request).require_store()
    reachable = await store.ping()
    current = reachable and await store.migrations_current()
    body = {
        "status": "ready" if current else "not_ready",
        "database": store.backend,
        "reachable": reachable,
        "migrations_current": current,
    }
    return JSONResponse(body, status_code=200 if current else 503)


@operation(summary="Prometheus metrics", tag="health", media_type=CONTENT_TYPE.split(";")[0],
           response={"type": "string"}, rate_limited=False)
async def metrics(request: Request) -> Response:
    return Response(context(request).metrics.render(), media_type=CONTENT_TYPE)


@operation(summary="This API's OpenAPI document", tag="health", response={"type": "object"})
async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi_bytes, media_type="application/json")


ROUTES = [
    Route("/health", health, methods=["GET"], name="health"),
    Route("/health/ready", ready, methods=["GET"], name="health_ready"),
    Route("/metrics", metrics, methods=["GET"], name="metrics"),
    Route("/openapi.json", openapi, methods=["GET"], name="openapi"),
]
