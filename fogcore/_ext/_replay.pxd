# Replay-tag filter for the packet core (docs/replay-filter.md): a Bloom filter keyed per
# key epoch, bounded memory, safe to call from several threads without the GIL.
#
#     from fogcore._ext._replay cimport ReplayFilter
#     with nogil:
#         if replay_filter.check_and_add(tag):   # 32-byte replay tag
#             ...  # (probably) seen before: reject as a replay

from libc.stdint cimport uint8_t, uint64_t

from fogcore._ext.includes.pthread cimport pthread_mutex_t

cdef enum:
    REPLAY_TAG_BYTES = 32
    REPLAY_KEY_BYTES = 32

cdef class ReplayFilter:
    cdef uint8_t *_bits           # bit i is bit (i % 8) of byte i // 8
    cdef uint64_t _nbits          # a multiple of 64
    cdef unsigned int _hashes     # k, the bits set per tag
    cdef uint64_t _count          # tags recorded as new since the last reset
    cdef uint64_t _capacity
    cdef double _fp_rate          # stated rate at capacity
    cdef unsigned char _key[32]   # BLAKE2b key of the current key epoch
    cdef pthread_mutex_t _lock    # held for one check_and_add: no lost insert, no torn state
    cdef bint _lock_ready

    # 1 if the 32-byte tag was (probably) seen since the last reset, 0 if it is new (and
    # is now recorded). Atomic with respect to other threads.
    cdef int check_and_add(self, const unsigned char *tag) noexcept nogil
    cdef bint _contains(self, const unsigned char *tag) noexcept nogil
    cdef int _set_key(self, object key) except -1
