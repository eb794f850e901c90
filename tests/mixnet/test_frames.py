"""The arena and the framing protocol base without sockets: any split of the byte stream
gives the same frames in the same slots' bytes, bad headers are rejected by reason, and the
arena's slot accounting holds (both implementations)."""

import pytest
from conftest import IMPL_MODES
from hypothesis import given, settings
from hypothesis import strategies as st

from fogcore import packet
from fogcore.mixnet import _frames_py
from fogcore.mixnet.protocol import frames_module

SPHINX, KEM = packet.FORMATS["sphinx"], packet.FORMATS["kem"]
SIZES = {SPHINX: packet.FRAME_SIZES["sphinx"], KEM: packet.FRAME_SIZES["kem"]}


class FakeTransport:
    def __init__(self):
        self.paused = False
        self.aborted = False
        self.pauses = 0

    def pause_reading(self):
        self.paused = True
        self.pauses += 1

    def resume_reading(self):
        self.paused = False

    def is_reading(self):
        return not self.paused

    def abort(self):
        self.aborted = True


def frame(fmt: int, fill: int) -> bytes:
    size = SIZES[fmt]
    return bytes([1, fmt]) + (size - 4).to_bytes(2, "big") + bytes([fill]) * (size - 4)


def feed(proto, data: bytes, chunks) -> None:
    """Deliver `data` through get_buffer/buffer_updated, at most `chunks[i]` bytes a read."""
    pos, i = 0, 0
    while pos < len(data):
        buf = memoryview(proto.get_buffer(-1))
        assert len(buf) > 0
        n = min(len(buf), len(data) - pos, chunks[i % len(chunks)])
        buf[:n] = data[pos:pos + n]
        buf.release()
        proto.buffer_updated(n)
        pos += n
        i += 1


def setup(impl_mode, nslots=64, sizes=SIZES, **kw):
    frames = frames_module(impl_mode)
    arena = frames.Arena(nslots, **kw)
    proto = frames._BaseMixProtocol(arena, sizes)
    transport = FakeTransport()
    proto.connection_made(transport)
    return frames, arena, proto, transport


def taken_frames(frames, arena):
    runs = arena.take_batch(arena.nslots)
    mem = arena.memory
    out = []
    for start, n in runs:
        for slot in range(start, start + n):
            base = slot * frames.STRIDE
            length = int.from_bytes(mem[base + 2:base + 4], "big") + 4
            out.append((slot, bytes(mem[base:base + length])))
    return out


@settings(max_examples=60, deadline=None)
@given(fills=st.lists(st.tuples(st.sampled_from([SPHINX, KEM]), st.integers(0, 255)),
                      min_size=1, max_size=12),
       chunks=st.lists(st.integers(1, 3000), min_size=1, max_size=8))
@pytest.mark.parametrize("impl_mode", IMPL_MODES)
def test_any_split_gives_the_same_frames(impl_mode, fills, chunks):
    frames, arena, proto, transport = setup(impl_mode)
    data = [frame(fmt, fill) for fmt, fill in fills]
    feed(proto, b"".join(data), chunks)
    got = taken_frames(frames, arena)
    # frames may sit in any slots, but every one arrives whole and exactly once
    assert sorted(f for _, f in got) == sorted(data)
    assert arena.frames_in == len(data) and proto.frames_in == len(data)
    assert not transport.aborted and arena.rejects() == {}
    assert arena.nfree == arena.nslots - len(data)


@pytest.mark.parametrize(
    "header,reason",
    [
        (bytes([2, 1]) + (2346).to_bytes(2, "big"), 2),     # bad version
        (bytes([1, 7]) + (2346).to_bytes(2, "big"), 3),     # unknown format
        (bytes([1, 1]) + (2506).to_bytes(2, "big"), 1),     # length of the other format
        (bytes([1, 1]) + (60000).to_bytes(2, "big"), 1),    # oversized
        (bytes([1, 1]) + (10).to_bytes(2, "big"), 1),       # undersized
    ],
)
def test_bad_headers_rejected_and_connection_dropped(impl_mode, header, reason):
    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, frame(SPHINX, 1) + header + bytes(100), [4096])
    assert transport.aborted
    assert arena.rejects() == {reason: 1}
    assert arena.frames_in == 1          # the good frame before it still counts
    assert arena.nfree == arena.nslots - 1
    proto.buffer_updated(10)             # nothing more is read from a dropped connection
    assert arena.frames_in == 1


def test_format_not_served_is_rejected(impl_mode):
    frames, arena, proto, transport = setup(impl_mode, sizes={SPHINX: SIZES[SPHINX]})
    feed(proto, frame(KEM, 3), [4096])
    assert transport.aborted and arena.rejects() == {3: 1}


