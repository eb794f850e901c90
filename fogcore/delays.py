"""Verifiable per-packet mixing delays (docs/vrf-delays.md).

Each node proves one ECVRF output per delay epoch over the epoch number:

    alpha = EPOCH_LABEL || epoch as 8 bytes big-endian
    proof = vrf.prove(node secret key, alpha);  beta = vrf.proof_to_hash(proof)

Each packet's delay is an exponential draw with mean `mean_us` microseconds, clamped to
`max_us`, taken from a keyed hash of (beta, the packet's 32-byte replay tag):

    v     = BLAKE2b(key = beta, data = DELAY_LABEL || tag, digest 8 bytes), little-endian
    m     = (v >> 11) + 1                   # u = m / 2^53 is uniform on (0, 1]
    delay = min(max_us, floor(mean_us * (-ln u)))

where -ln u is computed with integers only (`neg_ln_q30`), so that every platform and both
implementations give exactly the same microseconds and an auditor can demand equality.

The node's VRF secret key is not its Ed25519 identity seed (Ed25519 and ECVRF would derive
their nonces from the same secret) but a key derived from it with a label of its own
(`vrf_secret_key`, docs/vrf-delays.md §1.1); its public half is published in the node's
descriptor (`vrf_public_key`, docs/directory.md).

The node cannot bias the delays (beta is fixed by its key and the epoch number) and nobody
can predict them before the node publishes the proof after the epoch. A sender knows its
packet's replay tag at every hop, so with the published proof it can `audit` the delay each
node applied.
"""

import hashlib

from fogcore import vrf
from fogcore._impl import implementation

__all__ = [
    "DELAY_LABEL",
    "EPOCH_LABEL",
    "VRF_KEY_LABEL",
    "IMPLEMENTATION",
    "EpochDelays",
    "audit",
    "delay_us",
    "delay_us_reference",
    "epoch_alpha",
    "expected_delay_us",
    "neg_ln_q30",
    "vrf_public_key",
    "vrf_secret_key",
]

EPOCH_LABEL = b"fogcore/vrf-delay-epoch/v1"
VRF_KEY_LABEL = b"fogcore vrf key v1"
DELAY_LABEL = b"fogcore/vrf-delay/v1"
TAG_BYTES = 32
_U32 = 2**32

# round(ln 2 * 2^28): (53 << 30) * LN2_Q28 stays below 2^64, as the C code needs.
LN2_Q28 = 186065279


def vrf_secret_key(identity_seed: bytes) -> bytes:
    """The node's 32-byte VRF secret key, derived from its 32-byte Ed25519 identity seed:
    BLAKE2b(key = identity seed, data = VRF_KEY_LABEL, digest 32 bytes).

    A keyed hash of the seed under a label used nowhere else, so the VRF and Ed25519
    never share a secret (both derive nonces from theirs) while the node still keeps a
    single seed. Raises ValueError when the seed is not 32 bytes."""
    identity_seed = bytes(identity_seed)
    if len(identity_seed) != 32:
        raise ValueError("identity seed must be 32 bytes")
    return hashlib.blake2b(VRF_KEY_LABEL, key=identity_seed, digest_size=32).digest()


def vrf_public_key(identity_seed: bytes) -> bytes:
    """The 32-byte VRF public key of the node with this identity seed, as published in its
    descriptor (the RFC 9381 public key of `vrf_secret_key(identity_seed)`)."""
    return vrf.public_key(vrf_secret_key(identity_seed))


def epoch_alpha(epoch: int) -> bytes:
    """The VRF input of a delay epoch: EPOCH_LABEL || epoch (8 bytes, big-endian)."""
    if not 0 <= epoch < 2**64:
        raise ValueError("epoch must be in [0, 2^64)")
    return EPOCH_LABEL + epoch.to_bytes(8, "big")


def neg_ln_q30(m: int) -> int:
    """-ln(m / 2^53) as an integer with 30 fractional bits, for 1 <= m <= 2^53.

    Integer-only, bit for bit what the compiled code computes: log2 of the mantissa by
    repeated squaring (30 bits), then a multiplication by ln 2."""
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


def _check_bounds(mean_us: int, max_us: int) -> None:
    if not 0 <= mean_us < _U32 or not 0 <= max_us < _U32:
        raise OverflowError("mean_us and max_us must fit in 32 bits")


def delay_us_reference(beta: bytes, tag: bytes, mean_us: int, max_us: int) -> int:
    """The pure-Python definition of the per-packet delay (the module docstring)."""
    beta, tag = bytes(beta), bytes(tag)
    if len(beta) != vrf.BETA_BYTES or len(tag) != TAG_BYTES:
        raise ValueError("delay_us takes a 64-byte VRF output and a 32-byte replay tag")
    _check_bounds(mean_us, max_us)
    v = int.from_bytes(hashlib.blake2b(DELAY_LABEL + tag, key=beta, digest_size=8).digest(),
                       "little")
    e = neg_ln_q30((v >> 11) + 1)
    delay = mean_us * (e >> 30) + ((mean_us * (e & 0x3FFFFFFF)) >> 30)
    return min(delay, max_us)


_compiled = implementation("_delays")  # None: this module's own pure code
IMPLEMENTATION = "c" if _compiled is not None else "py"
delay_us = _compiled.delay_us if _compiled is not None else delay_us_reference


class EpochDelays:
    """A node's delays for one epoch: its VRF proof and output, and the delay parameters.
    `secret_key` is the node's VRF secret key (`vrf_secret_key`), never its identity seed.

    The node keeps `proof` private until the epoch is over, then publishes it (with the
    epoch number) so that senders can audit the delays it applied."""

    __slots__ = ("beta", "epoch", "max_us", "mean_us", "proof")

    def __init__(self, secret_key: bytes, epoch: int, mean_us: int, max_us: int) -> None:
        _check_bounds(mean_us, max_us)
        self.epoch = epoch
        self.mean_us = mean_us
        self.max_us = max_us
        self.proof = vrf.prove(secret_key, epoch_alpha(epoch))
        self.beta = vrf.proof_to_hash(self.proof)

    def delay_us(self, tag: bytes) -> int:
        """The delay in microseconds for the packet with this 32-byte replay tag."""
        return delay_us(self.beta, tag, self.mean_us, self.max_us)


def expected_delay_us(public_key: bytes, epoch: int, proof: bytes, tag: bytes,
                      mean_us: int, max_us: int) -> int:
    """The delay the node with `public_key` had to give the packet with `tag` in `epoch`.

    Verifies the epoch proof first; raises `fogcore.vrf.InvalidProof` if it does not
    verify for this key and epoch."""
    beta = vrf.verify(public_key, proof, epoch_alpha(epoch))
    return delay_us(beta, tag, mean_us, max_us)


def audit(public_key: bytes, epoch: int, proof: bytes, tag: bytes, claimed_delay_us: int,
          mean_us: int, max_us: int) -> bool:
    """True when `claimed_delay_us` is exactly the delay the node had to use for the
    packet with replay tag `tag` in `epoch`, False when it is any other value.

    A proof that does not verify for this key and epoch is a different fault (the node
    published a bad or someone else's proof) and raises `fogcore.vrf.InvalidProof`."""
    expected = expected_delay_us(public_key, epoch, proof, tag, mean_us, max_us)
    return claimed_delay_us == expected
