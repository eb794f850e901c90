# cython: language_level=3, embedsignature=True
"""Per-packet mixing delays derived from the epoch VRF output (docs/vrf-delays.md).

For a 32-byte replay tag and the 64-byte VRF output beta of the delay epoch:

    v     = first 8 bytes of BLAKE2b-64(key = beta, data = DELAY_LABEL || tag), little-endian
    m     = (v >> 11) + 1                  # 1 <= m <= 2^53: u = m / 2^53 is uniform on (0, 1]
    e     = neg_ln_q30(m)                  # -ln(u), 30 fractional bits, integers only
    delay = min(max_us, floor(mean_us * e / 2^30))

Only integer arithmetic follows the hash, so every platform gives the same microseconds.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t

from operator import index as _index

from fogcore._ext._sodium cimport SodiumAPI, fog_hash_state, sodium_api

cdef const SodiumAPI *S = sodium_api()

# The data hashed for each packet starts with this label (domain separation from any other
# use of beta).
DELAY_LABEL = b"fogcore/vrf-delay/v1"
cdef unsigned char _LABEL[20]
if len(DELAY_LABEL) != sizeof(_LABEL):
    raise ImportError("DELAY_LABEL does not fit its buffer")
for _i, _b in enumerate(DELAY_LABEL):
    _LABEL[_i] = _b

# round(ln 2 * 2^28); (53 << 30) * LN2_Q28 < 2^64, so the product below cannot overflow
cdef uint64_t LN2_Q28 = 186065279


cdef uint64_t neg_ln_q30(uint64_t m) noexcept nogil:
    cdef uint64_t x, frac = 0
    cdef int n = 63, i
    # n = floor(log2 m)
    while not (m >> n) & 1:
        n -= 1
    # x = m scaled into [2^31, 2^32): a Q31 mantissa in [1, 2)
    x = (m >> (n - 31)) if n >= 31 else (m << (31 - n))
    # 30 fractional bits of log2 of the mantissa, one per squaring
    for i in range(30):
        x = (x * x) >> 31
        frac <<= 1
        if x >= (<uint64_t>1 << 32):
            x >>= 1
            frac |= 1
    # -log2(m / 2^53) = 53 - log2(m), then times ln 2
    cdef uint64_t neg_log2 = (<uint64_t>53 << 30) - ((<uint64_t>n << 30) | frac)
    return (neg_log2 * LN2_Q28) >> 28


cdef uint32_t vrf_delay_us(const unsigned char *beta, const unsigned char *tag,
                           uint32_t mean_us, uint32_t max_us) noexcept nogil:
    cdef fog_hash_state st
    cdef unsigned char h[8]
    cdef uint64_t v = 0, e, delay
    cdef int i
    S.crypto_generichash_blake2b_init(&st, beta, 64, 8)
    S.crypto_generichash_blake2b_update(&st, _LABEL, sizeof(_LABEL))
    S.crypto_generichash_blake2b_update(&st, tag, 32)
    S.crypto_generichash_blake2b_final(&st, h, 8)
    for i in range(7, -1, -1):
        v = (v << 8) | h[i]
    e = neg_ln_q30((v >> 11) + 1)
    # floor(mean_us * e / 2^30) in two parts so no product exceeds 64 bits
    delay = <uint64_t>mean_us * (e >> 30) + ((<uint64_t>mean_us * (e & 0x3FFFFFFF)) >> 30)
    return <uint32_t>(delay if delay < max_us else max_us)


def delay_us(const unsigned char[::1] beta not None, const unsigned char[::1] tag not None,
             uint32_t mean_us, uint32_t max_us):
    """The delay in microseconds for one packet (see the module docstring)."""
    if beta.shape[0] != DELAY_BETA_BYTES or tag.shape[0] != DELAY_TAG_BYTES:
        raise ValueError("delay_us takes a 64-byte VRF output and a 32-byte replay tag")
    cdef uint32_t d
    with nogil:
        d = vrf_delay_us(&beta[0], &tag[0], mean_us, max_us)
    return d


def delays_into(const unsigned char[::1] beta not None, const unsigned char[::1] tags not None,
                uint32_t mean_us, uint32_t max_us, uint32_t[::1] out not None):
    """Fill `out[i]` with the delay of the i-th 32-byte tag of `tags` (a whole batch,
    without the GIL). Returns the number of tags."""
    if beta.shape[0] != DELAY_BETA_BYTES:
        raise ValueError("delays_into takes a 64-byte VRF output")
    if tags.shape[0] % DELAY_TAG_BYTES:
        raise ValueError("tags must be a whole number of 32-byte tags")
    cdef Py_ssize_t count = tags.shape[0] // DELAY_TAG_BYTES, i
    if out.shape[0] < count:
        raise ValueError("out is shorter than the number of tags")
    with nogil:
        for i in range(count):
            out[i] = vrf_delay_us(&beta[0], &tags[i * DELAY_TAG_BYTES], mean_us, max_us)
    return count


def neg_ln(m):
    """-ln(m / 2^53) with 30 fractional bits (an integer), for 1 <= m <= 2^53."""
    # Compared as a Python integer: a negative or huge m is a ValueError, never a wrap.
    m = _index(m)
    if not 1 <= m <= 2**53:
        raise ValueError("m must be in [1, 2^53]")
    return neg_ln_q30(<uint64_t>m)
