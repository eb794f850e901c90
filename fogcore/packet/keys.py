"""Node keys: an Ed25519 identity (the node id) and an X25519 routing key that rotates by
epoch, and `NodeInfo`, the public half a sender takes from the directory."""

import os
import struct
from dataclasses import dataclass, field

import nacl.bindings as nb

from fogcore import _sodium_py as cp

__all__ = ["NodeInfo", "NodeKeys", "edwards_from_montgomery"]

_P = 2**255 - 19
_ROUTING_LABEL = b"fogcore/routing-key/v1"


def edwards_from_montgomery(u_bytes: bytes) -> bytes | None:
    """The edwards25519 encoding (sign bit 0) of the point with Montgomery u-coordinate
    `u_bytes`, or None when that is not a point of the prime-order subgroup.

    y = (u - 1) / (u + 1). Senders that build `sphinx` headers with reduced scalar products
    (docs/packet-format.md §2.6) need routing keys in this form; the check also rejects
    low-order points, keys with a torsion component, points on the twist and non-canonical u.
    """
    if len(u_bytes) != 32:
        return None
    u = int.from_bytes(u_bytes, "little")
    if u >= _P or (u + 1) % _P == 0:
        return None
    y = (u - 1) * pow(u + 1, _P - 2, _P) % _P
    encoded = y.to_bytes(32, "little")
    # libsodium's check: canonical, on the curve, not of small order, in the main subgroup.
    if not nb.crypto_core_ed25519_is_valid_point(encoded):
        return None
    return encoded


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a sender needs about a node: its id (Ed25519 identity public key) and its
    current X25519 routing public key. Construction rejects unusable routing keys."""

    node_id: bytes
    routing_public_key: bytes
    routing_key_edwards: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        node_id = bytes(self.node_id)
        routing = bytes(self.routing_public_key)
        if len(node_id) != 32:
            raise ValueError("node id must be 32 bytes")
        edwards = edwards_from_montgomery(routing)
        if edwards is None:
            raise ValueError("routing key is not a point of the prime-order subgroup")
        object.__setattr__(self, "node_id", node_id)
        object.__setattr__(self, "routing_public_key", routing)
        object.__setattr__(self, "routing_key_edwards", edwards)


class NodeKeys:
    """A node's secret keys: the Ed25519 identity seed and the X25519 routing secret.

    The routing key is independent of the identity (rotate it with `rotate`), so that
    losing one epoch's routing key exposes neither the identity nor other epochs.
    """

    __slots__ = ("identity_seed", "node_id", "routing_public", "routing_secret", "_sk")

    def __init__(self, identity_seed: bytes, routing_secret: bytes):
        identity_seed = bytes(identity_seed)
        routing_secret = bytes(routing_secret)
        if len(identity_seed) != 32 or len(routing_secret) != 32:
            raise ValueError("identity seed and routing secret must be 32 bytes each")
        self.identity_seed = identity_seed
        self.node_id, self._sk = nb.crypto_sign_seed_keypair(identity_seed)
        self.routing_secret = routing_secret
        self.routing_public = cp.x25519_base(routing_secret)

    @classmethod
    def generate(cls) -> "NodeKeys":
        """Fresh random keys."""
        return cls(os.urandom(32), os.urandom(32))

    @classmethod
    def from_seed(cls, seed: bytes, epoch: int = 0) -> "NodeKeys":
        """Deterministic keys (test networks, vectors): the identity seed is `seed`, the
        routing secret BLAKE2b(key="fogcore/routing-key/v1", seed || epoch as u64)."""
        seed = bytes(seed)
        data = seed + struct.pack(">Q", epoch)
        return cls(seed, cp.blake2b(data, key=_ROUTING_LABEL, digest_size=32))

    def rotate(self, routing_secret: bytes | None = None) -> "NodeKeys":
        """The same identity with a new (random unless given) routing key."""
        return NodeKeys(self.identity_seed, routing_secret or os.urandom(32))

    def info(self) -> NodeInfo:
        """The public descriptor fields of these keys."""
        return NodeInfo(self.node_id, self.routing_public)

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature by the identity key (for descriptors)."""
        return nb.crypto_sign(bytes(message), self._sk)[:64]

    def __repr__(self) -> str:
        return f"NodeKeys(node_id={self.node_id.hex()[:16]}...)"
