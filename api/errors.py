"""Error responses: one JSON shape for every 4xx and 5xx, and the handlers that produce it.

The body is `{"error": {"code", "message", "request_id", "fields"?}}`. Messages are written
here, never copied from an exception of a library: a driver message can hold SQL or paths.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fogcore.store import (
    Conflict,
    ConstraintViolation,
    InvalidReference,
    MigrationError,
    NotFound,
    StoreError,
    StoreUnavailable,
)

__all__ = ["ApiError", "JSONResponse", "error_body", "EXCEPTION_HANDLERS"]

log = logging.getLogger("fogcore.api")


class JSONResponse(Response):
    """A response encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error to answer with `status`: `code` is a stable machine name, `message` a
    short sentence for people, `fields` per-field messages for a 422."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers


def error_body(code: str, message: str, request_id: str | None, fields=None) -> dict:
    """The JSON body of an error response."""
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def _request_id(request: Request) -> str | None:
    return request.scope.get("fog.request_id")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body = error_body(exc.code, exc.message, _request_id(request), exc.fields)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    429: "rate_limited",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own errors (no route, wrong method): keep the status, use our shape.
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {404: "no such resource", 405: "method not allowed"}.get(
        exc.status_code, code.replace("_", " ")
    )
    body = error_body(code, message, _request_id(request))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


# Store errors that escape a route: a fixed status and message per type, never the text.
_STORE_ERRORS: list[tuple[type[StoreError], int, str, str]] = [
    (NotFound, 404, "not_found", "no such resource"),
    (Conflict, 409, "conflict", "the request conflicts with the current state"),
    (InvalidReference, 409, "conflict", "the request refers to something that does not exist"),
    (ConstraintViolation, 422, "invalid", "a value is not acceptable"),
    (StoreUnavailable, 503, "unavailable", "the database is unavailable"),
    (MigrationError, 503, "unavailable", "the database schema is not current"),
]


async def _store_error(request: Request, exc: Exception) -> Response:
    known = next((entry for entry in _STORE_ERRORS if isinstance(exc, entry[0])), None)
    if known is not None:
        _, status, code, message = known
    else:
        log.error(
            "store error",
            exc_info=exc,
            extra={"request_id": _request_id(request)},
        )
        status, code, message = 500, "internal", "internal error"
    body = error_body(code, message, _request_id(request))
    return JSONResponse(body, status_code=status)


#: Handlers for `Starlette(exception_handlers=...)`. Anything else is caught by the
#: request middleware, logged with its trace, and answered with a bare 500.
EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    HTTPException: _http_error,
    StoreError: _store_error,
}
