"""The replay filter (docs/replay-filter.md): geometry and memory, false-positive rate, no
false negatives, reset with key rotation, saturation, compiled/pure agreement bit for bit,
and concurrent use from two threads without the GIL."""

import math
import random
import threading

import pytest
from conftest import load_impl

from fogcore import replay
from fogcore._impl import NO_EXTENSIONS

needs_compiled = pytest.mark.skipif(NO_EXTENSIONS, reason="compiled extensions disabled")


@pytest.fixture
def make(impl_mode):
    """The filter class of the implementation under test (public API names)."""
    if impl_mode == "py":
        return replay.ReplayFilterPy
    load_impl("c", "_replay")  # fails loudly when the extension is not built
    assert replay.IMPLEMENTATION == "c"
    return replay.ReplayFilter


def _tags(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(count)]


@pytest.mark.parametrize("capacity,rate", [(1, 0.5), (1000, 0.01), (100_000, 1e-6),
                                           (1_000_000, 1e-9), (50, 1e-12)])
def test_geometry_and_memory(make, capacity, rate):
    f = make(capacity, rate)
    bits = max(64, math.ceil(-capacity * math.log(rate) / math.log(2) ** 2 / 64) * 64)
    hashes = max(1, min(replay.MAX_HASHES, round(bits / capacity * math.log(2))))
    if hashes == replay.MAX_HASHES:
        bits = math.ceil(-hashes * capacity / math.log1p(-rate ** (1 / hashes)) / 64) * 64
    assert f.bit_count == bits
    assert f.hash_count == hashes
    assert f.memory_bytes == bits // 8 == len(f.bits())
    assert f.capacity == capacity
    stated = (1 - math.exp(-hashes * capacity / bits)) ** hashes
    assert f.false_positive_rate == pytest.approx(stated, rel=1e-12)
    # rounding k to an integer moves the stated rate by a hair at most
    assert f.false_positive_rate <= rate * 1.001
    assert replay.filter_geometry(capacity, rate) == (bits, hashes, f.false_positive_rate)


def test_memory_examples_from_the_doc():
    # the figures quoted in docs/replay-filter.md
    assert replay.filter_geometry(1_000_000, 1e-6)[:2] == (28_755_200, 20)
    assert replay.filter_geometry(1_000_000, 1e-9)[:2] == (43_132_800, 30)


def test_no_false_negatives_and_count(make):
    f = make(5000, 1e-4)
    tags = _tags(1, 5000)
    fresh = sum(not f.check_and_add(t) for t in tags)
    assert fresh == len(f) == f.count
    assert fresh >= 4990  # a handful of false positives at most
    assert all(f.check_and_add(t) for t in tags)
    assert all(t in f for t in tags)
    assert len(f) == fresh  # replays are not counted


def test_false_positive_rate_at_capacity(make):
    capacity, rate = 20_000, 0.01
    f = make(capacity, rate)
    for t in _tags(2, capacity):
        f.check_and_add(t)
    probes = _tags(3, 40_000)
    measured = sum(t in f for t in probes) / len(probes)
    # standard error at 1 % over 40,000 probes is 0.05 %: a factor of 1.5 is generous
    assert rate / 1.5 < measured < rate * 1.5
    assert f.current_false_positive_rate == pytest.approx(f.false_positive_rate, rel=0.02)


def test_reset_clears_and_rekeys(make):
    key1, key2 = bytes(range(32)), bytes(range(1, 33))
    f = make(1000, 1e-6, key1)
    tags = _tags(4, 200)
    for t in tags:
        f.check_and_add(t)
    bits_key1 = f.bits()
    f.reset(key2)
    assert len(f) == 0 and f.bits() == bytes(f.memory_bytes)
    assert not any(t in f for t in tags)
    for t in tags:
        assert not f.check_and_add(t)
    # another key puts the same tags on other bits
    assert f.bits() != bits_key1
    f.reset(key1)
    for t in tags:
        f.check_and_add(t)
    assert f.bits() == bits_key1
    f.reset()  # fresh random key
    assert len(f) == 0 and not any(t in f for t in tags)


def test_saturation_is_reported_and_degrades_gracefully(make):
    f = make(100, 0.01)
    tags = _tags(5, 400)
    for t in tags[:99]:
        f.check_and_add(t)
    assert not f.saturated
    for t in tags[99:]:
        f.check_and_add(t)
    assert f.saturated and len(f) > 100
    # beyond capacity: still no false negatives, a higher false-positive rate
    assert all(t in f for t in tags)
    assert f.current_false_positive_rate > f.false_positive_rate


