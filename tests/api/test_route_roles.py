"""A route's role is declared once, by `@operation(role=...)`: the role in the OpenAPI
document is the role enforced. Every route of the app is walked and called without a
token and with a token of each role; on both backends and both event loops."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import fogcore.api
from fogcore.api.auth import ROLE_RANK
from fogcore.api.context import current_principal
from fogcore.api.openapi import operation, operation_of

#: Roles from the weakest to the strongest.
ROLES = sorted(ROLE_RANK, key=ROLE_RANK.__getitem__)

_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def _concrete(path: str) -> str:
    """`path` with every parameter filled in by a value that names nothing stored."""
    return _PARAM.sub(lambda m: "1" if m.group(2) == "int" else "0" * 64, path)


def _openapi_path(path: str) -> str:
    return _PARAM.sub(r"{\1}", path)


def _api_routes(app) -> list[tuple[Route, str]]:
    """(route, method) for every method of every route that declares an operation."""
    found = []
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        if operation_of(route.endpoint) is None:
            # Only the panel's documents live outside the API.
            assert not route.path.startswith("/api/"), f"{route.path} declares no operation"
            continue
        found += [(route, m) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


async def _status(a, method: str, url: str, role: str | None) -> int:
    """The status of an empty request, without a token or with a new session of `role`
    (a fresh one each time: logout revokes the token it is called with)."""
    headers = await a.headers(role) if role else {}
    response = await a.client.request(method, url, headers=headers)
    return response.status_code


def test_openapi_role_is_the_enforced_role(api):
    async def body(a):
        document = a.app.state.openapi
        routes = _api_routes(a.app)
        assert len(routes) >= 20  # the walk really covers the API
        for route, method in routes:
            url = _concrete(route.path)
            declared = operation_of(route.endpoint).role
            entry = document["paths"][_openapi_path(route.path)][method.lower()]
            assert entry.get("x-fog-role") == declared, (method, route.path)
            where = f"{method} {route.path}"
            anonymous = await _status(a, method, url, None)
            if declared is None:
                assert anonymous not in (401, 403), where
                continue
            assert anonymous == 401, where
            for role in ROLES:
                got = await _status(a, method, url, role)
                if ROLE_RANK[role] < ROLE_RANK[declared]:
                    assert got == 403, (where, role, got)
                else:
                    assert got not in (401, 403), (where, role, got)

    api(body)


def test_operation_refuses_an_unknown_role():
    with pytest.raises(ValueError, match="unknown role"):
        operation(summary="x", tag="x", role="root")


def test_operation_refuses_a_sync_endpoint():
    def endpoint(request: Request) -> Response:  # pragma: no cover - never called
        return Response()

    with pytest.raises(TypeError, match="async function"):
        operation(summary="x", tag="x", role="viewer")(endpoint)


def test_current_principal_needs_a_declared_role():
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(RuntimeError, match="declares no role"):
        current_principal(request)


def test_no_endpoint_checks_its_role_itself():
    """The role lives in the decorator only: a second check in a handler could drift."""
    routes = Path(fogcore.api.__file__).parent / "routes"
    for module in sorted(routes.glob("*.py")):
        assert "require_role(" not in module.read_text(encoding="utf-8"), module.name
