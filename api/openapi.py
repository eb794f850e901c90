"""The OpenAPI 3.1 document, built from the routes themselves.

Each endpoint carries an `Operation` (set with the `@operation(...)` decorator) naming its
request body, query and response Structs and the role it needs; the JSON Schemas come from
msgspec, the same types that validate the input. A route without an `Operation` is not
part of the public API and is left out.

The role is declared once: `@operation(role=...)` both enforces it (before the endpoint
runs) and puts it in the document, so the two cannot disagree.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.convertors import IntegerConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .auth import ROLE_RANK
from .context import require_role
from .models import ErrorResponse, schema_of
from .routing import GUARD

__all__ = ["Operation", "operation", "operation_of", "build_openapi"]


@dataclass(frozen=True)
class Operation:
    """How an endpoint appears in the OpenAPI document."""

    summary: str
    tag: str
    response: Any = None
    status: int = 200
    body: Any = None
    query: Any = None
    #: Role needed; None for a public route.
    role: str | None = None
    #: Further error statuses the route may answer with, beyond the ones implied.
    errors: tuple[int, ...] = ()
    #: Schemas of path parameters, by name (default: from the route's convertor).
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Media type of a non-JSON response (e.g. the metrics text).
    media_type: str = "application/json"
    #: Whether the rate limiter applies (health and metrics are exempt).
    rate_limited: bool = True
    #: Other statuses answered with a body of their own type (not the error shape).
    other_responses: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role is not None and self.role not in ROLE_RANK:
            raise ValueError(f"unknown role {self.role!r}; roles: {', '.join(ROLE_RANK)}")


Endpoint = Callable[[Request], Awaitable[Response]]


def operation(**kwargs: Any) -> Callable[[Endpoint], Endpoint]:
    """Declare an async endpoint: `Operation(**kwargs)` is its OpenAPI entry and, when it
    names a `role`, the endpoint is wrapped so that a request without that role or a
    stronger one is refused (401 without credentials, 403 with weaker ones) before the
    endpoint runs. The endpoint reads the admitted principal with
    `context.current_principal(request)`."""
    op = Operation(**kwargs)

    def decorate(endpoint: Endpoint) -> Endpoint:
        # A sync endpoint would run in a thread and miss the fast path (routing.py).
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError(f"{endpoint.__qualname__}: an operation must be an async function")
        role = op.role
        if role is None:
            guarded = endpoint
        else:

            @functools.wraps(endpoint)
            async def guarded(request: Request) -> Response:
                await require_role(request, role)
                return await endpoint(request)

            # The same check for the router's fast path, which calls the parts itself.
            setattr(guarded, GUARD, (require_role, role, endpoint))

        guarded.__fog_operation__ = op  # type: ignore[attr-defined]
        return guarded

    return decorate


def operation_of(endpoint: Any) -> Operation | None:
    """The `Operation` declared on an endpoint, or None for a route outside the API."""
    return getattr(endpoint, "__fog_operation__", None)


# "{epoch:int}" in a Starlette path is "{epoch}" in OpenAPI.
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")

_ERROR_TEXT = {
    400: "Malformed request (invalid JSON or header)",
    401: "Missing, invalid, expired or revoked credentials",
    403: "The credentials lack the needed role",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Validation failed; `fields` names the field",
    429: "Rate limited; see Retry-After",
    503: "The database is unavailable",
}


def _operations(routes: Iterable[BaseRoute]):
    for route in routes:
        if not isinstance(route, Route):
            continue
        op = operation_of(route.endpoint)
        if op is None:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield route, method.lower(), op


def _path_parameters(route: Route, op: Operation) -> list[dict[str, Any]]:
    params = []
    for name, convertor in route.param_convertors.items():
        schema = op.path_params.get(name)
        if schema is None:
            schema = (
                {"type": "integer", "minimum": 0}
                if isinstance(convertor, IntegerConvertor)
                else {"type": "string"}
            )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _query_parameters(query: Any, components: dict[str, Any]) -> list[dict[str, Any]]:
    (schema,), _ = schema_of(query)
    name = schema["$ref"].rsplit("/", 1)[-1]
    properties = components[name].get("properties", {})
    required = set(components[name].get("required", ()))
    params = []
    for field_info in msgspec.structs.fields(query):
        params.append(
            {
                "name": field_info.encode_name,
                "in": "query",
                "required": field_info.encode_name in required,
                "schema": properties[field_info.encode_name],
            }
        )
    return params


def _json(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def build_openapi(
    routes: Iterable[BaseRoute], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes`."""
    found = list(_operations(routes))
    types: list[Any] = [ErrorResponse]
    for _, _, op in found:
        for kind in (op.response, op.body, op.query, *op.other_responses.values()):
            if kind is not None and not isinstance(kind, dict) and kind not in types:
                types.append(kind)
    schemas, components = schema_of(*types)
    ref = dict(zip(map(id, types), schemas, strict=True))
    error = {"description": "", "content": _json(ref[id(ErrorResponse)])}

    paths: dict[str, dict[str, Any]] = {}
    for route, method, op in found:
        params = _path_parameters(route, op)
        if op.query is not None:
            params += _query_parameters(op.query, components)
        responses: dict[str, Any] = {}
        if op.response is None:
            responses[str(op.status)] = {"description": "Success"}
        elif isinstance(op.response, dict):
            responses[str(op.status)] = {
                "description": "Success",
                "content": _json(op.response, op.media_type),
            }
        else:
            responses[str(op.status)] = {
                "description": "Success",
                "content": _json(ref[id(op.response)], op.media_type),
            }
        statuses = set(op.errors)
        # A bearer header is honoured (and checked) on every route but health and metrics.
        if op.rate_limited:
            statuses |= {401, 429}
        if op.role is not None:
            statuses |= {401, 403}
        if op.body is not None:
            statuses |= {400, 413, 415, 422}
        if op.query is not None or route.param_convertors:
            statuses.add(422)
        for status in sorted(statuses):
            responses[str(status)] = {**error, "description": _ERROR_TEXT.get(status, "Error")}
        for status, kind in op.other_responses.items():
            responses[str(status)] = {
                "description": _ERROR_TEXT.get(status, "Other outcome"),
                "content": _json(ref[id(kind)]),
            }
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{method}_{route.name}",
            "tags": [op.tag],
            "responses": responses,
        }
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": _json(ref[id(op.body)])}
        if op.role is not None:
            entry["security"] = [{"bearer": []}]
            entry["description"] = f"Needs the `{op.role}` role or a stronger one."
            entry["x-fog-role"] = op.role
        paths.setdefault(_CONVERTOR.sub(r"{\1}", route.path), {})[method] = entry

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A session token from /api/auth/login or an API key",
                }
            },
        },
    }