def test_bad_arguments(make):
    f = make(10, 0.01)
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(ValueError):
            f.check_and_add(bad)
        with pytest.raises(ValueError):
            bad in f  # noqa: B015 - the membership test itself must raise
    with pytest.raises(ValueError):
        f.reset(bytes(16))
    for capacity, rate in [(0, 0.01), (10, 0.0), (10, 1.0), (10, -1), (2**41, 0.01),
                           (2**40, 1e-12)]:
        with pytest.raises(ValueError):
            make(capacity, rate)
    with pytest.raises(ValueError):
        make(10, 0.01, bytes(31))


@needs_compiled
def test_compiled_and_pure_agree_bit_for_bit():
    key = bytes(range(100, 132))
    c = replay.ReplayFilter(3000, 1e-3, key)
    p = replay.ReplayFilterPy(3000, 1e-3, key)
    rng = random.Random(6)
    tags = _tags(7, 4000)
    sequence = tags + [rng.choice(tags) for _ in range(1000)]  # with replays
    assert [c.check_and_add(t) for t in sequence] == [p.check_and_add(t) for t in sequence]
    assert c.bits() == p.bits() and len(c) == len(p)
    probes = _tags(8, 3000)
    assert [t in c for t in probes] == [t in p for t in probes]
    c.reset(key[::-1])
    p.reset(key[::-1])
    assert [c.check_and_add(t) for t in tags[:500]] == [p.check_and_add(t) for t in tags[:500]]
    assert c.bits() == p.bits()


@needs_compiled
def test_public_class_is_the_compiled_type():
    from fogcore._ext import _replay

    f = replay.ReplayFilter(10, 0.01)
    # the packet batch code cimports _replay.ReplayFilter and calls its cdef check_and_add
    assert isinstance(f, _replay.ReplayFilter)
    tag = bytes(32)
    assert _replay.check_and_add_many(f, tag) == 1
    assert f.check_and_add(tag) is True


@needs_compiled
def test_batch_function_reports_each_tag():
    from fogcore._ext import _replay

    f = replay.ReplayFilter(1000, 1e-9)
    tags = _tags(9, 100)
    batch = b"".join(tags[:50] + tags[:10] + tags[50:])
    out = bytearray(len(batch) // 32)
    assert _replay.check_and_add_many(f, batch, out) == 100
    assert list(out) == [0] * 50 + [1] * 10 + [0] * 50
    with pytest.raises(ValueError):
        _replay.check_and_add_many(f, batch[:-1])
    with pytest.raises(ValueError):
        _replay.check_and_add_many(f, batch, bytearray(3))


@needs_compiled
def test_two_threads_without_the_gil_lose_nothing():
    """Two threads check-and-add through the nogil path at once: distinct tags are all
    recorded, and of two threads racing on the same tag exactly one sees it as new."""
    from fogcore._ext import _replay

    count = 60_000
    f = replay.ReplayFilter(4 * count, 1e-12)
    own = [b"".join(_tags(seed, count)) for seed in (10, 11)]
    shared_tags = _tags(12, count)
    shared = [b"".join(shared_tags), b"".join(reversed(shared_tags))]
    results = {}
    barrier = threading.Barrier(2)

    def worker(i):
        barrier.wait()
        fresh_own = _replay.check_and_add_many(f, own[i])
        out = bytearray(count)
        fresh_shared = _replay.check_and_add_many(f, shared[i], out)
        results[i] = (fresh_own, fresh_shared, out)

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # at 1e-12 a false positive among 180,000 tags has probability below 1e-6
    assert results[0][0] == results[1][0] == count
    assert results[0][1] + results[1][1] == count
    assert len(f) == 3 * count
    seen0, seen1 = results[0][2], results[1][2][::-1]  # thread 1 went in reverse
    assert all(a + b == 1 for a, b in zip(seen0, seen1, strict=True))
    assert all(t in f for t in shared_tags)


def test_pure_twin_is_thread_safe():
    f = replay.ReplayFilterPy(20_000, 1e-9)
    tags = _tags(13, 5000)
    seen = [[], []]

    def worker(i):
        seen[i] = [f.check_and_add(t) for t in (tags if i == 0 else tags[::-1])]

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(f) == len(tags)
    assert all(a + b == 1 for a, b in zip(seen[0], seen[1][::-1], strict=True))


def test_check_and_add_many_on_both_implementations(impl_mode):
    impl = load_impl(impl_mode, "_replay")
    f = impl.ReplayFilter(1000, 1e-9, bytes(32))
    tags = b"".join(_tags(31, 10))
    out = bytearray(11)
    assert impl.check_and_add_many(f, tags + tags[:32], out) == 10
    assert list(out) == [0] * 10 + [1]
    with pytest.raises(ValueError):
        impl.check_and_add_many(f, tags[:-1])
    with pytest.raises(ValueError):
        impl.check_and_add_many(f, tags, bytearray(9))
