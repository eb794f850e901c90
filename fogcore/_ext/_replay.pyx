# cython: language_level=3, embedsignature=True
"""Replay-tag filter: a Bloom filter keyed per key epoch (docs/replay-filter.md).

Geometry from (capacity n, false-positive rate p):
    bits   m = ceil(-n ln p / (ln 2)^2), rounded up to a multiple of 64 (at least 64)
    hashes k = floor(m / n * ln 2 + 1/2), between 1 and MAX_HASHES; when k is capped,
             m = ceil(-k n / ln(1 - p^(1/k))), rounded up to a multiple of 64
    stated rate = (1 - exp(-k n / m))^k
Bit positions of a 32-byte tag under the 32-byte epoch key:
    h  = BLAKE2b(key = epoch key, data = tag, digest 16 bytes)
    h1 = h[0:8] little-endian, h2 = h[8:16] little-endian | 1
    position i = ((h1 + i * h2) mod 2^64) mod m, for i = 0 .. k - 1
Bit position j is bit (j mod 8) of byte j div 8.

One pthread mutex guards the bits, the key and the count for the length of one
check-and-add (a keyed hash and k bit tests), so two threads never both accept the same
tag and a reset never tears a check.
"""

import math

from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memset

from fogcore._ext._mem cimport fog_calloc, fog_free
from fogcore._ext._sodium cimport SodiumAPI, sodium_api
from fogcore._ext.includes.fog_wipe cimport fog_wipe
from fogcore._ext.includes.pthread cimport (
    pthread_mutex_destroy,
    pthread_mutex_init,
    pthread_mutex_lock,
    pthread_mutex_unlock,
)

cdef const SodiumAPI *S = sodium_api()

MAX_HASHES = 32
MAX_BITS = 2**37  # 16 GiB of filter: a bound on a mistyped capacity, not a practical size
MAX_CAPACITY = 2**40


def filter_geometry(capacity, false_positive_rate):
    """(bits, hashes, stated false-positive rate) for `capacity` tags at the given rate."""
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


cdef inline void _positions(const unsigned char *key, const unsigned char *tag,
                            uint64_t *h1, uint64_t *h2) noexcept nogil:
    cdef unsigned char h[16]
    cdef int i
    S.crypto_generichash_blake2b(h, 16, tag, REPLAY_TAG_BYTES, key, REPLAY_KEY_BYTES)
    h1[0] = 0
    h2[0] = 0
    for i in range(7, -1, -1):
        h1[0] = (h1[0] << 8) | h[i]
        h2[0] = (h2[0] << 8) | h[8 + i]
    h2[0] |= 1


