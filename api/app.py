"""The Starlette application factory.

    app = create_app(Settings.from_env())

The lifespan opens the store (applying migrations), creates the first admin from the
environment when asked to and none exists, and marks benchmark runs orphaned by a previous
process as failed; at shutdown it stops live benchmark runs and closes the store.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Lifespan

import fogcore
from fogcore.store import Store, default_data_dir, open_store

from .auth import Authenticator, bootstrap_admin
from .benchrunner import BenchManager
from .context import ApiContext
from .errors import EXCEPTION_HANDLERS
from .middleware import (
    BodyLimitMiddleware,
    ExceptionMapping,
    RateLimitMiddleware,
    RequestMiddleware,
    SecurityHeaders,
)
from .openapi import build_openapi
from .routes import all_routes
from .routing import IndexedRouter
from .settings import Settings

__all__ = ["ApiApp", "create_app"]

log = logging.getLogger("fogcore.api")

DESCRIPTION = (
    "The fogcore node API: node directory, Betanet VRF delay proofs, benchmarks and the "
    "dashboard. State-changing routes need `Authorization: Bearer <token>` with a session "
    "token or an API key."
)


def _suites(settings: Settings) -> tuple[str, ...]:
    if settings.bench_suites is not None:
        return tuple(settings.bench_suites)
    from fogcore.bench.commands import available_suites

    return tuple(available_suites())


async def _start_prober(settings: Settings, ctx: ApiContext):
    """The directory's reachability prober (docs/directory.md §5), when enabled."""
    if settings.directory_probe_interval_s <= 0:
        return None
    from fogcore.mixnet.reachability import ProbeSettings, ReachabilityProber

    prober = ReachabilityProber(
        ctx.store.directory,
        ProbeSettings(interval_s=settings.directory_probe_interval_s,
                      unreachable_after_s=settings.directory_unreachable_after_s,
                      loopback_only=settings.directory_probe_loopback_only),
        registry=ctx.metrics.registry,
        on_change=lambda *_: ctx.read_cache.clear(),  # listings show a change at once
    )
    await prober.start()
    return prober


class ApiApp(Starlette):
    """Starlette with the path-indexed router (routing.py) and only our middleware around
    it. Starlette would add `ServerErrorMiddleware` outermost and `ExceptionMiddleware`
    innermost; ours do both jobs (`RequestMiddleware` answers the last-resort 500,
    `ExceptionMapping` the registered exception handlers) without wrapping `send` and
    building a `Request` on every request, which cost more than the rest of the stack
    together."""

    def __init__(
        self,
        routes: Sequence[BaseRoute],
        middleware: Sequence[Middleware],
        lifespan: Lifespan[Starlette],
    ) -> None:
        super().__init__(routes=routes, middleware=middleware, lifespan=lifespan)
        # Starlette's constructor builds a plain `Router`; replacing it here, before the
        # app can serve, means no app of this class ever runs without the index.
        self.router = IndexedRouter(routes=routes, lifespan=lifespan)

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Starlette:
    """The API app. With `store` given the app uses it and leaves it open at shutdown;
    otherwise it opens `settings.database_url` itself."""
    settings = settings or Settings.from_env()
    ctx = ApiContext(settings)
    routes = all_routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx.store = store if store is not None else await open_store(settings.database_url)
        try:
            ctx.auth = Authenticator(ctx.store, cache_ttl=settings.auth_cache_ttl)
            result_dir = Path(settings.bench_dir) if settings.bench_dir else (
                default_data_dir() / "bench"
            )
            ctx.bench = BenchManager(
                ctx.store, result_dir=result_dir, suites=_suites(settings),
                env=settings.bench_env,
            )
            orphaned = await ctx.bench.recover()
            if orphaned:
                log.warning("benchmark runs interrupted by a restart", extra={"runs": orphaned})
            if settings.bootstrap_admin:
                created = await bootstrap_admin(ctx.store)
                if created:
                    log.info("created the first admin from the environment",
                             extra={"username": created})
            prober = await _start_prober(settings, ctx)
            app.state.prober = prober
            log.info("api started", extra={"database": ctx.store.backend})
            # Objects alive after start-up live as long as the process: keep them out of
            # the collector's full passes, which otherwise stall requests under load.
            gc.collect()
            gc.freeze()
            yield
        finally:
            if getattr(app.state, "prober", None) is not None:
                await app.state.prober.stop()
                app.state.prober = None
            if ctx.bench is not None:
                await ctx.bench.close()
            if ctx.access_log is not None:
                ctx.access_log.flush()
            if store is None:
                await ctx.store.close()

    middleware = [
        Middleware(
            RequestMiddleware,
            metrics=ctx.metrics,
            security=SecurityHeaders(hsts=settings.hsts),
            access_log=ctx.access_log,
        ),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["authorization", "content-type", "x-request-id"],
                expose_headers=["x-request-id", "retry-after"],
                max_age=600,
            )
        )
    middleware += [
        Middleware(
            RateLimitMiddleware,
            general=settings.rate_limit,
            login=settings.login_rate_limit,
            max_clients=settings.rate_limit_clients,
            trust_proxy_headers=settings.trust_proxy_headers,
            metrics=ctx.metrics,
        ),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(ExceptionMapping, handlers=EXCEPTION_HANDLERS),
    ]
    app = ApiApp(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.fog = ctx
    document = build_openapi(
        routes, title="fogcore API", version=fogcore.__version__, description=DESCRIPTION
    )
    app.state.openapi = document
    app.state.openapi_bytes = orjson.dumps(document)
    return app
