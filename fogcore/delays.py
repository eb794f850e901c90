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

from fogcore import _delays_py, vrf
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
DELAY_LABEL = _delays_py.DELAY_LABEL
TAG_BYTES = _delays_py.TAG_BYTES


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


#: -ln(m / 2^53) with 30 fractional bits, integer-only (the pure twin's `neg_ln`)
neg_ln_q30 = _delays_py.neg_ln
_check_bounds = _delays_py.check_bounds


#: The pure-Python definition of the per-packet delay (the module docstring).
delay_us_reference = _delays_py.delay_us


_impl = implementation("_delays")
IMPLEMENTATION = "py" if _impl is _delays_py else "c"
delay_us = _impl.delay_us


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