def test_truncated_frame_counted_and_slot_freed(impl_mode):
    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, frame(SPHINX, 1)[:1000], [500])
    assert arena.nfree == arena.nslots - 1 and proto.partial == 1000
    proto.connection_lost(None)
    assert arena.rejects() == {frames.REASON_TRUNCATED: 1}
    assert arena.nfree == arena.nslots and arena.connections == 0


def test_slow_frame_dropped(impl_mode):
    import time

    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, frame(SPHINX, 1)[:10], [10])
    assert proto.check_timeouts(time.monotonic(), 60.0, 0) == 0
    assert proto.check_timeouts(time.monotonic() + 61, 60.0, 0) == 1
    assert transport.aborted and arena.rejects() == {frames.REASON_SLOW: 1}
    assert arena.nfree == arena.nslots


def test_arena_pauses_readers_and_resumes_them(impl_mode):
    frames, arena, proto, transport = setup(impl_mode, nslots=8, reserve=2)
    assert (arena.low_water, arena.high_water) == (2, 4)
    feed(proto, frame(SPHINX, 1) * 6, [4096])
    assert arena.frames_in == 6 and arena.nfree == 2
    assert not transport.paused           # not below the low water mark yet
    feed(proto, frame(SPHINX, 1), [4096])
    assert transport.paused and arena.readers_paused
    runs = arena.take_batch(8)
    assert sum(n for _, n in runs) == 7
    rec = arena.records
    for start, n in runs:   # mark every frame processed: FORWARD with a zero delay
        for slot in range(start, start + n):
            rec[slot * 96] = 1
    keys = arena.finish_batch(0, None, 0, 0)
    slots = [k & ((1 << 24) - 1) for k in keys]
    assert sorted(slots) == [s for start, n in runs for s in range(start, start + n)]
    assert transport.paused           # held slots are not free yet
    arena.release_many(slots[:2])
    assert transport.paused           # 3 free < high water 4
    arena.release_many(slots[2:])
    assert not transport.paused and not arena.readers_paused


def test_spill_when_no_slot_is_free(impl_mode):
    frames, arena, proto, transport = setup(impl_mode, nslots=2, reserve=1)
    held = [arena.claim_slot(), arena.claim_slot()]
    assert -1 not in held and arena.claim_slot() == -1
    buf = memoryview(proto.get_buffer(-1))
    assert len(buf) == frames.STRIDE       # the spill area, never a slot in use
    buf.release()
    proto.buffer_updated(100)
    assert transport.aborted and arena.rejects() == {frames.REASON_ARENA_FULL: 1}


def test_rejected_outcomes_free_their_slots(impl_mode):
    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, frame(SPHINX, 1) * 3, [4096])
    runs = arena.take_batch(10)
    rec = arena.records
    slots = [s for start, n in runs for s in range(start, start + n)]
    rec[slots[0] * 96:slots[0] * 96 + 2] = bytes([4, 5])   # BAD_MAC
    rec[slots[1] * 96:slots[1] * 96 + 2] = bytes([4, 6])   # REPLAY
    rec[slots[2] * 96:slots[2] * 96 + 2] = bytes([2, 0])   # DELIVER
    keys = arena.finish_batch(1000, bytes(64), 1000, 5000)
    assert len(keys) == 1 and keys[0] & 0xFFFFFF == slots[2]
    assert arena.rejects() == {5: 1, 6: 1}
    assert arena.outcomes() == {1: 0, 2: 1, 3: 0}
    assert arena.state(slots[0]) == 0 and arena.state(slots[2]) == 4
    with pytest.raises(ValueError):
        arena.release(slots[0])            # a free slot cannot be released twice


def test_delay_keys_match_fogcore_delays(impl_mode):
    from fogcore import delays

    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, frame(SPHINX, 1), [4096])
    (start, _), = arena.take_batch(1)
    rec = arena.records
    tag = bytes(range(32))
    rec[start * 96] = 1
    rec[start * 96 + 64:start * 96 + 96] = tag
    beta = bytes(range(64))
    (key,) = arena.finish_batch(5_000_000, beta, 20_000, 1_000_000)
    expected = delays.delay_us_reference(beta, tag, 20_000, 1_000_000)
    assert key >> 24 == 5_000_000 + expected
    counts, total = arena.delay_histogram()
    assert sum(counts) == 1 and total == expected


def test_pure_twin_is_selected_in_py_mode():
    assert frames_module("py") is _frames_py


@pytest.mark.skipif("c" not in IMPL_MODES, reason="compiled extensions not in use")
def test_compiled_framing_keeps_no_object_per_packet():
    import gc
    import sys

    frames, arena, proto, transport = setup("c", nslots=1024)
    data = frame(SPHINX, 7) * 50
    feed(proto, data, [1000])       # warm up caches
    arena.take_batch(1024)
    arena.finish_batch(0, None, 0, 0)
    gc.collect()
    before = sys.getallocatedblocks()
    feed(proto, frame(SPHINX, 9) * 800, [1000, 2560, 77])
    gc.collect()
    after = sys.getallocatedblocks()
    assert arena.ready_count == 800
    assert after - before < 50      # not proportional to the 800 frames held


