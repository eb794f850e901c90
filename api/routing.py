"""A Starlette router that finds routes with a fixed path by dictionary lookup.

Starlette's router tries every route's regular expression in turn, which costs about a
microsecond per route before the hot read routes are reached. Routes without path
parameters are indexed by path; anything the index does not settle (parameters, wrong
method, trailing-slash redirects) goes through Starlette's own matching, so behaviour is
unchanged.

An indexed route whose endpoint is an async function is called directly: request in,
response out. Starlette's per-route wrapper would also look for exception handlers in the
scope and wrap `send` to see whether the response started; the app's `ExceptionMapping`
does that job once for every route."""

from __future__ import annotations

import inspect

from starlette.requests import Request
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["IndexedRouter"]


class IndexedRouter(Router):
    """`Router` plus an index of fixed-path routes, rebuilt when the route list changes."""

    def _index(self) -> dict[str, list[tuple[Route, ASGIApp]]]:
        if getattr(self, "_indexed_count", -1) != len(self.routes):
            index: dict[str, list[tuple[Route, ASGIApp]]] = {}
            for route in self.routes:
                if isinstance(route, Route) and not route.param_convertors:
                    index.setdefault(route.path, []).append((route, _direct(route)))
            self._static = index
            self._indexed_count = len(self.routes)
        return self._static

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            for route, app in self._index().get(scope["path"], ()):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await app(scope, receive, send)
                    return
        await super().app(scope, receive, send)


def _direct(route: Route) -> ASGIApp:
    """The ASGI app that serves `route` once matched: its async endpoint called directly,
    else the route's own `handle`."""
    endpoint = route.endpoint
    # Only where the route's app is Starlette's plain wrapper of an async function (no
    # route middleware, no ASGI-app endpoint, no sync endpoint run in a thread).
    plain = getattr(route.app, "__qualname__", "") == "request_response.<locals>.app"
    if not (plain and inspect.iscoroutinefunction(endpoint)):
        return route.handle

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app
