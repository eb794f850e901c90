"""Pure-Python twin of `fogcore._ext._delays`: the per-packet VRF delay (docs/vrf-delays.md),
same functions, same results to the microsecond. `fogcore.delays` documents the definition."""

import hashlib
import operator

__all__ = ["DELAY_LABEL", "check_bounds", "delay_us", "delays_into", "neg_ln"]

DELAY_LABEL = b"fogcore/vrf-delay/v1"
BETA_BYTES = 64
TAG_BYTES = 32
_U32 = 2**32

# round(ln 2 * 2^28): (53 << 30) * LN2_Q28 stays below 2^64, as the C code needs.
LN2_Q28 = 186065279


def neg_ln(m: int) -> int:
    """-ln(m / 2^53) as an integer with 30 fractional bits, for 1 <= m <= 2^53.

    Integer-only, bit for bit what the compiled code computes: log2 of the mantissa by
    repeated squaring (30 bits), then a multiplication by ln 2."""
    m = operator.index(m)
    if not 1 <= m <= 2**53:
        raise ValueError("m must be in [1, 2^53]")
    n = m.bit_length() - 1
    x = m >> (n - 31) if n >= 31 else m << (31 - n)  # a Q31 mantissa in [1, 2)
    frac = 0
    for _ in range(30):
        x = (x * x) >> 31
        frac <<= 1
        if x >= 1 << 32:
            x >>= 1
            frac |= 1
    neg_log2 = (53 << 30) - ((n << 30) | frac)
    return (neg_log2 * LN2_Q28) >> 28


def check_bounds(mean_us: int, max_us: int) -> None:
    """OverflowError unless both delay parameters fit in 32 unsigned bits (as C takes them)."""
    if not 0 <= mean_us < _U32 or not 0 <= max_us < _U32:
        raise OverflowError("mean_us and max_us must fit in 32 bits")


def delay_us(beta, tag, mean_us: int, max_us: int) -> int:
    """The delay in microseconds for the packet with this 32-byte replay tag, under the
    epoch's 64-byte VRF output `beta`."""
    beta, tag = bytes(beta), bytes(tag)
    if len(beta) != BETA_BYTES or len(tag) != TAG_BYTES:
        raise ValueError("delay_us takes a 64-byte VRF output and a 32-byte replay tag")
    check_bounds(mean_us, max_us)
    v = int.from_bytes(hashlib.blake2b(DELAY_LABEL + tag, key=beta, digest_size=8).digest(),
                       "little")
    e = neg_ln((v >> 11) + 1)
    delay = mean_us * (e >> 30) + ((mean_us * (e & 0x3FFFFFFF)) >> 30)
    return min(delay, max_us)


def delays_into(beta, tags, mean_us: int, max_us: int, out) -> int:
    """Fill `out[i]` (a writable uint32 buffer) with the delay of the i-th 32-byte tag of
    `tags`; returns the number of tags."""
    beta, tags = bytes(beta), bytes(tags)
    if len(beta) != BETA_BYTES:
        raise ValueError("delays_into takes a 64-byte VRF output")
    if len(tags) % TAG_BYTES:
        raise ValueError("tags must be a whole number of 32-byte tags")
    check_bounds(mean_us, max_us)
    count = len(tags) // TAG_BYTES
    view = memoryview(out).cast("B").cast("I")
    if len(view) < count:
        raise ValueError("out is shorter than the number of tags")
    for i in range(count):
        view[i] = delay_us(beta, tags[i * TAG_BYTES:(i + 1) * TAG_BYTES], mean_us, max_us)
    return count