cdef class ReplayFilter:
    """Bloom filter of 32-byte replay tags, keyed per key epoch.

    `ReplayFilter(capacity, false_positive_rate, key=None)`: sized so that after
    `capacity` distinct tags a fresh tag is wrongly reported as seen with probability
    `false_positive_rate` (the stated rate is recomputed from the rounded geometry). A
    seen tag is always reported as seen: no false negatives. `key` (32 bytes) defaults to
    fresh random bytes; `reset(key)` starts a new key epoch."""

    def __cinit__(self, capacity, false_positive_rate, key=None):
        nbits, hashes, stated = filter_geometry(capacity, false_positive_rate)
        self._bits = <uint8_t *>fog_calloc(nbits // 8, 1)
        if self._bits == NULL:
            raise MemoryError("cannot allocate the replay filter")
        if pthread_mutex_init(&self._lock, NULL) != 0:
            raise OSError("pthread_mutex_init failed")
        self._lock_ready = True
        self._nbits = nbits
        self._hashes = hashes
        self._capacity = int(capacity)
        self._fp_rate = stated
        self._count = 0
        self._set_key(key)

    def __dealloc__(self):
        if self._lock_ready:
            pthread_mutex_destroy(&self._lock)
        fog_free(self._bits)
        self._bits = NULL

    cdef int check_and_add(self, const unsigned char *tag) noexcept nogil:
        cdef uint64_t h1, h2, pos
        cdef unsigned int i
        cdef uint8_t mask
        cdef int seen = 1
        pthread_mutex_lock(&self._lock)
        _positions(self._key, tag, &h1, &h2)
        for i in range(self._hashes):
            pos = (h1 + <uint64_t>i * h2) % self._nbits
            mask = <uint8_t>1 << (pos & 7)
            if not self._bits[pos >> 3] & mask:
                seen = 0
                self._bits[pos >> 3] |= mask
        if not seen:
            self._count += 1
        pthread_mutex_unlock(&self._lock)
        return seen

    cdef bint _contains(self, const unsigned char *tag) noexcept nogil:
        cdef uint64_t h1, h2, pos
        cdef unsigned int i
        cdef bint seen = True
        pthread_mutex_lock(&self._lock)
        _positions(self._key, tag, &h1, &h2)
        for i in range(self._hashes):
            pos = (h1 + <uint64_t>i * h2) % self._nbits
            if not self._bits[pos >> 3] & (<uint8_t>1 << (pos & 7)):
                seen = False
                break
        pthread_mutex_unlock(&self._lock)
        return seen

    cdef int _set_key(self, object key) except -1:
        cdef unsigned char fresh[32]
        cdef const unsigned char[::1] view
        if key is None:
            S.randombytes_buf(fresh, 32)
        else:
            view = key
            if view.shape[0] != REPLAY_KEY_BYTES:
                raise ValueError("replay filter key must be 32 bytes")
            memcpy(fresh, &view[0], 32)
        with nogil:
            pthread_mutex_lock(&self._lock)
            memcpy(self._key, fresh, 32)
            memset(self._bits, 0, self._nbits // 8)
            self._count = 0
            pthread_mutex_unlock(&self._lock)
        fog_wipe(fresh, 32)
        return 0

    def add(self, const unsigned char[::1] tag not None):
        """Record a 32-byte tag; True if it was (probably) seen before, False if new."""
        if tag.shape[0] != REPLAY_TAG_BYTES:
            raise ValueError("replay tag must be 32 bytes")
        # Waiting on the mutex while holding the GIL cannot deadlock: holders never need it.
        return self.check_and_add(&tag[0]) != 0

    def __contains__(self, tag):
        cdef const unsigned char[::1] view = tag
        if view.shape[0] != REPLAY_TAG_BYTES:
            raise ValueError("replay tag must be 32 bytes")
        return self._contains(&view[0])

    def reset(self, key=None):
        """Start a new key epoch: forget every tag and key the filter with `key` (32 bytes;
        fresh random bytes when None)."""
        self._set_key(key)

    def __len__(self):
        return self._count

    @property
    def count(self):
        """Tags recorded as new since the last reset."""
        return self._count

    @property
    def capacity(self):
        """Tags the filter is sized for at its stated false-positive rate."""
        return self._capacity

    @property
    def false_positive_rate(self):
        """The false-positive rate once `capacity` tags are recorded."""
        return self._fp_rate

    @property
    def current_false_positive_rate(self):
        """The expected false-positive rate for the tags recorded so far."""
        cdef double load = (<double>self._hashes) * self._count / self._nbits
        return (1.0 - math.exp(-load)) ** self._hashes

    @property
    def saturated(self):
        """True once `capacity` tags are recorded: rotate the key (and reset) now."""
        return self._count >= self._capacity

    @property
    def memory_bytes(self):
        """Size of the bit array in bytes (fixed at construction)."""
        return self._nbits // 8

    @property
    def bit_count(self):
        """Number of bits m in the filter."""
        return self._nbits

    @property
    def hash_count(self):
        """Number of bits k set per tag."""
        return self._hashes

    def bits(self):
        """A copy of the bit array (for tests and inspection)."""
        cdef bytes out
        # Mutex holders never need the GIL, so waiting here with it held is safe.
        pthread_mutex_lock(&self._lock)
        try:
            out = (<char *>self._bits)[:self._nbits // 8]
        finally:
            pthread_mutex_unlock(&self._lock)
        return out


def check_and_add_many(ReplayFilter replay_filter not None,
                       const unsigned char[::1] tags not None, uint8_t[::1] out=None):
    """Check and record consecutive 32-byte tags without the GIL, as the packet batch code
    does. `out[i]`, when given, receives 1 if tag i was seen before, else 0. Returns the
    number of tags recorded as new."""
    if tags.shape[0] % REPLAY_TAG_BYTES:
        raise ValueError("tags must be a whole number of 32-byte tags")
    cdef Py_ssize_t count = tags.shape[0] // REPLAY_TAG_BYTES, i, fresh = 0
    cdef int seen
    cdef bint store = out is not None
    if store and out.shape[0] < count:
        raise ValueError("out is shorter than the number of tags")
    with nogil:
        for i in range(count):
            seen = replay_filter.check_and_add(&tags[i * REPLAY_TAG_BYTES])
            if store:
                out[i] = <uint8_t>seen
            if not seen:
                fresh += 1
    return fresh