# -- control frames (docs/node.md §16) ---------------------------------------------------------

def control(fill: int) -> bytes:
    from fogcore.mixnet.control import CONTROL_FORMAT, CONTROL_LENGTH

    return bytes([1, CONTROL_FORMAT]) + CONTROL_LENGTH.to_bytes(2, "big") \
        + bytes([fill]) * CONTROL_LENGTH


def control_setup(impl_mode, nslots=64):
    frames = frames_module(impl_mode)

    class Proto(frames._BaseMixProtocol):
        def __init__(self, *args):
            super().__init__(*args)
            self.bodies = []

        def _control_frame(self, body):
            self.bodies.append(body)

    arena = frames.Arena(nslots)
    proto = Proto(arena, SIZES)
    transport = FakeTransport()
    proto.connection_made(transport)
    return frames, arena, proto, transport


def test_control_constants_match_the_protocol(impl_mode):
    from fogcore.mixnet import control as ctl

    frames = frames_module(impl_mode)
    assert (frames.CONTROL_FORMAT, frames.CONTROL_LENGTH) == (ctl.CONTROL_FORMAT,
                                                              ctl.CONTROL_LENGTH)


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.tuples(st.sampled_from([SPHINX, KEM, 0x7F]), st.integers(0, 255)),
                      min_size=1, max_size=12),
       chunks=st.lists(st.integers(1, 3000), min_size=1, max_size=8))
@pytest.mark.parametrize("impl_mode", IMPL_MODES)
def test_control_frames_go_to_the_hook_in_any_split(impl_mode, items, chunks):
    frames, arena, proto, transport = control_setup(impl_mode)
    data = [control(fill) if fmt == 0x7F else frame(fmt, fill) for fmt, fill in items]
    feed(proto, b"".join(data), chunks)
    packets = [d for d, (fmt, _) in zip(data, items, strict=True) if fmt != 0x7F]
    bodies = [d[4:] for d, (fmt, _) in zip(data, items, strict=True) if fmt == 0x7F]
    assert proto.bodies == bodies                   # in order, whole, once each
    assert proto.control_in == len(bodies) and proto.frames_in == len(packets)
    assert arena.frames_in == len(packets)          # control frames never reach the queue
    got = taken_frames(frames, arena)
    assert sorted(f for _, f in got) == sorted(packets)
    assert not transport.aborted and arena.rejects() == {}
    # only packets (and at most one partial frame's slot) hold slots
    assert arena.nfree == arena.nslots - len(packets)


def test_control_frame_of_wrong_length_is_wrong_size(impl_mode):
    frames, arena, proto, transport = control_setup(impl_mode)
    feed(proto, bytes([1, 0x7F]) + (117).to_bytes(2, "big") + bytes(117), [4096])
    assert transport.aborted and arena.rejects() == {1: 1} and proto.bodies == []
    assert arena.nfree == arena.nslots


def test_hook_may_close_the_connection(impl_mode):
    frames, arena, proto, transport = control_setup(impl_mode)
    proto._control_frame = lambda body: proto.close_now()
    feed(proto, control(1) + frame(SPHINX, 2)[:100], [4096])
    assert transport.aborted and arena.frames_in == 0
    assert arena.nfree == arena.nslots and arena.rejects() == {}
    proto.connection_lost(None)                     # not counted as truncated
    assert arena.rejects() == {}


def test_first_frame_deadline(impl_mode):
    import time

    frames, arena, proto, transport = setup(impl_mode)
    now = time.monotonic()
    assert proto.check_timeouts(now + 1, 60.0, 0, 5.0) == 0
    assert proto.check_timeouts(now + 6, 60.0, 0, 5.0) == 3
    assert transport.aborted and arena.rejects() == {}
    # a control frame counts as a first frame
    frames, arena, proto, transport = control_setup(impl_mode)
    feed(proto, control(0), [4096])
    assert proto.check_timeouts(time.monotonic() + 6, 60.0, 0, 5.0) == 0


@pytest.mark.parametrize("count", [-1, -2**40])
def test_take_batch_refuses_a_negative_count(impl_mode, count):
    frames, arena, proto, transport = setup(impl_mode)
    feed(proto, frame(SPHINX, 1), [4096])
    with pytest.raises(ValueError):
        arena.take_batch(count)
    # Nothing moved: the frame is still ready and a proper batch takes it.
    assert arena.ready_count == 1
    assert sum(n for _, n in arena.take_batch(1)) == 1
