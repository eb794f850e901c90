"""The indexed router's fast path (api/routing.py) serves every route with a fixed path,
and the Starlette internals it leans on are still there: a rename in a Starlette release
fails these tests instead of quietly sending every request through Starlette's matching."""

from __future__ import annotations

import contextlib

import starlette.routing
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router, request_response

from fogcore.api import create_app
from fogcore.api.app import ApiApp
from fogcore.api.openapi import operation_of
from fogcore.api.routing import _PLAIN_WRAPPER, GUARD, IndexedRouter, direct_app

from .conftest import test_settings


async def _endpoint(request: Request) -> Response:
    return Response(b"ok")


def _fixed_routes(app) -> list[Route]:
    return [r for r in app.routes if isinstance(r, Route) and not r.param_convertors]


def test_starlette_internals_the_fast_path_needs():
    # The name of the wrapper a plain async endpoint gets.
    assert request_response(_endpoint).__qualname__ == _PLAIN_WRAPPER
    route = Route("/x", _endpoint)
    assert route.app.__qualname__ == _PLAIN_WRAPPER
    assert route.param_convertors == {}
    assert Route("/x/{n:int}", _endpoint).param_convertors
    # A router dispatches through its (overridable) `app` method.
    router = IndexedRouter(routes=[route])
    assert router.middleware_stack == router.app


def _app(tmp_path):
    """The app, not started (inspecting its routes needs no store)."""
    return create_app(test_settings(f"sqlite://{tmp_path / 'api.db'}", tmp_path))


def test_the_app_builds_its_indexed_router(tmp_path):
    app = _app(tmp_path)
    assert type(app) is ApiApp and type(app.router) is IndexedRouter
    bare = ApiApp(routes=[Route("/x", _endpoint)], middleware=[],
                  lifespan=lambda app: contextlib.nullcontext())
    assert type(bare.router) is IndexedRouter and bare.routes[0].path == "/x"


def test_every_fixed_route_is_indexed_and_called_directly(tmp_path):
    app = _app(tmp_path)
    index = app.router.index()
    fixed = _fixed_routes(app)
    assert len(fixed) >= 15
    for route in fixed:
        served_by = [app for indexed, app in index[route.path] if indexed is route]
        assert len(served_by) == 1, route.path
        # Every API endpoint is a plain async function, so none needs Starlette's wrapper.
        assert direct_app(route) is not None, route.path
        assert served_by[0] != route.handle, route.path
        # A route with a role is served by its check and inner endpoint, unwrapped.
        op = operation_of(route.endpoint)
        if op is not None and op.role is not None:
            _, role, inner = getattr(route.endpoint, GUARD)
            assert role == op.role and inner is route.endpoint.__wrapped__, route.path


def test_requests_to_fixed_routes_never_fall_back(api, monkeypatch):
    """Each method of each fixed route, sent through the whole app, is answered by the
    index; a route with parameters is the control that shows fallbacks are seen."""
    fallbacks: list[str] = []
    starlette_app = Router.app

    async def counted_fallback(self, scope, receive, send):
        if scope["type"] == "http":
            fallbacks.append(scope["path"])
        await starlette_app(self, scope, receive, send)

    served: list[str] = []

    def counted(app):
        async def serve(scope, receive, send):
            served.append(scope["path"])
            await app(scope, receive, send)

        return serve

    async def body(a):
        index = a.app.router.index()
        for path, entries in index.items():
            index[path] = [(route, counted(app)) for route, app in entries]
        monkeypatch.setattr(starlette.routing.Router, "app", counted_fallback)
        for route in _fixed_routes(a.app):
            for method in sorted(route.methods or ()):
                served.clear()
                response = await a.client.request(method, route.path)
                assert response.status_code != 405, (method, route.path)
                assert served == [route.path] and fallbacks == [], (method, route.path)
        # The control: a path with a parameter goes through Starlette's matching.
        served.clear()
        await a.client.get("/api/directory/nodes/" + "0" * 64)
        assert fallbacks == ["/api/directory/nodes/" + "0" * 64] and served == []

    api(body)
