"""Pure-Python twin of `fogcore._ext._replay`: the replay-tag Bloom filter keyed per key
epoch (docs/replay-filter.md), with the compiled module's geometry, key schedule and bit
layout, so the two give the same answers for the same key and tags. `fogcore.replay` is the
public face."""

import hashlib
import math
import os
import threading

__all__ = [
    "MAX_BITS",
    "MAX_CAPACITY",
    "MAX_HASHES",
    "ReplayFilter",
    "check_and_add_many",
    "filter_geometry",
]

TAG_BYTES = 32
KEY_BYTES = 32
MAX_HASHES = 32
MAX_BITS = 2**37  # 16 GiB: a bound on a mistyped capacity, not a practical size
MAX_CAPACITY = 2**40
_U64 = 2**64


def filter_geometry(capacity: int, false_positive_rate: float) -> tuple[int, int, float]:
    """(bits m, hashes k, stated false-positive rate) for `capacity` tags at the rate.

    m = ceil(-n ln p / (ln 2)^2) rounded up to a multiple of 64, k = floor(m/n ln 2 + 1/2)
    within [1, MAX_HASHES] (when k hits MAX_HASHES, m = ceil(-k n / ln(1 - p^(1/k))), again
    rounded up to a multiple of 64), stated rate = (1 - exp(-k n / m))^k."""
    capacity = int(capacity)
    rate = float(false_positive_rate)
    if not 1 <= capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity must be in [1, {MAX_CAPACITY}]")
    if not 0.0 < rate < 1.0:
        raise ValueError("false_positive_rate must be in (0, 1)")
    ln2 = math.log(2.0)
    bits = math.ceil(-capacity * math.log(rate) / (ln2 * ln2))
    bits = max(64, (bits + 63) // 64 * 64)
    hashes = max(1, min(MAX_HASHES, int(bits / capacity * ln2 + 0.5)))
    if hashes == MAX_HASHES:
        # fewer hashes than optimal: widen the filter until k = MAX_HASHES meets the rate
        bits = math.ceil(-hashes * capacity / math.log1p(-rate ** (1.0 / hashes)))
        bits = max(64, (bits + 63) // 64 * 64)
    if bits > MAX_BITS:
        raise ValueError("replay filter would exceed 16 GiB; lower capacity or raise the rate")
    stated = (1.0 - math.exp(-hashes * capacity / bits)) ** hashes
    return bits, hashes, stated


class ReplayFilter:
    """Bloom filter of 32-byte replay tags (pure Python), the compiled filter's twin: same geometry, key schedule and bit layout
    (bit j is bit j % 8 of byte j // 8). Thread-safe through one lock."""

    def __init__(self, capacity: int, false_positive_rate: float, key: bytes | None = None):
        self._nbits, self._hashes, self._fp_rate = filter_geometry(capacity,
                                                                   false_positive_rate)
        self._capacity = int(capacity)
        self._bits = bytearray(self._nbits // 8)
        self._lock = threading.Lock()
        self._count = 0
        self._key = b""
        self.reset(key)

    def _positions(self, tag) -> list[int]:
        tag = bytes(tag)
        if len(tag) != TAG_BYTES:
            raise ValueError("replay tag must be 32 bytes")
        h = hashlib.blake2b(tag, key=self._key, digest_size=16).digest()
        h1 = int.from_bytes(h[:8], "little")
        h2 = int.from_bytes(h[8:], "little") | 1
        return [((h1 + i * h2) % _U64) % self._nbits for i in range(self._hashes)]

    def check_and_add(self, tag: bytes) -> bool:
        """Record a 32-byte tag; True if it was (probably) seen before, False if new."""
        with self._lock:
            seen = True
            for pos in self._positions(tag):
                mask = 1 << (pos & 7)
                if not self._bits[pos >> 3] & mask:
                    seen = False
                    self._bits[pos >> 3] |= mask
            if not seen:
                self._count += 1
            return seen

    add = check_and_add

    def __contains__(self, tag) -> bool:
        with self._lock:
            return all(self._bits[p >> 3] & (1 << (p & 7)) for p in self._positions(tag))

    def reset(self, key: bytes | None = None) -> None:
        """Start a new key epoch: forget every tag and key the filter with `key` (32 bytes;
        fresh random bytes when None)."""
        key = os.urandom(KEY_BYTES) if key is None else bytes(key)
        if len(key) != KEY_BYTES:
            raise ValueError("replay filter key must be 32 bytes")
        with self._lock:
            self._key = key
            self._bits[:] = bytes(len(self._bits))
            self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def count(self) -> int:
        """Tags recorded as new since the last reset."""
        return self._count

    @property
    def capacity(self) -> int:
        """Tags the filter is sized for at its stated false-positive rate."""
        return self._capacity

    @property
    def false_positive_rate(self) -> float:
        """The false-positive rate once `capacity` tags are recorded."""
        return self._fp_rate

    @property
    def current_false_positive_rate(self) -> float:
        """The expected false-positive rate for the tags recorded so far."""
        load = float(self._hashes) * self._count / self._nbits
        return (1.0 - math.exp(-load)) ** self._hashes

    @property
    def saturated(self) -> bool:
        """True once `capacity` tags are recorded: rotate the key (and reset) now."""
        return self._count >= self._capacity

    @property
    def memory_bytes(self) -> int:
        """Size of the bit array in bytes (fixed at construction)."""
        return self._nbits // 8

    @property
    def bit_count(self) -> int:
        """Number of bits m in the filter."""
        return self._nbits

    @property
    def hash_count(self) -> int:
        """Number of bits k set per tag."""
        return self._hashes

    def bits(self) -> bytes:
        """A copy of the bit array (for tests and inspection)."""
        with self._lock:
            return bytes(self._bits)




def check_and_add_many(replay_filter: ReplayFilter, tags, out=None) -> int:
    """Check and record consecutive 32-byte tags. `out[i]`, when given, receives 1 if tag i
    was seen before, else 0. Returns the number of tags recorded as new."""
    tags = bytes(tags)
    if len(tags) % TAG_BYTES:
        raise ValueError("tags must be a whole number of 32-byte tags")
    count = len(tags) // TAG_BYTES
    if out is not None and len(out) < count:
        raise ValueError("out is shorter than the number of tags")
    fresh = 0
    for i in range(count):
        seen = replay_filter.check_and_add(tags[i * TAG_BYTES:(i + 1) * TAG_BYTES])
        if out is not None:
            out[i] = int(seen)
        fresh += not seen
    return fresh
