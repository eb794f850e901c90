"""Replay protection: a per-key-epoch Bloom filter of replay tags (docs/replay-filter.md).

`ReplayFilter(capacity, false_positive_rate, key=None)` holds a fixed amount of memory
computed from its capacity and target false-positive rate, is keyed with a secret per key
epoch so that nobody can aim tags at chosen bits, and is emptied and re-keyed by `reset`
when the node rotates its routing key. `check_and_add(tag)` records a 32-byte tag and
returns True when the tag was (probably) seen before.

The compiled filter (`fogcore._ext._replay`) is what the packet batch code calls without
the GIL from several worker threads; `ReplayFilterPy` is its pure-Python twin with the same
bit layout, and gives the same answers for the same key and tags.
"""

from fogcore import _replay_py
from fogcore._impl import implementation

__all__ = [
    "IMPLEMENTATION",
    "MAX_HASHES",
    "TAG_BYTES",
    "ReplayFilter",
    "ReplayFilterPy",
    "filter_geometry",
]

TAG_BYTES = _replay_py.TAG_BYTES
MAX_HASHES = _replay_py.MAX_HASHES
filter_geometry = _replay_py.filter_geometry
#: the pure-Python filter, whichever implementation `ReplayFilter` is
ReplayFilterPy = _replay_py.ReplayFilter


_impl = implementation("_replay")

if _impl is not _replay_py:

    class ReplayFilter(_impl.ReplayFilter):
        """Bloom filter of 32-byte replay tags keyed per key epoch (compiled).

        `ReplayFilter(capacity, false_positive_rate, key=None)`; `check_and_add(tag)` is
        True when the tag was (probably) seen before. Cython code reaches the same filter
        without the GIL through `fogcore._ext._replay.ReplayFilter.check_and_add`."""

        __slots__ = ()
        # The compiled class names its Python method `add`: a def method may not share the
        # name of the cdef `check_and_add` that the packet batch code calls.
        check_and_add = _impl.ReplayFilter.add

    IMPLEMENTATION = "c"
else:
    ReplayFilter = ReplayFilterPy  # type: ignore[misc,assignment]
    IMPLEMENTATION = "py"
