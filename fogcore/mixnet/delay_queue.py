"""The delay queue: packets wait here for their VRF-derived mixing delay.

A binary heap of integer keys `deadline_us << 24 | item` (the arena slot), driven by one
loop timer armed for the earliest deadline: pushing a packet costs a heap push, not a loop
callback, and however many packets wait there is at most one timer handle.
"""

import heapq
from collections.abc import Callable, Iterable

__all__ = ["ITEM_BITS", "DelayQueue"]

ITEM_BITS = 24
_ITEM_MASK = (1 << ITEM_BITS) - 1


class DelayQueue:
    """Items (ints below 2^24) released in deadline order to `on_due(items)`.

    Deadlines are microseconds on the loop's clock (`loop.time() * 1e6`). Items whose
    deadline falls within `slack` seconds of the timer's firing go out in the same call: uvloop
    keeps time in milliseconds and may fire a timer up to a millisecond before its deadline,
    and re-arming for a sub-millisecond remainder would spin.
    """

    def __init__(self, loop, on_due: Callable[[list[int]], None], slack: float = 0.001):
        self._loop = loop
        self._on_due = on_due
        self._slack_us = int(slack * 1e6)
        self._heap: list[int] = []
        self._timer = None
        self._timer_at = 0
        #: how many times a loop timer was armed (tests check this stays small)
        self.timers_armed = 0
        self.released = 0

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def timer_pending(self) -> bool:
        """True while the (single) loop timer is armed."""
        return self._timer is not None

    def now_us(self) -> int:
        """The loop clock in microseconds."""
        return int(self._loop.time() * 1e6)

    def push(self, deadline_us: int, item: int) -> None:
        """Queue `item` until `deadline_us`."""
        if not 0 <= item <= _ITEM_MASK:
            raise ValueError("delay queue items are ints in [0, 2^24)")
        heapq.heappush(self._heap, (deadline_us << ITEM_BITS) | item)
        self._arm()

    def push_keys(self, keys: Iterable[int]) -> None:
        """Queue ready-made keys `deadline_us << 24 | item` (what the arena's batch
        accounting returns)."""
        heap = self._heap
        push = heapq.heappush
        for key in keys:
            push(heap, key)
        if heap:
            self._arm()

    def _arm(self) -> None:
        first = self._heap[0] >> ITEM_BITS
        if self._timer is not None:
            if self._timer_at <= first:
                return
            self._timer.cancel()
        self._timer_at = first
        self._timer = self._loop.call_at(first / 1e6, self._fire)
        self.timers_armed += 1

    def _take_due(self, limit_us: int) -> list[int]:
        heap = self._heap
        pop = heapq.heappop
        due = []
        while heap and heap[0] >> ITEM_BITS <= limit_us:
            due.append(pop(heap) & _ITEM_MASK)
        return due

    def _fire(self) -> None:
        self._timer = None
        due = self._take_due(self.now_us() + self._slack_us)
        if self._heap:
            self._arm()
        if due:
            self.released += len(due)
            self._on_due(due)

    def flush(self) -> int:
        """Release everything now (shutdown after the drain timeout); returns the count."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = [key & _ITEM_MASK for key in sorted(self._heap)]
        self._heap.clear()
        if due:
            self.released += len(due)
            self._on_due(due)
        return len(due)

    def close(self) -> None:
        """Cancel the timer; queued items stay (see `flush`)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
