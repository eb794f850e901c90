"""The delay queue releases items in deadline order from one loop timer."""

import asyncio
import random

import pytest

from fogcore.mixnet.delay_queue import DelayQueue


def test_order_and_single_timer(run):
    async def main():
        loop = asyncio.get_running_loop()
        live = {}          # token -> handle, while neither fired nor cancelled
        most = 0
        real_call_at = loop.call_at

        class CountingLoop:
            """The queue's view of the loop: counts the timers it arms."""

            def time(self):
                return loop.time()

            def call_at(self, when, callback, *args):
                return counting_call_at(when, callback, *args)

        def counting_call_at(when, callback, *args):
            nonlocal most
            token = object()
            live[token] = real_call_at(when, wrapped, token, callback, *args)
            for t in [t for t, h in live.items() if h.cancelled()]:
                del live[t]
            most = max(most, len(live))
            return live[token]

        def wrapped(token, callback, *args):
            live.pop(token, None)
            callback(*args)

        released = []
        done = asyncio.Event()
        n = 600

        def on_due(items):
            released.extend(items)
            if len(released) == n:
                done.set()

        q = DelayQueue(CountingLoop(), on_due)
        now = q.now_us()
        rng = random.Random(5)
        deadlines = {}
        for item in range(n):
            deadlines[item] = now + rng.randrange(0, 60_000)
            q.push(deadlines[item], item)
        assert len(q) == n and q.timer_pending
        await asyncio.wait_for(done.wait(), 5)
        assert sorted(released) == list(range(n))
        ds = [deadlines[i] for i in released]
        assert ds == sorted(ds)          # released in deadline order
        assert most == 1                 # never more than one timer armed
        assert q.timers_armed < n // 4   # far fewer timers than packets
        assert not q.timer_pending and len(q) == 0

    run(main())


def test_push_keys_and_flush(run):
    async def main():
        loop = asyncio.get_running_loop()
        out = []
        q = DelayQueue(loop, out.extend)
        base = q.now_us() + 10_000_000     # far in the future
        q.push_keys([((base + d) << 24) | s for s, d in [(7, 30), (3, 10), (9, 20)]])
        assert q.flush() == 3
        assert out == [3, 9, 7] and len(q) == 0 and not q.timer_pending

    run(main())


def test_items_are_bounded(run):
    async def main():
        q = DelayQueue(asyncio.get_running_loop(), lambda items: None)
        with pytest.raises(ValueError):
            q.push(0, 1 << 24)
        q.close()

    run(main())
