"""Pure-Python reference of the `sphinx` (v1) format: docs/packet-format.md §2.

Only what differs from `kem` lives here: the group element α, its blinding, and how the
sender derives every hop's shared secret. The common parts are in `_hop_py`.
"""

import nacl.bindings as nb

from fogcore import _sodium_py as cp
from fogcore.packet import _hop_py as c

__all__ = [
    "BETA_SIZE",
    "FORMAT",
    "HEADER_SIZE",
    "LABEL_BUILD",
    "LABEL_HOP",
    "PACKET_SIZE",
    "SLOT_SIZE",
    "build_header",
    "next_element",
    "node_hop_keys",
    "relay_slot",
    "route_secrets",
]

FORMAT = c.FORMAT_SPHINX
NAME = "sphinx"
LABEL_HOP = b"fogcore/sphinx/v1/hop"
LABEL_BUILD = b"fogcore/sphinx/v1/build"
ELEMENT_SIZE = 32
SLOT_SIZE = 2 + c.ID_SIZE + c.MAC_SIZE  # 50
BETA_SIZE = c.MAX_HOPS * SLOT_SIZE  # 250
HEADER_SIZE = ELEMENT_SIZE + BETA_SIZE + c.MAC_SIZE  # 298
PACKET_SIZE = HEADER_SIZE + c.PAYLOAD_SIZE  # 2346

_L = 2**252 + 27742317777372353535851937790883648493  # order of the prime-order subgroup
_BASE_U = (9).to_bytes(32, "little")


def node_hop_keys(routing_secret: bytes, routing_public: bytes, alpha: bytes):
    """Hop keys at a node (§2.3 steps 1-2), or None when X25519(y, α) is all zero."""
    try:
        s = cp.x25519(routing_secret, alpha)
    except ValueError:
        return None
    return c.hop_keys(LABEL_HOP, bytes(alpha) + s)


def next_element(alpha: bytes, keys, slot: bytes) -> bytes | None:
    """α' = X25519(blind, α), the blinded element for the next hop; None if all zero."""
    try:
        return cp.x25519(keys.blind, alpha)
    except ValueError:
        return None


def relay_slot(route, i: int, gamma_next: bytes, elements) -> bytes:
    """The RELAY slot of hop i: next node id and its MAC."""
    return c.make_slot(SLOT_SIZE, c.CMD_RELAY, 0, route[i + 1].node_id, gamma_next)


def _clamp(k: bytes) -> int:
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return int.from_bytes(b, "little")


_INV8 = pow(8, -1, _L)


def clamped_scalar_for(z: int) -> bytes | None:
    """A 32-byte k with clamp(k) ≡ z (mod ℓ), or None (for about half of all z): clamped
    scalars are 2^254 + 8m with m < 2^251, which covers only half of the residues."""
    m = (z - 2**254) * _INV8 % _L
    if m >= 2**251:
        return None
    return (2**254 + 8 * m).to_bytes(32, "little")


def _mul_residue(z: int, u: bytes, edwards: bytes | None) -> bytes:
    """u([z]P) for P of prime order with one X25519: by a clamped representative of z, or
    else of -z (u([-z]P) = u([z]P)); m(z) + m(-z) ≡ ℓ - 2^252 < 2^125, so one of the two
    fits unless m(z) lies within 2^126 of 2^251. That case, never met in practice, is
    computed on edwards25519 (`edwards` is P in Edwards form; None means the base point)."""
    k = clamped_scalar_for(z) or clamped_scalar_for(-z % _L)
    if k is not None:
        return cp.x25519(k, u)
    zb = z.to_bytes(32, "little")
    if edwards is None:
        point = nb.crypto_scalarmult_ed25519_base_noclamp(zb)
    else:
        point = nb.crypto_scalarmult_ed25519_noclamp(zb, edwards)
    return nb.crypto_sign_ed25519_pk_to_curve25519(point)


def route_secrets(route, x: bytes, method: str = "sequential"):
    """(α_i, hop keys_i) for every hop of `route` (§2.4 step 2).

    "sequential": X25519 by x and then by each earlier blinding factor (the definition).
    "scalar": products of clamped scalars modulo ℓ on edwards25519 (§2.6); same bytes.
    "reencoded": the same products, multiplied with X25519 through a re-encoded scalar
    of ±z (§2.6); same bytes.
    Raises ValueError for a routing key that yields an all-zero secret.
    """
    alphas, keys = [], []
    if method == "sequential":
        alpha = cp.x25519_base(x)
        blinds: list[bytes] = []
        for node in route:
            s = cp.x25519(x, node.routing_public_key)
            for b in blinds:
                s = cp.x25519(b, s)
            k = c.hop_keys(LABEL_HOP, alpha + s)
            alphas.append(alpha)
            keys.append(k)
            blinds.append(k.blind)
            alpha = cp.x25519(k.blind, alpha)
    elif method == "scalar":
        z = _clamp(x) % _L
        for node in route:
            zb = z.to_bytes(32, "little")
            alpha = nb.crypto_sign_ed25519_pk_to_curve25519(
                nb.crypto_scalarmult_ed25519_base_noclamp(zb))
            s = nb.crypto_sign_ed25519_pk_to_curve25519(
                nb.crypto_scalarmult_ed25519_noclamp(zb, node.routing_key_edwards))
            k = c.hop_keys(LABEL_HOP, alpha + s)
            alphas.append(alpha)
            keys.append(k)
            z = z * _clamp(k.blind) % _L
    elif method == "reencoded":
        z = _clamp(x) % _L
        for node in route:
            alpha = _mul_residue(z, _BASE_U, None)
            s = _mul_residue(z, node.routing_public_key, node.routing_key_edwards)
            k = c.hop_keys(LABEL_HOP, alpha + s)
            alphas.append(alpha)
            keys.append(k)
            z = z * _clamp(k.blind) % _L
    else:
        raise ValueError(f"unknown method {method!r}")
    return alphas, keys


def build_header(route, final_slot: bytes, seed: bytes, method: str = "sequential"):
    """(header bytes, hop keys of every hop) for `route` ending in `final_slot` (§2.4)."""
    e = c.kdf(LABEL_BUILD, seed, 32 + BETA_SIZE)
    x, pad = e[:32], e[32:]
    alphas, keys = route_secrets(route, x, method)
    beta, gamma = c.build_routing(
        SLOT_SIZE, keys, final_slot, pad, lambda i, g: relay_slot(route, i, g, alphas))
    return alphas[0] + beta + gamma, keys
