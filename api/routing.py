"""A Starlette router that finds routes with a fixed path by dictionary lookup.

Starlette's router tries every route's regular expression in turn, which costs about a
microsecond per route before the hot read routes are reached. Routes without path
parameters are indexed by path; anything the index does not settle (parameters, wrong
method, trailing-slash redirects) goes through Starlette's own matching, so behaviour is
unchanged."""

from __future__ import annotations

from starlette.routing import Match, Route, Router
from starlette.types import Receive, Scope, Send

__all__ = ["IndexedRouter"]


class IndexedRouter(Router):
    """`Router` plus an index of fixed-path routes, rebuilt when the route list changes."""

    def _index(self) -> dict[str, list[Route]]:
        if getattr(self, "_indexed_count", -1) != len(self.routes):
            index: dict[str, list[Route]] = {}
            for route in self.routes:
                if isinstance(route, Route) and not route.param_convertors:
                    index.setdefault(route.path, []).append(route)
            self._static = index
            self._indexed_count = len(self.routes)
        return self._static

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            for route in self._index().get(scope["path"], ()):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)
