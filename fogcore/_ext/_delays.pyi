"""Per-packet mixing delays from the epoch VRF output; see fogcore.delays."""

from collections.abc import Buffer

DELAY_LABEL: bytes

def delay_us(beta: Buffer, tag: Buffer, mean_us: int, max_us: int) -> int:
    """The delay in microseconds for the packet with this 32-byte replay tag."""

def delays_into(beta: Buffer, tags: Buffer, mean_us: int, max_us: int, out: Buffer) -> int:
    """Fill a uint32 buffer with the delays of consecutive 32-byte tags; returns the count."""

def neg_ln(m: int) -> int:
    """-ln(m / 2^53) with 30 fractional bits, for 1 <= m <= 2^53."""
