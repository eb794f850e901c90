"""Turning request bodies, query strings and path parameters into typed values, or a 4xx.

Bodies must be JSON (`application/json`) and decode straight into a msgspec Struct; a value
that does not fit is a 422 naming the field. msgspec stops at the first problem it finds, so
a 422 lists one field; fixing it and retrying shows the next. An object with the same key
twice is a 422 too: decoders disagree on which of the two counts (msgspec keeps the last),
so a body that a proxy or an audit log reads one way must not be acted on the other way.
"""

from __future__ import annotations

import json
import re
from typing import TypeVar

import msgspec
from starlette.requests import Request

from .errors import ApiError

__all__ = [
    "read_body", "read_query", "check_unique_keys", "field_errors", "from_hex", "invalid",
]

T = TypeVar("T")

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_NAMED = re.compile(r"field `(?P<name>[^`]+)`")


def field_errors(exc: msgspec.ValidationError) -> list[dict[str, str]]:
    """msgspec's message as `[{"field", "message"}]`: "Expected `int`, got `str` - at
    `$.limit`" becomes field "limit", message "Expected `int`, got `str`"."""
    text = str(exc)
    match = _AT.search(text)
    path = match.group("path").lstrip(".") if match else ""
    message = text[: match.start()] if match else text
    named = _NAMED.search(message)
    if named:  # "Object missing required field `x`": the field is x inside `path`
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return [{"field": path or "$", "message": message}]


def invalid(field: str, message: str) -> ApiError:
    """A 422 for one field."""
    return ApiError(
        422,
        "validation_failed",
        "the request is not valid",
        fields=[{"field": field, "message": message}],
    )


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, object]]) -> None:
    # Called by the decoder for every object; the values are not needed, only the check.
    if len(pairs) > 1 and len({key for key, _ in pairs}) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)


def check_unique_keys(body: bytes) -> None:
    """422 when an object of the JSON document `body` (already known to be valid JSON)
    has a key twice, at any depth; 400 when it is nested too deeply to check."""
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        raise invalid(exc.key, f"the key `{exc.key}` appears more than once in one object") \
            from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError:  # not expected after msgspec accepted it; refused all the same
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def _too_deep() -> ApiError:
    return ApiError(400, "malformed_json", "the body is nested too deeply")


async def read_body(request: Request, model: type[T]) -> T:
    """The JSON body decoded into `model`; 415 when not JSON, 400 when malformed, 422 when a
    field does not fit or an object has a key twice."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    body = await request.body()
    try:
        value = msgspec.json.decode(body, type=model)
    except msgspec.ValidationError as exc:
        raise ApiError(
            422, "validation_failed", "the request is not valid", fields=field_errors(exc)
        ) from None
    except msgspec.DecodeError:
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    except RecursionError:
        raise _too_deep() from None
    check_unique_keys(body)
    return value


def read_query(request: Request, model: type[T]) -> T:
    """The query string converted into `model` (numbers and booleans parsed from text;
    a repeated parameter keeps its last value); 422 when a parameter does not fit."""
    try:
        return msgspec.convert(dict(request.query_params), type=model, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(
            422, "validation_failed", "the query is not valid", fields=field_errors(exc)
        ) from None


def from_hex(value: str, field: str, size: int | None = None) -> bytes:
    """Bytes from a hex field, optionally of an exact size; 422 otherwise."""
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise invalid(field, "expected hexadecimal bytes") from None
    if size is not None and len(data) != size:
        raise invalid(field, f"expected {size} bytes, got {len(data)}")
    return data
