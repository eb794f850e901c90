"""Helpers shared by the repositories: the clock, JSON and bytes columns.

Records are built from rows by position (cheaper than by name on both drivers), so each
repository's mapping function follows the column order of its SELECT list exactly."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from ..base import ConstraintViolation
from ..db import Database

__all__ = ["Clock", "SQLRepository", "dump_json", "load_json", "as_bytes", "opt_float"]

#: Returns the current time as UTC seconds since the epoch.
Clock = Callable[[], float]

# An escaped NUL in orjson's output: "\u0000" not preceded by another backslash.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class SQLRepository:
    """Base of every repository: the database and the clock."""

    __slots__ = ("_db", "_clock")

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else float(now)


def dump_json(value: Any) -> str:
    """A dict as JSON text. Anything JSON cannot hold exactly is a `ConstraintViolation`
    (NUL characters too, which PostgreSQL's JSONB refuses: both backends must agree)."""
    if not isinstance(value, dict):
        raise ConstraintViolation("JSON value must be an object")
    try:
        data = orjson.dumps(value)
    except TypeError as exc:
        raise ConstraintViolation("value cannot be stored as JSON") from exc
    if _JSON_NUL.search(data):
        raise ConstraintViolation("JSON text must not contain NUL characters")
    return data.decode()


def load_json(value: str | bytes | None) -> Any:
    """JSON text from a column back to Python (None stays None)."""
    return None if value is None else orjson.loads(value)


def as_bytes(value: Any) -> bytes:
    """Any bytes-like value as bytes; text is refused so a hex string is never stored as
    its characters by mistake."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        raise ConstraintViolation("expected bytes, got text")
    try:
        return bytes(memoryview(value))
    except TypeError as exc:
        raise ConstraintViolation("expected bytes") from exc


def opt_float(value: float | None) -> float | None:
    """A time column: None or a float."""
    return None if value is None else float(value)
