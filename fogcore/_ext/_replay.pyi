"""Replay-tag Bloom filter keyed per key epoch; see fogcore.replay."""

from collections.abc import Buffer

MAX_HASHES: int
MAX_BITS: int
MAX_CAPACITY: int

def filter_geometry(capacity: int, false_positive_rate: float) -> tuple[int, int, float]:
    """(bits, hashes, stated false-positive rate) for `capacity` tags at the rate."""

class ReplayFilter:
    """Bloom filter of 32-byte replay tags, keyed per key epoch."""

    def __init__(self, capacity: int, false_positive_rate: float,
                 key: Buffer | None = None) -> None: ...
    def add(self, tag: Buffer) -> bool:
        """Record a tag; True if it was (probably) seen before."""
    def __contains__(self, tag: Buffer) -> bool: ...
    def reset(self, key: Buffer | None = None) -> None:
        """Forget every tag and re-key the filter (fresh random key when None)."""
    def __len__(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def false_positive_rate(self) -> float: ...
    @property
    def current_false_positive_rate(self) -> float: ...
    @property
    def saturated(self) -> bool: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def bit_count(self) -> int: ...
    @property
    def hash_count(self) -> int: ...
    def bits(self) -> bytes:
        """A copy of the bit array."""

def check_and_add_many(replay_filter: ReplayFilter, tags: Buffer,
                       out: Buffer | None = None) -> int:
    """Check and record consecutive 32-byte tags without the GIL; returns the new count."""
