"""What the routes share: settings, the store, authentication, the login backoff, caches,
the benchmark runner. One `ApiContext` per app, reached from a request as `context(request)`; the
lifespan fills in the parts that need the event loop (the store and what uses it)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from fogcore.store import Store

from .auth import Authenticator, Principal, require
from .benchrunner import BenchManager
from .cache import TTLCache
from .lockout import LoginBackoff
from .logs import AccessLog
from .metrics import ApiMetrics
from .settings import Settings

__all__ = [
    "ApiContext", "context", "principal_of", "require_role", "current_principal", "audit",
]


class ApiContext:
    """Per-app state. `store`, `auth` and `bench` exist only while the app runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ApiMetrics()
        self.started_at = time.time()
        self.read_cache: TTLCache[bytes] = TTLCache(settings.read_cache_ttl)
        self.store: Store | None = None
        self.auth: Authenticator | None = None
        self.bench: BenchManager | None = None
        self.access_log = AccessLog() if settings.access_log else None
        self.login_backoff = LoginBackoff(
            failures=settings.login_backoff_failures,
            base=settings.login_backoff_base,
            longest=settings.login_backoff_max,
            max_accounts=settings.login_backoff_accounts,
        )

    def require_store(self) -> Store:
        """The store (the app's lifespan has opened it)."""
        assert self.store is not None, "the app's lifespan has not run"
        return self.store


def context(request: Request) -> ApiContext:
    """The app's context."""
    return request.app.state.fog


async def principal_of(request: Request) -> Principal | None:
    """The request's principal (resolved once per request), or None when anonymous.
    A malformed or unknown token is a 401 even on public routes: the client believes it
    is authenticated and should learn that it is not."""
    scope = request.scope
    if "fog.principal" in scope:
        return scope["fog.principal"]
    ctx: ApiContext = scope["app"].state.fog
    assert ctx.auth is not None
    # The raw header list, not `request.headers`: no Headers object for one lookup.
    value = None
    for name, raw in scope["headers"]:
        if name == b"authorization":
            value = raw.decode("latin-1")
            break
    principal = None
    if value is not None:
        principal = ctx.auth.cached(value)
        if principal is None:
            try:
                principal = await ctx.auth.authenticate(value)
            except Exception:
                ctx.metrics.auth_failures.inc()
                raise
    scope["fog.principal"] = principal
    if principal is not None:
        scope["fog.actor"] = principal.username
    return principal


async def require_role(request: Request, role: str) -> Principal:
    """The principal if it has `role` or stronger; else 401/403."""
    return require(await principal_of(request), role)


def current_principal(request: Request) -> Principal:
    """The principal that the route's `@operation(role=...)` admitted. Only for routes that
    declare a role: elsewhere there may be none, and asking is a bug."""
    principal = request.scope.get("fog.principal")
    if principal is None:
        raise RuntimeError("current_principal() on a route that declares no role")
    return principal


async def audit(
    request: Request,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append a state-changing action to the audit log with the request's id."""
    await context(request).require_store().audit.record(
        actor,
        action,
        target=target,
        request_id=request.scope.get("fog.request_id"),
        detail=detail or {},
    )
