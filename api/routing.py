"""A Starlette router that finds routes with a fixed path by dictionary lookup.

Starlette's router tries every route's regular expression in turn, which costs about a
microsecond per route before the hot read routes are reached. Routes without path
parameters are indexed by path; anything the index does not settle (parameters, wrong
method, trailing-slash redirects, a root path) goes through Starlette's own matching, so
behaviour is unchanged.

An indexed route whose endpoint is an async function is called directly: request in,
response out. Starlette's per-route wrapper would also look for exception handlers in the
scope and wrap `send` to see whether the response started; the app's `ExceptionMapping`
does that job once for every route. An endpoint that guards another (`GUARD`, set by
`@operation(role=...)`) is unwrapped: the check and the inner endpoint are awaited here,
which saves the wrapper's coroutine on every request.

The fast path leans on a few Starlette internals: `Router.__init__` binding
`middleware_stack` to `self.app`, `Route.param_convertors`, `Route.matches` and the name of
the wrapper `request_response` builds (`_PLAIN_WRAPPER`). tests/api/test_fast_path.py
checks every one of them against the installed Starlette, so that a rename fails the
tests instead of quietly turning the fast path off; pyproject.toml bounds the version.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["GUARD", "IndexedRouter", "direct_app"]

#: `__qualname__` of the ASGI app that `starlette.routing.request_response` wraps an
#: endpoint function in (a route's `app` when it has no route middleware).
_PLAIN_WRAPPER = "request_response.<locals>.app"

#: Attribute of an endpoint that only runs a check before another endpoint:
#: `(check, argument, inner)`, meaning `await check(request, argument)`, then
#: `return await inner(request)`.
GUARD = "__fog_guard__"

#: One indexed route and the ASGI app that serves it once matched.
IndexEntry = tuple[Route, ASGIApp]


class IndexedRouter(Router):
    """`Router` plus an index of fixed-path routes, rebuilt when the route list changes."""

    def __init__(self, routes: Sequence[BaseRoute] | None = None, **kwargs) -> None:
        super().__init__(routes, **kwargs)
        self._static: dict[str, list[IndexEntry]] = {}
        self._indexed_count = -1

    def index(self) -> dict[str, list[IndexEntry]]:
        """Fixed path → the routes with that path, in matching order."""
        if self._indexed_count != len(self.routes):
            index: dict[str, list[IndexEntry]] = {}
            for route in self.routes:
                if isinstance(route, Route) and not route.param_convertors:
                    index.setdefault(route.path, []).append(
                        (route, direct_app(route) or route.handle)
                    )
            self._static = index
            self._indexed_count = len(self.routes)
        return self._static

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            for route, app in self.index().get(scope["path"], ()):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await app(scope, receive, send)
                    return
        await super().app(scope, receive, send)


def direct_app(route: Route) -> ASGIApp | None:
    """The ASGI app that calls `route`'s async endpoint directly, or None where the route
    needs its own `handle` (route middleware, an ASGI-app endpoint, a sync endpoint that
    Starlette runs in a thread)."""
    endpoint = route.endpoint
    plain = getattr(route.app, "__qualname__", "") == _PLAIN_WRAPPER
    if not (plain and inspect.iscoroutinefunction(endpoint)):
        return None
    guard = getattr(endpoint, GUARD, None)
    if guard is None:

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)

        return app

    check, argument, inner = guard

    async def guarded_app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        await check(request, argument)
        response = await inner(request)
        await response(scope, receive, send)

    return guarded_app
