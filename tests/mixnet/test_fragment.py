"""Fragmentation and reassembly (docs/client.md §2): round trips in any order with
duplicates, header checks, and the reassembler's bounds (memory, pending messages, expiry)."""

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogcore.mixnet.fragment import (
    HEADER_SIZE,
    AddStatus,
    Fragment,
    FragmentError,
    Reassembler,
    fragment_count,
    split_message,
)


class Clock:
    """A settable clock for expiry tests."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(reassembler, fragments):
    done = [r.message for r in map(reassembler.add, fragments) if r.status is AddStatus.COMPLETE]
    return done


@settings(max_examples=150, deadline=None)
@given(message=st.binary(max_size=6000), chunk=st.integers(1, 2100), seed=st.integers(0, 2**32),
       dupes=st.integers(0, 5))
def test_round_trip_any_order_with_duplicates(message, chunk, seed, dupes):
    fragments = split_message(message, chunk)
    assert len(fragments) == fragment_count(len(message), chunk)
    rng = random.Random(seed)
    wire = [Fragment.decode(f.encode()) for f in fragments]
    wire += [rng.choice(wire) for _ in range(dupes)]
    rng.shuffle(wire)
    r = Reassembler()
    results = [r.add(f) for f in wire]
    complete = [x for x in results if x.status is AddStatus.COMPLETE]
    assert len(complete) == 1 and complete[0].message == message
    assert sum(x.status is AddStatus.DUPLICATE for x in results) == dupes
    assert r.pending == 0 and r.buffered_bytes == 0


@given(st.binary(max_size=3000), st.integers(1, 500))
def test_encode_decode(message, chunk):
    for f in split_message(message, chunk):
        raw = f.encode()
        assert len(raw) == HEADER_SIZE + len(f.data)
        assert Fragment.decode(raw) == f


def test_header_layout():
    f = split_message(b"hello world", 5, message_id=b"I" * 16)[1]
    raw = f.encode()
    assert raw[:2] == b"\x01\x00" and raw[2:18] == b"I" * 16
    assert struct.unpack(">HHII", raw[18:30]) == (1, 3, 11, 5) and raw[30:] == b" worl"


@pytest.mark.parametrize("mutate, why", [
    (lambda b: b[:10], "shorter than its header"),
    (lambda b: b"\x02" + b[1:], "version"),
    (lambda b: b[:1] + b"\x01" + b[2:], "flags"),
    (lambda b: b[:18] + struct.pack(">HH", 3, 3) + b[22:], "index out of range"),
    (lambda b: b[:18] + struct.pack(">HH", 0, 0) + b[22:], "index out of range"),
    (lambda b: b[:26] + struct.pack(">I", 9) + b[30:], "runs past"),
    (lambda b: b[:30], "without data"),
    (lambda b: b[:18] + struct.pack(">HHI", 0, 12, 11) + b[26:], "without data"),
])
def test_malformed_headers_are_refused(mutate, why):
    raw = split_message(b"hello world", 5)[0].encode()
    with pytest.raises(FragmentError, match=why):
        Fragment.decode(mutate(raw))


def test_empty_message_and_split_limits():
    (f,) = split_message(b"", 100)
    assert f.count == 1 and f.data == b"" and Reassembler().add(f).message == b""
    bad = f.encode()[:18] + struct.pack(">HH", 0, 2) + f.encode()[22:]
    with pytest.raises(FragmentError):
        Fragment.decode(bad)
    with pytest.raises(FragmentError):
        split_message(b"x" * 70000, 1)
    with pytest.raises(FragmentError):
        split_message(b"x", 0)
    with pytest.raises(FragmentError):
        split_message(b"x", 1, message_id=b"short")


def test_inconsistent_and_conflicting_fragments_are_rejected():
    a, b, c = split_message(b"abcdefghi", 3, message_id=b"A" * 16)
    r = Reassembler()
    assert r.add(a).status is AddStatus.NEW
    other_count = Fragment(a.message_id, 1, 4, 9, 3, b"def")
    assert r.add(other_count).status is AddStatus.REJECTED
    conflicting = Fragment(a.message_id, 0, 3, 9, 0, b"xyz")
    assert r.add(conflicting).reason == "conflicting copy of a fragment"
    overlap = Fragment(a.message_id, 1, 3, 9, 0, b"abc")  # right size, wrong place
    assert r.add(overlap).status is AddStatus.NEW
    result = r.add(c)
    assert result.status is AddStatus.REJECTED and "tile" in result.reason
    assert r.stats["rejected"] == 3 and r.pending == 0 and r.buffered_bytes == 0
    # A copy arriving after completion is a duplicate, not a second message.
    r2 = Reassembler()
    assert feed(r2, [a, b, c]) == [b"abcdefghi"]
    assert r2.add(b).status is AddStatus.DUPLICATE


def test_overlapping_pieces_cannot_exceed_the_declared_length():
    r = Reassembler()
    mid = b"O" * 16
    assert r.add(Fragment(mid, 0, 3, 4, 0, b"abcd")).status is AddStatus.NEW
    assert r.add(Fragment(mid, 1, 3, 4, 0, b"abcd")).reason == "fragments exceed the message length"


def test_message_size_bound():
    r = Reassembler(max_message_bytes=100, max_buffered_bytes=1000)
    big = split_message(b"x" * 101, 50)
    assert r.add(big[0]).reason == "message too long"
    assert r.pending == 0


def test_memory_stays_bounded_and_oldest_is_evicted():
    r = Reassembler(max_message_bytes=1000, max_buffered_bytes=2500, max_pending=4)
    messages = [split_message(bytes([i]) * 1000, 100) for i in range(10)]
    # Interleave the first nine fragments of every message: none completes.
    for k in range(9):
        for frags in messages:
            r.add(frags[k])
            assert r.buffered_bytes <= 2500 and r.pending <= 4
    assert r.stats["evicted"] > 0
    # A message that arrives whole still completes; the bound holds throughout.
    assert feed(r, split_message(b"z" * 1000, 100)) == [b"z" * 1000]
    assert r.buffered_bytes <= 2500


def test_incomplete_messages_expire():
    clock = Clock()
    r = Reassembler(ttl=10.0, clock=clock)
    a = split_message(b"a" * 10, 5)
    b = split_message(b"b" * 10, 5)
    r.add(a[0])
    clock.now += 6
    r.add(b[0])
    clock.now += 5  # a is 11 s old, b 5 s
    assert r.expire() == 1 and r.pending == 1
    assert r.add(a[1]).status is AddStatus.NEW  # a starts over: its first piece is gone
    assert r.add(b[1]).message == b"b" * 10
    assert r.stats["expired"] == 1


def test_bad_bounds():
    with pytest.raises(ValueError):
        Reassembler(max_message_bytes=10, max_buffered_bytes=5)
    with pytest.raises(ValueError):
        Reassembler(ttl=0)
