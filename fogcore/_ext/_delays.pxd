# Per-packet mixing delays from a node's epoch VRF output (docs/vrf-delays.md). Called by
# the packet batch code for every packet, without the GIL and without allocating.
#
#     from fogcore._ext._delays cimport vrf_delay_us
#     with nogil:
#         delay = vrf_delay_us(beta, tag, mean_us, max_us)

from libc.stdint cimport uint32_t, uint64_t

cdef enum:
    DELAY_BETA_BYTES = 64
    DELAY_TAG_BYTES = 32

# -ln(m / 2^53) in unsigned fixed point with 30 fractional bits, for 1 <= m <= 2^53, computed
# with integer operations only so that every platform and the pure-Python twin agree.
cdef uint64_t neg_ln_q30(uint64_t m) noexcept nogil

# The delay in microseconds the node must apply to the packet with this 32-byte replay tag,
# given the 64-byte VRF output beta of the current delay epoch: an exponential draw with
# mean `mean_us`, clamped to `max_us`.
cdef uint32_t vrf_delay_us(const unsigned char *beta, const unsigned char *tag,
                           uint32_t mean_us, uint32_t max_us) noexcept nogil
