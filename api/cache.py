"""A small time-to-live cache with single flight, for read endpoints that aggregate.

Under load many requests ask for the same page at once; the first computes it and the
others wait for that result instead of each querying the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

T = TypeVar("T")


class TTLCache(Generic[T]):
    """Values computed by an async function, reused for `ttl` seconds. `clear()` after a
    write makes the next read see it. A failed computation is not cached."""

    def __init__(self, ttl: float, max_entries: int = 256) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._values: dict[Hashable, tuple[T, float]] = {}
        self._pending: dict[Hashable, asyncio.Future[T]] = {}
        self._generation = 0

    def cached(self, key: Hashable) -> T | None:
        """The value for `key` if it is cached and fresh, else None (no computation): lets
        a hot read skip making the closure and coroutine that `get` needs."""
        hit = self._values.get(key)
        if hit is not None and time.monotonic() < hit[1]:
            return hit[0]
        return None

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached value for `key`, computing it when missing or older than `ttl`."""
        now = time.monotonic()
        hit = self._values.get(key)
        if hit is not None and now < hit[1]:
            return hit[0]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        generation = self._generation
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(value)
            # A write that cleared the cache meanwhile makes this value too old to keep.
            if self.ttl > 0 and generation == self._generation:
                if len(self._values) >= self.max_entries:
                    self._values.clear()
                self._values[key] = (value, time.monotonic() + self.ttl)
            return value
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]

    def clear(self) -> None:
        """Forget every value (after a write)."""
        self._generation += 1
        self._values.clear()
        self._pending.clear()
