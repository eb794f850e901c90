"""Several batches in flight (arena lanes) and the per-batch hand-over of due slots to the
links (`due_groups`, `frame_views`), on both implementations."""

import asyncio

import pytest

from fogcore.mixnet.links import Links, StaticResolver

from .test_frames import SPHINX, feed, frame, setup

R = 96
HOP_A, HOP_B = b"A" * 32, b"B" * 32


def mark(arena, slot: int, kind: int, hop: bytes = b"", offset: int = 0,
         length: int = 0) -> None:
    """Write an outcome record by hand (what process_batch would write)."""
    rec = arena.records
    base = slot * R
    rec[base] = kind
    rec[base + 4:base + 6] = length.to_bytes(2, "little")
    rec[base + 8:base + 12] = offset.to_bytes(4, "little")
    if hop:
        rec[base + 16:base + 48] = hop


def slots_of(runs) -> list[int]:
    return [s for start, n in runs for s in range(start, start + n)]


def test_lanes_hold_separate_batches(impl_mode):
    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, b"".join(frame(SPHINX, i) for i in range(10)), [4096])
    first = slots_of(arena.take_batch(4, 0))
    second = slots_of(arena.take_batch(4, 1))
    assert len(first) == len(second) == 4 and not set(first) & set(second)
    assert arena.ready_count == 2
    with pytest.raises(RuntimeError):
        arena.take_batch(1, 0)          # lane 0 still has its batch in flight
    for slot in first + second:
        mark(arena, slot, 1)
    mark(arena, second[0], 4)           # a reject in lane 1
    arena.records[second[0] * R + 1] = 5
    assert arena.batch_slots_with(4, 5, 1) == [second[0]]
    assert arena.batch_slots_with(4, 5, 0) == []
    keys1 = arena.finish_batch(0, None, 0, 0, 1)     # lanes finish in any order
    assert sorted(k & 0xFFFFFF for k in keys1) == second[1:]
    keys0 = arena.finish_batch(0, None, 0, 0, 0)
    assert sorted(k & 0xFFFFFF for k in keys0) == first
    assert arena.rejects() == {5: 1}
    assert slots_of(arena.take_batch(8, 0)) and arena.ready_count == 0
    with pytest.raises(ValueError):
        arena.take_batch(1, 16)


def test_due_groups_and_frame_views(impl_mode):
    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, b"".join(frame(SPHINX, i) for i in range(6)), [4096])
    slots = slots_of(arena.take_batch(6))
    hops = [HOP_A, HOP_A, HOP_B, None, HOP_A, None]
    for i, (slot, hop) in enumerate(zip(slots, hops, strict=True)):
        if hop is None:
            mark(arena, slot, 2, HOP_B)     # DELIVER to a mailbox: stays local
        else:
            mark(arena, slot, 1, hop, offset=7 + i, length=100 + i)
    arena.finish_batch(0, None, 0, 0)
    forwards, local = arena.due_groups(slots)
    assert forwards == {HOP_A: [slots[0], slots[1], slots[4]], HOP_B: [slots[2]]}
    assert local == [slots[3], slots[5]]
    views = arena.frame_views(forwards[HOP_A])
    mem = arena.memory
    for view, i in zip(views, (0, 1, 4), strict=True):
        start = slots[i] * frames.STRIDE + 7 + i
        assert bytes(view) == bytes(mem[start:start + 100 + i])
    arena.release(slots[3])
    with pytest.raises(ValueError):
        arena.due_groups([slots[3]])        # no longer held
    with pytest.raises(ValueError):
        arena.frame_views([slots[3]])
    mark(arena, slots[5], 1, HOP_A, offset=frames.STRIDE - 10, length=20)
    with pytest.raises(ValueError):
        arena.frame_views([slots[5]])       # a record pointing outside its slot


def test_send_many_keeps_the_queue_bound(run, impl_mode):
    async def main():
        frames, arena, proto, transport = setup(impl_mode)
        feed(proto, b"".join(frame(SPHINX, i) for i in range(5)), [4096])
        slots = slots_of(arena.take_batch(5))
        for slot in slots:
            mark(arena, slot, 1, HOP_A, length=10)
        arena.finish_batch(0, None, 0, 0)
        links = Links(asyncio.get_running_loop(), arena, StaticResolver(), queue_limit=3)
        links.send_many(HOP_A, slots)
        assert links.drops == {"queue_full": 2} and links.queued() == 3
        assert [arena.state(s) for s in slots[3:]] == [0, 0]   # dropped slots are free
        await links.drain()                                      # the hop is unknown
        assert links.drops == {"queue_full": 2, "unknown_hop": 3} and arena.nfree == 64

    run(main())
